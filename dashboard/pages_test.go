package dashboard

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/parleychat/parley/access"
)

func TestAssetsAreHashedAndCached(t *testing.T) {
	s := startServer(t)
	c := s.sessionAs(t, access.Agent)
	_, page := c.do("GET", "/app/console", nil)
	m := regexp.MustCompile(`/assets/([0-9a-f]{12})/js/app\.js`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("shell does not link a hashed app.js:\n%s", page)
	}
	res, body := c.do("GET", string(m[0]), nil)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("hashed asset: %d Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Fatalf("app.js served as %q", ct)
	}
	if !strings.Contains(string(body), "export function navigate") {
		t.Fatal("app.js body is not the app module")
	}
	etag := res.Header.Get("ETag")
	// The unhashed path revalidates, and a matching ETag gives 304.
	res, _ = c.do("GET", "/assets/js/app.js", nil)
	if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") != etag {
		t.Fatalf("unhashed asset: Cache-Control %q ETag %q (want no-cache, %s)", res.Header.Get("Cache-Control"), res.Header.Get("ETag"), etag)
	}
	req, _ := http.NewRequest("GET", s.URL+"/assets/js/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: want 304, got %d", res.StatusCode)
	}
	// A stale hash still serves the file, without the immutable promise.
	res, _ = c.do("GET", "/assets/000000000000/js/app.js", nil)
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("stale hash: %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"/assets/nope.js", "/assets/../dashboard.go", "/assets/%2e%2e/pages.go", "/assets/"} {
		if res, _ := c.do("GET", p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: want 404, got %d", p, res.StatusCode)
		}
	}
}

func TestEveryPageModuleIsEmbedded(t *testing.T) {
	set := mustLoadAssets()
	for _, pg := range Pages {
		if _, ok := set.files["js/pages/"+pg.Module]; !ok {
			t.Errorf("page %s names module %s, which is not embedded", pg.Path, pg.Module)
		}
	}
}

func TestPagesCarrySecurityHeaders(t *testing.T) {
	s := startServer(t)
	c := s.sessionAs(t, access.Admin)
	for _, p := range []string{"/app/admin/users", "/login?next=/app/admin/users"} {
		cl := c
		if strings.HasPrefix(p, "/login") {
			cl = s.anonymous(t)
		}
		res, _ := cl.do("GET", p, nil)
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", p, res.Header)
		}
	}
}

func TestLoginRedirectsOnlyInsideTheApp(t *testing.T) {
	s := startServer(t)
	cases := map[string]string{
		"/app/admin/users":     "/app/admin/users",
		"//evil.example/app":   "/app",
		"https://evil.example": "/app",
		"/app//evil.example":   "/app",
		"/app/\\evil":          "/app",
		"/login":               "/app",
	}
	for next, want := range cases {
		_, body := s.anonymous(t).do("GET", "/login?next="+url.QueryEscape(next), nil)
		if !strings.Contains(string(body), `data-next="`+want+`"`) {
			t.Errorf("next=%q: want data-next %q in page", next, want)
		}
		// A signed-in user goes straight to the same safe target.
		res, _ := s.sessionAs(t, access.Admin).do("GET", "/login?next="+url.QueryEscape(next), nil)
		if loc := res.Header.Get("Location"); loc != want {
			t.Errorf("signed in, next=%q: Location %q, want %q", next, loc, want)
		}
	}
	// A page request without a session keeps its path for after sign-in.
	res, _ := s.anonymous(t).do("GET", "/app/moderation/audit", nil)
	if loc := res.Header.Get("Location"); loc != "/login?next=%2Fapp%2Fmoderation%2Faudit" {
		t.Fatalf("Location %q", loc)
	}
}

func TestAppLandsOnTheFirstPageOfEachRole(t *testing.T) {
	s := startServer(t)
	want := map[access.Role]string{
		access.Agent: "/app/console", access.Supervisor: "/app/overview",
		access.Moderator: "/app/moderation", access.Admin: "/app/console",
	}
	for role, path := range want {
		res, _ := s.sessionAs(t, role).do("GET", "/app", nil)
		if loc := res.Header.Get("Location"); loc != path {
			t.Errorf("%s lands on %q, want %q", role, loc, path)
		}
	}
}

func TestShellEscapesUserData(t *testing.T) {
	s := startServer(t)
	evil := `Eve"><script>alert(1)</script>`
	u := s.Users[access.Agent]
	if err := s.Store.UpdateUser(context.Background(), u.ID, evil, u.Roles, "", ""); err != nil {
		t.Fatal(err)
	}
	_, body := s.sessionAs(t, access.Agent).do("GET", "/app/console", nil)
	if strings.Contains(string(body), "<script>alert(1)") {
		t.Fatalf("user name reached the page unescaped:\n%s", body)
	}
	m := regexp.MustCompile(`data-user="([^"]*)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no data-user in the shell:\n%s", body)
	}
	var got access.User
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &got); err != nil || got.Name != evil {
		t.Fatalf("data-user does not decode to the stored name: %q, %v", got.Name, err)
	}
}

// The page list the shell sends names only pages the user may open.
func TestShellListsOnlyAllowedPages(t *testing.T) {
	s := startServer(t)
	_, body := s.sessionAs(t, access.Moderator).do("GET", "/app/moderation", nil)
	page := string(body)
	for _, pg := range Pages {
		has := strings.Contains(page, "&#34;path&#34;:&#34;"+pg.Path+"&#34;")
		want := allowed(s.Users[access.Moderator], pg)
		if has != want {
			t.Errorf("moderator's shell lists %s: %v, want %v", pg.Path, has, want)
		}
	}
}
