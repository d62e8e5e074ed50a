package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// tokenServer is a real HTTP server with a guard that admits tokens on a
// few operations, the way cmd/parley declares them.
type tokenServer struct {
	url    string
	tokens *Tokens
	admin  *http.Cookie
	csrf   string
}

func startTokenServer(t *testing.T, backend string) *tokenServer {
	t.Helper()
	ctx := context.Background()
	dir := NewDirectory(openStaffStore(t, backend))
	dir.SetBcryptCost(bcrypt.MinCost)
	ts := NewTokens(openTokenStore(t, backend))
	g := NewGuard(dir, false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.UseTokens(ts)
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		code := fiber.StatusInternalServerError
		var fe *fiber.Error
		if errors.As(err, &fe) {
			code = fe.Code
		}
		return c.Status(code).JSON(fiber.Map{"error": err.Error()})
	}})
	g.Mount(app)
	g.MountAdmin(app)
	g.MountTokens(app)
	whoami := func(c *fiber.Ctx) error {
		u, _ := UserOf(c)
		tk, _ := TokenOf(c)
		return c.JSON(fiber.Map{"user": u.ID, "token": tk.ID, "site": c.Params("site")})
	}
	app.Get("/api/things/:site", g.Require(Agent), whoami)
	app.Post("/api/things/:site", g.Require(Agent), whoami)
	app.Get("/api/things", g.Require(Agent), whoami)
	reports := app.Group("/api/reports", g.Require(Supervisor))
	reports.Get("/daily", whoami)
	siteParam := func(_ *fiber.Ctx, p map[string]string) (string, error) { return p["site"], nil }
	g.AdmitTokens(
		TokenRoute{Method: "GET", Path: "/api/things/:site", Scope: ScopeConversationsRead, Site: siteParam},
		TokenRoute{Method: "POST", Path: "/api/things/:site", Scope: ScopeMessagesWrite, Site: siteParam},
		TokenRoute{Method: "GET", Path: "/api/things", Scope: ScopeConversationsRead},
		TokenRoute{Method: "GET", Path: "/api/reports/*", Scope: ScopeAnalyticsRead, Site: func(c *fiber.Ctx, _ map[string]string) (string, error) {
			if c.Query("site") == "" {
				return "", ErrSiteRequired
			}
			return c.Query("site"), nil
		}},
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })
	admin, err := dir.CreateUser(ctx, "root@example.test", "Root", "password-123", []Role{Admin}, "")
	if err != nil {
		t.Fatal(err)
	}
	session, csrf, err := dir.NewSession(ctx, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenServer{url: "http://" + ln.Addr().String(), tokens: ts, admin: &http.Cookie{Name: CookieName, Value: session}, csrf: csrf}
}

