package moderation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

func testUser(id string) access.User {
	return access.User{ID: id, Email: id + "@example.com", Roles: []access.Role{access.Moderator}}
}

// apiEnv is a real HTTP server with the access guard and the moderation API.
type apiEnv struct {
	svc  *Service
	url  string
	acc  *access.Directory
	stop func()
}

// newAPIEnv serves the API of a Service on a fresh store of the backend;
// staff accounts are in SQLite (access has its own suite).
func newAPIEnv(t *testing.T, backend string, cfg Config) *apiEnv {
	t.Helper()
	ctx := context.Background()
	staffStore, err := access.OpenSQLite(ctx, sqltest.SQLite(t, "access"))
	if err != nil {
		t.Fatal(err)
	}
	acc := access.NewDirectory(staffStore)
	acc.SetBcryptCost(bcrypt.MinCost)
	for _, u := range []struct {
		email string
		roles []access.Role
		sites []string
	}{
		{"mod1@example.com", []access.Role{access.Moderator}, []string{"site-1", "site-2", "s"}},
		{"mod2@example.com", []access.Role{access.Moderator}, []string{"site-1", "site-2", "s"}},
		{"mod3@example.com", []access.Role{access.Moderator}, []string{"site-2"}},
		{"agent@example.com", []access.Role{access.Agent}, []string{"site-1", "site-2", "s"}},
		{"admin@example.com", []access.Role{access.Admin}, nil},
	} {
		created, err := acc.CreateUser(ctx, u.email, u.email, "password-123", u.roles, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.SetSites(ctx, created.ID, u.sites); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Guard = access.NewGuard(acc, false, nil)
	svc := newServiceOn(t, openStore(t, backend), cfg)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	cfg.Guard.Mount(app)
	svc.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	env := &apiEnv{svc: svc, url: "http://" + ln.Addr().String(), acc: acc, stop: func() { app.Shutdown() }}
	t.Cleanup(env.stop)
	return env
}

// client is one signed-in staff member.
type client struct {
	t    *testing.T
	http *http.Client
	base string
	csrf string
}

func (e *apiEnv) login(t *testing.T, email string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}, base: e.url}
	var me struct {
		CSRF string `json:"csrf"`
	}
	if code := c.do("POST", "/api/auth/login", map[string]string{"email": email, "password": "password-123"}, &me); code != 200 {
		t.Fatalf("login %s: %d", email, code)
	}
	c.csrf = me.CSRF
	return c
}

// do sends a JSON request (with the CSRF header when signed in) and
// decodes the JSON answer into out; it returns the status code.
func (c *client) do(method, path string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set(access.CSRFHeader, c.csrf)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %d %q: %v", method, path, res.StatusCode, raw, err)
		}
	}
	return res.StatusCode
}

func TestAPIRequiresModeratorRoleAndCSRF(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		env := newAPIEnv(t, backend, Config{})
		anon := &client{t: t, http: &http.Client{Timeout: 5 * time.Second}, base: env.url}
		if code := anon.do("GET", "/api/moderation/items", nil, nil); code != 401 {
			t.Fatalf("anonymous: %d", code)
		}
		agent := env.login(t, "agent@example.com")
		for _, r := range [][2]string{{"GET", "/api/moderation/items"}, {"GET", "/api/moderation/policy/s"}, {"POST", "/api/moderation/policy/test"}, {"GET", "/api/moderation/audit"}} {
			if code := agent.do(r[0], r[1], map[string]string{"site_id": "s", "text": "x"}, nil); code != 403 {
				t.Fatalf("agent %s %s: %d", r[0], r[1], code)
			}
		}
		mod := env.login(t, "mod1@example.com")
		mod.csrf = ""
		if code := mod.do("POST", "/api/moderation/policy/test", map[string]string{"site_id": "s", "text": "x"}, nil); code != 403 {
			t.Fatalf("moderator without CSRF: %d", code)
		}
		admin := env.login(t, "admin@example.com")
		if code := admin.do("GET", "/api/moderation/items", nil, nil); code != 200 {
			t.Fatalf("admin: %d", code)
		}
	})
}

