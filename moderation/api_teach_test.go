package moderation

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// getRaw fetches a path and returns the status, the X-Next-After header
// and the body.
func (c *client) getRaw(path string) (int, string, string) {
	c.t.Helper()
	res, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("X-Next-After"), string(b)
}

// TestTeachingFromReviewItems walks item 4 of issue 12 through the API: a
// moderator puts the domain or term an item matched on the site's allow or
// block list in one call (validated, audited, live for the next inline
// check), approve/remove decisions become labels the trainer can read,
// and the precision report counts them per site, category and source.
func TestTeachingFromReviewItems(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		env := newAPIEnv(t, backend, Config{})
		ctx := context.Background()
		now := time.Now()
		msgs := []ingest.Record{
			chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "photos of the damage: bit.ly/3xDmg", now), // link (shortener), flagged
			chatMessage(t, "site-1", "c2", ingest.RoleVisitor, "v2", 1, "damn, wrong card again", now),             // profanity, flagged
			chatMessage(t, "site-1", "c3", ingest.RoleVisitor, "v3", 1, "I know which branch you work at", now),    // threat by a grammar rule: no term
		}
		if _, err := env.svc.handle(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		link, prof, threat := derivedID(msgs[0].Event.ID, "item"), derivedID(msgs[1].Event.ID, "item"), derivedID(msgs[2].Event.ID, "item")
		m := env.login(t, "mod1@example.com")

		// the queue says which source decided each item
		var detail struct{ Item Item }
		if code := m.do("GET", "/api/moderation/items/"+prof, nil, &detail); code != 200 ||
			!slices.Contains(detail.Item.Sources, ingest.VerdictSource{Category: CatProfanity, Source: SourceRules, Decided: true}) {
			t.Fatalf("item sources: %d %+v", code, detail.Item)
		}

		var res ListResult
		var e map[string]string
		if code := m.do("POST", "/api/moderation/items/"+link+"/lists", map[string]string{"list": "allow", "match": "bit.ly"}, &res); code != 200 ||
			res.Kind != ListKindDomain || res.Value != "bit.ly" || !slices.Contains(res.Policy.Links.AllowDomains, "bit.ly") {
			t.Fatalf("allow domain: %d %+v", code, res)
		}
		if v := env.svc.CheckInline(ctx, "site-1", "v9", "more photos: bit.ly/3xDmg"); v.Action != ActionAllow {
			t.Fatalf("allowed domain still judged: %+v", v)
		}
		if v := env.svc.CheckInline(ctx, "site-2", "v9", "more photos: bit.ly/3xDmg"); v.Action != ActionFlag {
			t.Fatalf("another site's policy changed: %+v", v)
		}
		if code := m.do("POST", "/api/moderation/items/"+link+"/lists", map[string]string{"list": "allow", "match": "bit.ly"}, &e); code != 409 ||
			e["error"] != `"bit.ly" is already on the site's allowed domains` {
			t.Fatalf("second allow: %d %v", code, e)
		}

		if code := m.do("POST", "/api/moderation/items/"+prof+"/lists", map[string]string{"list": "block", "match": "damn", "reason": "our community is strict"}, &res); code != 200 ||
			res.Kind != ListKindTerm || !slices.Contains(res.Policy.Block[CatCustom], "damn") || res.RemovedFrom != "" {
			t.Fatalf("block term: %d %+v", code, res)
		}
		if v := env.svc.CheckInline(ctx, "site-1", "v9", "damn it"); v.Action != ActionBlock {
			t.Fatalf("blocked term not blocked: %+v", v)
		}
		if code := m.do("POST", "/api/moderation/items/"+prof+"/lists", map[string]string{"list": "allow", "match": "damn"}, &res); code != 200 ||
			res.RemovedFrom != ListBlock || slices.Contains(res.Policy.Block[CatCustom], "damn") || !slices.Contains(res.Policy.Allow, "damn") {
			t.Fatalf("allow the blocked term: %d %+v", code, res)
		}
		if v := env.svc.CheckInline(ctx, "site-1", "v9", "damn it"); v.Action != ActionAllow {
			t.Fatalf("allowed term still judged: %+v", v)
		}
		var saved PolicyInfo
		if code := m.do("GET", "/api/moderation/policy/site-1", nil, &saved); code != 200 || !saved.Stored ||
			!slices.Contains(saved.Policy.Allow, "damn") || !slices.Contains(saved.Policy.Links.AllowDomains, "bit.ly") {
			t.Fatalf("stored policy: %d %+v", code, saved)
		}

		// precise errors
		for _, c := range []struct {
			item string
			body map[string]string
			code int
			want string
		}{
			{prof, map[string]string{"list": "ignore", "match": "damn"}, 400, `list must be "allow" or "block"`},
			{prof, map[string]string{"list": "block"}, 400, "match is required"},
			{prof, map[string]string{"list": "block", "match": "card"}, 400, `has no span that matched "card"; it matched "damn"`},
			{threat, map[string]string{"list": "block", "match": "branch"}, 400, "matched no list term or domain"},
			{"no-such-item", map[string]string{"list": "block", "match": "x"}, 404, "not found"},
			{prof, map[string]string{"list": "block", "match": "damn", "reason": strings.Repeat("x", MaxReasonRunes+1)}, 400, "reason is 501 characters"},
		} {
			var got map[string]string
			if code := m.do("POST", "/api/moderation/items/"+c.item+"/lists", c.body, &got); code != c.code || !strings.Contains(got["error"], c.want) {
				t.Errorf("%v: %d %v, want %d %q", c.body, code, got, c.code, c.want)
			}
		}
		var audit struct{ Entries []AuditEntry }
		if code := m.do("GET", "/api/moderation/audit?item_id="+prof, nil, &audit); code != 200 || len(audit.Entries) != 2 {
			t.Fatalf("audit: %d %+v", code, audit)
		}
		if a := audit.Entries[1]; a.Action != "block_term" || a.ActorEmail != "mod1@example.com" || a.Reason != "our community is strict" || a.SiteID != "site-1" || a.Detail != `block term "damn"` {
			t.Fatalf("block audit %+v", a)
		}
		if a := audit.Entries[0]; a.Action != "allow_term" || a.Detail != `allow term "damn" (taken off the block list)` {
			t.Fatalf("allow audit %+v", a)
		}

		// decisions become labels
		for _, d := range [][2]string{{link, "approve"}, {prof, "remove"}, {threat, "ban"}} {
			body := map[string]string{"reason": "checked"}
			if d[1] == "ban" {
				body["duration"] = "24h"
			}
			if code := m.do("POST", "/api/moderation/items/"+d[0]+"/"+d[1], body, nil); code != 200 {
				t.Fatalf("%s: %d", d[1], code)
			}
		}
		code, next, body := m.getRaw("/api/moderation/labels?site_id=site-1&limit=2")
		lines := strings.Split(strings.TrimSpace(body), "\n")
		if code != 200 || next == "" || len(lines) != 2 {
			t.Fatalf("labels page 1: %d %q %q", code, next, body)
		}
		code, next2, body2 := m.getRaw("/api/moderation/labels?site_id=site-1&limit=2&after=" + next)
		if code != 200 || next2 != "" || strings.Count(body2, "\n") != 1 {
			t.Fatalf("labels page 2: %d %q %q", code, next2, body2)
		}
		got := map[string]exportedLabel{}
		sc := bufio.NewScanner(strings.NewReader(body + body2))
		for sc.Scan() {
			var l exportedLabel
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			got[l.ID] = l
		}
		if l := got[link]; l.Label != LabelClean || l.Expect != ActionAllow || l.Text != "photos of the damage: bit.ly/3xDmg" || l.Decision != "approve" {
			t.Errorf("approved label %+v", l)
		}
		if l := got[prof]; l.Label != CatProfanity || l.Expect != ActionBlock || !slices.Equal(l.Sources, []string{SourceRules}) {
			t.Errorf("removed label %+v", l)
		}
		if l := got[threat]; l.Label != CatThreat || l.Decision != "ban" {
			t.Errorf("ban label %+v", l)
		}
		for _, bad := range []string{"after=nope", "since=yesterday", "limit=0"} {
			if code, _, _ := m.getRaw("/api/moderation/labels?" + bad); code != 400 {
				t.Errorf("labels?%s: %d", bad, code)
			}
		}

		var rep struct {
			Days  int
			Sites []SitePrecision
		}
		if code := m.do("GET", "/api/moderation/precision", nil, &rep); code != 200 || rep.Days != DefaultPrecisionDays || len(rep.Sites) != 1 {
			t.Fatalf("precision: %d %+v", code, rep)
		}
		p := rep.Sites[0]
		if p.SiteID != "site-1" || p.Decided != 3 || p.Removed != 2 || p.Precision < 0.66 || p.Precision > 0.67 {
			t.Fatalf("site precision %+v", p)
		}
		if !slices.Contains(p.ByCategory, KeyedPrecision{Key: CatLink, Decided: 1, Removed: 0, Precision: 0}) ||
			!slices.Contains(p.ByCategory, KeyedPrecision{Key: CatThreat, Decided: 1, Removed: 1, Precision: 1}) {
			t.Fatalf("by category %+v", p.ByCategory)
		}
		if !slices.Contains(p.BySource, KeyedPrecision{Key: SourceRules, Decided: 3, Removed: 2, Precision: p.Precision}) {
			t.Fatalf("by source %+v", p.BySource)
		}
		if code := m.do("GET", "/api/moderation/precision?site_id=site-2", nil, &rep); code != 200 || len(rep.Sites) != 0 {
			t.Fatalf("precision of a quiet site: %d %+v", code, rep)
		}
		if code := m.do("GET", "/api/moderation/precision?days=400", nil, nil); code != 400 {
			t.Fatalf("precision over 400 days: %d", code)
		}

		// a moderator of site-2 only sees and changes nothing of site-1
		other := env.login(t, "mod3@example.com")
		if code := other.do("POST", "/api/moderation/items/"+prof+"/lists", map[string]string{"list": "block", "match": "damn"}, &e); code != 403 {
			t.Fatalf("teaching another site: %d %v", code, e)
		}
		if code, _, body := other.getRaw("/api/moderation/labels"); code != 200 || body != "" {
			t.Fatalf("another site's labels: %d %q", code, body)
		}
		if code, _, _ := other.getRaw("/api/moderation/labels?site_id=site-1"); code != 403 {
			t.Fatalf("labels of another site by name: %d", code)
		}
		if code := other.do("GET", "/api/moderation/precision", nil, &rep); code != 200 || len(rep.Sites) != 0 {
			t.Fatalf("another site's precision: %d %+v", code, rep)
		}
		if code := other.do("GET", "/api/moderation/precision?site_id=site-1", nil, nil); code != 403 {
			t.Fatalf("precision of another site by name: %d", code)
		}

		agent := env.login(t, "agent@example.com")
		if code := agent.do("POST", "/api/moderation/items/"+prof+"/lists", map[string]string{"list": "block", "match": "damn"}, nil); code != 403 {
			t.Fatalf("agent teaching: %d", code)
		}
		if code, _, _ := agent.getRaw("/api/moderation/labels"); code != http.StatusForbidden {
			t.Fatalf("agent exporting labels: %d", code)
		}
	})
}

// TestTeachListKeepsConcurrentChanges: two moderators teaching the same
// site at once both land; the policy is read and written under a lock.
func TestTeachListKeepsConcurrentChanges(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := newServiceOn(t, openStore(t, backend), Config{})
		ctx := context.Background()
		// one item per word, so the items' row locks do not serialise them
		words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}
		for _, w := range words {
			it := storeItem(w, "site-1", 2, []string{CatCustom}, time.Now())
			it.Spans = []ingest.Span{{Start: 0, End: 1, Category: CatCustom, Rule: "site:" + w, Match: w}}
			update(t, s.store, func(ctx context.Context, tx Tx) error { _, err := tx.AddItem(ctx, it); return err })
		}
		errs := make(chan error, len(words))
		for _, w := range words {
			go func() {
				_, err := s.TeachList(ctx, w, testUser("m-"+w), ListChange{List: ListAllow, Match: w})
				errs <- err
			}()
		}
		for range words {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		info, err := s.SitePolicy(ctx, "site-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
			if !slices.Contains(info.Policy.Allow, w) {
				t.Fatalf("%q lost: allow list %v", w, info.Policy.Allow)
			}
		}
	})
}