// call sends a request with a bearer token (or the admin's session when
// bearer is "admin") and returns the status and body.
func (s *tokenServer) call(t *testing.T, bearer, method, path string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch bearer {
	case "admin":
		req.AddCookie(s.admin)
		req.Header.Set(CSRFHeader, s.csrf)
	case "":
	default:
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestGuardAdmitsTokensByScopeAndSite(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := startTokenServer(t, backend)
		// Tokens are created through the admin API; the secret is in that answer only.
		code, body := s.call(t, "admin", "POST", "/api/admin/tokens", map[string]any{"name": "CRM", "scopes": []string{"conversations:read", "messages:write"}, "sites": []string{"s1"}})
		if code != http.StatusCreated {
			t.Fatalf("create token: %d %s", code, body)
		}
		var crm NewToken
		if err := json.Unmarshal([]byte(body), &crm); err != nil || !strings.HasPrefix(crm.Secret, TokenPrefix) {
			t.Fatalf("created token %s: %v", body, err)
		}
		code, body = s.call(t, "admin", "POST", "/api/admin/tokens", map[string]any{"name": "BI", "scopes": []string{"analytics:read"}})
		var bi NewToken
		if code != http.StatusCreated || json.Unmarshal([]byte(body), &bi) != nil {
			t.Fatalf("create token: %d %s", code, body)
		}
		if code, body := s.call(t, "admin", "POST", "/api/admin/tokens", map[string]any{"name": "X", "scopes": []string{"root"}}); code != http.StatusBadRequest || !strings.Contains(body, "unknown scope") {
			t.Fatalf("bad scope: %d %s", code, body)
		}
		if _, body := s.call(t, "admin", "GET", "/api/admin/tokens", nil); strings.Contains(body, crm.Secret) || !strings.Contains(body, crm.Hint) {
			t.Fatalf("token list shows the secret or hides the hint: %s", body)
		}

		cases := []struct {
			token, method, path string
			want                int
			says                string
		}{
			{crm.Secret, "GET", "/api/things/s1", 200, `"user":"token:` + crm.ID},
			{crm.Secret, "POST", "/api/things/s1", 200, `"token":"` + crm.ID}, // no CSRF header needed
			{crm.Secret, "GET", "/api/things/s2", 403, "not allowed on site s2"},
			{crm.Secret, "GET", "/api/things", 403, "limited to sites"},
			{crm.Secret, "GET", "/api/reports/daily?site=s1", 403, "lacks the scope analytics:read"},
			{crm.Secret, "GET", "/api/auth/me", 403, "API tokens may not call GET /api/auth/me"},
			{crm.Secret, "GET", "/api/admin/tokens", 403, "may not call"},
			{bi.Secret, "GET", "/api/reports/daily?site=s9", 200, `"token":"` + bi.ID},
			{bi.Secret, "GET", "/api/things", 403, "lacks the scope conversations:read"},
			{"pat_forged", "GET", "/api/things/s1", 401, "invalid or revoked"},
		}
		for _, c := range cases {
			code, body := s.call(t, c.token, c.method, c.path, nil)
			if code != c.want || !strings.Contains(body, c.says) {
				t.Errorf("%s %s with %s: %d %s; want %d saying %q", c.method, c.path, c.token[:8], code, body, c.want, c.says)
			}
		}
		// A limited token on a group route must name its site.
		limited, err := s.tokens.Create(context.Background(), "Limited BI", []string{"analytics:read"}, []string{"s1"}, "x")
		if err != nil {
			t.Fatal(err)
		}
		if code, body := s.call(t, limited.Secret, "GET", "/api/reports/daily", nil); code != 400 || !strings.Contains(body, "name the site") {
			t.Errorf("limited token without site: %d %s", code, body)
		}

		// Every use, allowed or refused, is audited with its status; last use is visible.
		code, body = s.call(t, "admin", "GET", "/api/admin/tokens/"+crm.ID+"/uses", nil)
		var uses struct{ Uses []TokenUse }
		if code != 200 || json.Unmarshal([]byte(body), &uses) != nil || len(uses.Uses) != 7 {
			t.Fatalf("uses of the CRM token: %d %s", code, body)
		}
		if u := uses.Uses[0]; u.Status != 403 || u.Path != "/api/admin/tokens" || u.Method != "GET" || u.IP != "127.0.0.1" {
			t.Errorf("newest use = %+v", u)
		}
		tk, _ := s.tokens.Get(context.Background(), crm.ID)
		if tk.LastUsedAt == nil || time.Since(*tk.LastUsedAt) > time.Minute {
			t.Errorf("last used = %v", tk.LastUsedAt)
		}

		// Revoked: refused at once.
		if code, body := s.call(t, "admin", "DELETE", "/api/admin/tokens/"+crm.ID, nil); code != 204 {
			t.Fatalf("revoke: %d %s", code, body)
		}
		if code, body := s.call(t, crm.Secret, "GET", "/api/things/s1", nil); code != 401 {
			t.Errorf("revoked token: %d %s", code, body)
		}
		if code, _ := s.call(t, "admin", "DELETE", "/api/admin/tokens/nope", nil); code != 404 {
			t.Errorf("revoke unknown: %d", code)
		}
	})
}