func TestReviewQueueClaimsDecisionsBansAndAudit(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		env := newAPIEnv(t, backend, Config{ClaimTTL: time.Minute})
		ctx := context.Background()
		now := time.Now()
		msgs := []ingest.Record{
			chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "this is shit", now),             // profanity, severity 1
			chatMessage(t, "site-1", "c2", ingest.RoleVisitor, "v2", 1, "I will kill you", now),          // threat, severity 4
			chatMessage(t, "site-2", "c3", ingest.RoleVisitor, "v3", 1, "you are an idiot", now),         // abuse, severity 3
			chatMessage(t, "site-1", "c4", ingest.RoleVisitor, "v4", 1, "you idiot <b>& moron</b>", now), // abuse
		}
		if _, err := env.svc.handle(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		m1, m2 := env.login(t, "mod1@example.com"), env.login(t, "mod2@example.com")

		var page ItemPage
		if code := m1.do("GET", "/api/moderation/items", nil, &page); code != 200 || page.Total != 4 {
			t.Fatalf("list: %d %+v", code, page)
		}
		if page.Items[0].Severity != 4 || page.Items[len(page.Items)-1].Severity != 1 {
			t.Fatalf("not ordered by severity: %+v", page.Items)
		}
		if page.Counts[CatAbuse] != 2 || page.Counts[CatThreat] != 1 || page.Counts[CatProfanity] != 1 {
			t.Fatalf("counts %v", page.Counts)
		}
		if code := m1.do("GET", "/api/moderation/items?site_id=site-1&category=abuse", nil, &page); code != 200 || page.Total != 1 || page.Items[0].Text != "you idiot <b>& moron</b>" {
			t.Fatalf("filtered list: %d %+v", code, page)
		}
		if code := m1.do("GET", "/api/moderation/items?status=nonsense", nil, nil); code != 400 {
			t.Fatalf("bad status: %d", code)
		}
		threat := derivedID(msgs[1].Event.ID, "item")

		var it Item
		if code := m1.do("POST", "/api/moderation/items/"+threat+"/claim", nil, &it); code != 200 || it.ClaimedBy == "" {
			t.Fatalf("claim: %d %+v", code, it)
		}
		var errBody map[string]string
		if code := m2.do("POST", "/api/moderation/items/"+threat+"/claim", nil, &errBody); code != 409 || !strings.Contains(errBody["error"], "mod1@example.com") {
			t.Fatalf("second claim: %d %v", code, errBody)
		}
		if code := m2.do("POST", "/api/moderation/items/"+threat+"/remove", map[string]string{"reason": "threat"}, nil); code != 409 {
			t.Fatalf("deciding another's claim: %d", code)
		}
		if code := m1.do("POST", "/api/moderation/items/"+threat+"/ban", map[string]string{"reason": "threat of violence"}, &errBody); code != 400 || !strings.Contains(errBody["error"], "duration") {
			t.Fatalf("ban without duration: %d %v", code, errBody)
		}
		if code := m1.do("POST", "/api/moderation/items/"+threat+"/remove", map[string]string{}, &errBody); code != 400 || !strings.Contains(errBody["error"], "reason") {
			t.Fatalf("decision without reason: %d %v", code, errBody)
		}
		if code := m1.do("POST", "/api/moderation/items/"+threat+"/ban", map[string]string{"reason": "threat of violence", "duration": "7d"}, &it); code != 200 || it.Status != StatusBanned {
			t.Fatalf("ban: %d %+v", code, it)
		}
		if code := m1.do("POST", "/api/moderation/items/"+threat+"/approve", map[string]string{"reason": "oops"}, nil); code != 409 {
			t.Fatalf("second decision: %d", code)
		}
		until, banned := env.svc.Banned(ctx, "site-1", "v2")
		if !banned || until.Before(now.Add(6*24*time.Hour)) {
			t.Fatalf("Banned: %v %v", until, banned)
		}
		if _, banned := env.svc.Banned(ctx, "site-2", "v2"); banned {
			t.Fatal("ban leaked to another site")
		}

		prof := derivedID(msgs[0].Event.ID, "item")
		if code := m2.do("POST", "/api/moderation/items/"+prof+"/approve", map[string]string{"reason": "mild"}, &it); code != 200 || it.Status != StatusApproved {
			t.Fatalf("approve unclaimed: %d %+v", code, it)
		}
		var detail struct {
			Item    Item             `json:"item"`
			Context []ContextMessage `json:"context"`
			Audit   []AuditEntry     `json:"audit"`
		}
		if code := m1.do("GET", "/api/moderation/items/"+threat, nil, &detail); code != 200 || len(detail.Context) != 1 || len(detail.Audit) != 1 {
			t.Fatalf("detail: %d %+v", code, detail)
		}
		if a := detail.Audit[0]; a.ActorEmail != "mod1@example.com" || a.Action != "ban" || a.Reason != "threat of violence" || a.At.IsZero() {
			t.Fatalf("audit %+v", a)
		}
		if code := m1.do("GET", "/api/moderation/items/nope", nil, nil); code != 404 {
			t.Fatalf("missing item: %d", code)
		}

		// two decisions wrote two decision events to the outbox
		var decisions []ingest.ModerationDecisionPayload
		for _, ev := range eventsOf(pendingEvents(t, env.svc.store), ingest.ModerationDecision) {
			var d ingest.ModerationDecisionPayload
			if err := ev.Into(&d); err != nil {
				t.Fatal(err)
			}
			decisions = append(decisions, d)
			if ev.Actor.Role != ingest.RoleModerator {
				t.Fatalf("decision actor %+v", ev.Actor)
			}
		}
		if len(decisions) != 2 || decisions[0].Decision != "ban" || decisions[0].BanUntil == nil || decisions[1].Decision != "approve" {
			t.Fatalf("decisions %+v", decisions)
		}

		var bans struct{ Bans []Ban }
		if code := m1.do("GET", "/api/moderation/bans?active=1", nil, &bans); code != 200 || len(bans.Bans) != 1 {
			t.Fatalf("bans: %d %+v", code, bans)
		}
		if code := m1.do("POST", "/api/moderation/bans/site-1/v2/lift", map[string]string{"reason": "appeal accepted"}, nil); code != 204 {
			t.Fatalf("lift: %d", code)
		}
		if _, banned := env.svc.Banned(ctx, "site-1", "v2"); banned {
			t.Fatal("ban still active after lifting")
		}
		// the lift is published, keyed by the banned message's conversation
		decisionEvents := eventsOf(pendingEvents(t, env.svc.store), ingest.ModerationDecision)
		if len(decisionEvents) != 3 {
			t.Fatalf("%d decision events after lifting, want 3", len(decisionEvents))
		}
		unban := decisionEvents[2]
		var up ingest.ModerationDecisionPayload
		if err := unban.Into(&up); err != nil || up.Decision != ingest.DecisionUnban || up.VisitorID != "v2" || up.ItemID != "" ||
			up.BanUntil != nil || up.Reason != "appeal accepted" || unban.SiteID != "site-1" || unban.ConversationID != "c2" || unban.Actor.ID == "" {
			t.Fatalf("unban event %+v %+v %v", unban, up, err)
		}
		if code := m1.do("POST", "/api/moderation/bans/site-1/v2/lift", map[string]string{"reason": "again"}, nil); code != 404 {
			t.Fatalf("lifting a lifted ban: %d", code)
		}
		if n := len(eventsOf(pendingEvents(t, env.svc.store), ingest.ModerationDecision)); n != 3 {
			t.Fatalf("a failed lift published an event (%d decisions)", n)
		}
		var audit struct{ Entries []AuditEntry }
		if code := m1.do("GET", "/api/moderation/audit?site_id=site-1", nil, &audit); code != 200 || len(audit.Entries) != 3 || audit.Entries[0].Action != "lift_ban" {
			t.Fatalf("audit: %d %+v", code, audit)
		}
	})
}

