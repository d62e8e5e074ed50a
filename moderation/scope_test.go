package moderation

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestModeratorsSeeOnlyTheirSites: a moderator of site-2 sees and decides
// site-2's review items only; site-1's items, audit, bans and policy are
// refused or left out; an admin sees both.
func TestModeratorsSeeOnlyTheirSites(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		env := newAPIEnv(t, backend, Config{ClaimTTL: time.Minute})
		ctx := context.Background()
		now := time.Now()
		msgs := []ingest.Record{
			chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "I will kill you", now),
			chatMessage(t, "site-2", "c2", ingest.RoleVisitor, "v2", 1, "you are an idiot", now),
		}
		if _, err := env.svc.handle(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		own, foreign := derivedID(msgs[1].Event.ID, "item"), derivedID(msgs[0].Event.ID, "item")
		m3, admin := env.login(t, "mod3@example.com"), env.login(t, "admin@example.com")
		var page ItemPage
		if code := m3.do("GET", "/api/moderation/items", nil, &page); code != 200 || page.Total != 1 || page.Items[0].SiteID != "site-2" {
			t.Fatalf("site-2 moderator's queue: %d %+v", code, page)
		}
		if code := admin.do("GET", "/api/moderation/items", nil, &page); code != 200 || page.Total != 2 {
			t.Fatalf("admin's queue: %d %+v", code, page)
		}
		reason := map[string]string{"reason": "x"}
		for _, call := range []struct{ method, path string }{
			{"GET", "/api/moderation/items?site_id=site-1"},
			{"GET", "/api/moderation/items/" + foreign},
			{"POST", "/api/moderation/items/" + foreign + "/claim"},
			{"POST", "/api/moderation/items/" + foreign + "/remove"},
			{"GET", "/api/moderation/audit?site_id=site-1"},
			{"GET", "/api/moderation/bans?site_id=site-1"},
			{"POST", "/api/moderation/bans/site-1/v1/lift"},
			{"GET", "/api/moderation/policy/site-1"},
			{"PUT", "/api/moderation/policy/site-1"},
			{"POST", "/api/moderation/policy/test"},
		} {
			body := any(reason)
			if call.path == "/api/moderation/policy/test" {
				body = map[string]string{"site_id": "site-1", "text": "hi"}
			}
			if code := m3.do(call.method, call.path, body, nil); code != 403 {
				t.Errorf("%s %s as site-2's moderator = %d, want 403", call.method, call.path, code)
			}
		}
		if code := m3.do("POST", "/api/moderation/items/"+own+"/ban", map[string]string{"reason": "abuse", "duration": "1d"}, nil); code != 200 {
			t.Fatalf("deciding an own site's item: %d", code)
		}
		// The admin bans on site-1 too; the site-2 moderator sees only site-2's ban and audit.
		if code := admin.do("POST", "/api/moderation/items/"+foreign+"/ban", map[string]string{"reason": "threat", "duration": "1d"}, nil); code != 200 {
			t.Fatalf("admin's ban: %d", code)
		}
		var bans struct{ Bans []Ban }
		if code := m3.do("GET", "/api/moderation/bans", nil, &bans); code != 200 || len(bans.Bans) != 1 || bans.Bans[0].SiteID != "site-2" {
			t.Fatalf("site-2 moderator's bans: %d %+v", code, bans.Bans)
		}
		var audit struct{ Entries []AuditEntry }
		if code := m3.do("GET", "/api/moderation/audit", nil, &audit); code != 200 || len(audit.Entries) == 0 {
			t.Fatalf("audit: %d %+v", code, audit)
		}
		for _, e := range audit.Entries {
			if e.SiteID != "site-2" {
				t.Fatalf("site-2 moderator sees an audit entry of %s", e.SiteID)
			}
		}
	})
}