func TestPolicyEditingAndTesting(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		env := newAPIEnv(t, backend, Config{})
		m := env.login(t, "mod1@example.com")
		var info PolicyInfo
		if code := m.do("GET", "/api/moderation/policy/site-1", nil, &info); code != 200 || info.Stored || len(info.Policy.Languages) != 5 {
			t.Fatalf("default policy: %d %+v", code, info)
		}
		var perr PolicyError
		bad := []byte(`{"regexes": [{"name": "ok", "pattern": "a+", "category": "spam"}, {"name": "broken", "pattern": "([a-z]", "category": "spam"}]}`)
		if code := m.do("PUT", "/api/moderation/policy/site-1", bad, &perr); code != 400 || perr.Field != "regexes[1]" || !strings.Contains(perr.Msg, "broken") {
			t.Fatalf("invalid regex: %d %+v", code, perr)
		}
		terms := make([]string, MaxBlockTerms+1)
		for i := range terms {
			terms[i] = fmt.Sprintf("term%d", i)
		}
		big, _ := json.Marshal(map[string]any{"block": map[string]any{"custom": terms}})
		if code := m.do("PUT", "/api/moderation/policy/site-1", big, &perr); code != 400 || !strings.Contains(perr.Msg, "more than") {
			t.Fatalf("oversized list: %d %+v", code, perr)
		}
		draft := map[string]any{"block": map[string][]string{"custom": {"pineapple*"}}, "actions": map[string]string{"custom": "flag"}}
		var res struct {
			Verdict Verdict `json:"verdict"`
		}
		if code := m.do("POST", "/api/moderation/policy/test", map[string]any{"site_id": "site-1", "text": "pineapples on pizza", "policy": draft}, &res); code != 200 || res.Verdict.Action != ActionFlag {
			t.Fatalf("test with draft: %d %+v", code, res)
		}
		if code := m.do("POST", "/api/moderation/policy/test", map[string]any{"site_id": "site-1", "text": "pineapples on pizza"}, &res); code != 200 || res.Verdict.Action != ActionAllow {
			t.Fatalf("draft leaked into the saved policy: %d %+v", code, res)
		}
		if code := m.do("PUT", "/api/moderation/policy/site-1", draft, &info); code != 200 || !info.Stored {
			t.Fatalf("save: %d %+v", code, info)
		}
		if v := env.svc.CheckInline(context.Background(), "site-1", "v", "pineapples"); v.Action != ActionFlag {
			t.Fatalf("saved policy not live: %+v", v)
		}
		if code := m.do("GET", "/api/moderation/policy/site-1", nil, &info); code != 200 || !info.Stored || info.Policy.Block["custom"][0] != "pineapple*" {
			t.Fatalf("get saved: %d %+v", code, info)
		}
		if code := m.do("POST", "/api/moderation/policy/test", map[string]any{"text": strings.Repeat("x", MaxTestTextBytes+1), "site_id": "s"}, nil); code != 400 {
			t.Fatalf("oversized text: %d", code)
		}
	})
}
