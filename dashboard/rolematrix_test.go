package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
)

// sessionAs gives a client signed in as role r, with a session made
// directly in the store (the login endpoint is rate limited per IP and is
// tested on its own).
func (s *testServer) sessionAs(t testing.TB, r access.Role) *client {
	t.Helper()
	token, csrf, err := s.Store.NewSession(context.Background(), s.Users[r].ID)
	if err != nil {
		t.Fatal(err)
	}
	c := s.anonymous(t)
	u, _ := url.Parse(s.URL)
	c.http.Jar.(*cookiejar.Jar).SetCookies(u, []*http.Cookie{{Name: access.CookieName, Value: token, Path: "/"}})
	c.csrf = csrf
	return c
}

var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// route is one row of the role matrix.
type route struct {
	method string
	path   string
	// prepare returns the concrete path (e.g. with a fresh id) and body.
	prepare func(t *testing.T, s *testServer) (string, any)
	// page routes redirect to /login without a session; APIs answer 401.
	page bool
	// public routes are open to everyone, signed in or not.
	public bool
	// anyStaff admits every signed-in staff member.
	anyStaff bool
	allow    []access.Role
	ok       int
}

func (r route) admits(role access.Role) bool {
	if r.public || r.anyStaff {
		return true
	}
	for _, a := range r.allow {
		if role == a || role == access.Admin {
			return true
		}
	}
	return false
}

func (r route) name() string { return r.method + " " + r.path }

func freshUser(t *testing.T, s *testServer) string {
	u, err := s.Store.CreateUser(context.Background(), unique("target")+"@example.test", "Target", testPassword, []access.Role{access.Agent}, "")
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func freshTeam(t *testing.T, s *testServer) string {
	tm, err := s.Store.CreateTeam(context.Background(), unique("team"))
	if err != nil {
		t.Fatal(err)
	}
	return tm.ID
}

func freshToken(t *testing.T, s *testServer) string {
	nt, err := s.Tokens.Create(context.Background(), unique("token"), []string{"analytics:read"}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	return nt.ID
}

// matrix lists every route dashboard and access register.
func matrix() []route {
	staticPath := func(p string) func(*testing.T, *testServer) (string, any) {
		return func(*testing.T, *testServer) (string, any) { return p, nil }
	}
	var rs []route
	// Pages.
	rs = append(rs,
		route{method: "GET", path: "/login", page: true, public: true, ok: http.StatusOK},
		route{method: "GET", path: "/app", page: true, anyStaff: true, ok: http.StatusFound},
		route{method: "GET", path: "/app/no-such-page", page: true, anyStaff: true, ok: http.StatusNotFound},
	)
	for _, pg := range Pages {
		rs = append(rs, route{method: "GET", path: pg.Path, page: true, allow: pg.Roles, ok: http.StatusOK})
	}
	rs = append(rs,
		route{method: "GET", path: "/app/conversations/0193a4c0-11aa-7bcd-8e00-111122223333", page: true, allow: []access.Role{access.Supervisor, access.Agent}, ok: http.StatusOK},
		route{method: "GET", path: "/app/admin/users/anything", page: true, allow: []access.Role{access.Admin}, ok: http.StatusOK},
	)
	// Assets are code, not data: public.
	rs = append(rs, route{method: "GET", path: "/assets/js/app.js", public: true, ok: http.StatusOK})
	// access: session and directory.
	rs = append(rs,
		route{method: "GET", path: "/api/auth/me", anyStaff: true, ok: http.StatusOK},
		route{method: "POST", path: "/api/auth/logout", anyStaff: true, ok: http.StatusNoContent},
		route{method: "GET", path: "/api/auth/staff", anyStaff: true, ok: http.StatusOK},
	)
	admin := []access.Role{access.Admin}
	rs = append(rs,
		route{method: "GET", path: "/api/admin/users", allow: admin, ok: http.StatusOK},
		route{method: "POST", path: "/api/admin/users", allow: admin, ok: http.StatusCreated,
			prepare: func(*testing.T, *testServer) (string, any) {
				return "/api/admin/users", map[string]any{"email": unique("new") + "@example.test", "name": "New", "password": testPassword, "roles": []string{"agent"}}
			}},
		route{method: "GET", path: "/api/admin/users/:id", allow: admin, ok: http.StatusOK,
			prepare: func(t *testing.T, s *testServer) (string, any) { return "/api/admin/users/" + freshUser(t, s), nil }},
		route{method: "PATCH", path: "/api/admin/users/:id", allow: admin, ok: http.StatusOK,
			prepare: func(t *testing.T, s *testServer) (string, any) {
				return "/api/admin/users/" + freshUser(t, s), map[string]any{"name": "Renamed"}
			}},
		route{method: "DELETE", path: "/api/admin/users/:id", allow: admin, ok: http.StatusNoContent,
			prepare: func(t *testing.T, s *testServer) (string, any) { return "/api/admin/users/" + freshUser(t, s), nil }},
		route{method: "GET", path: "/api/admin/signins", allow: admin, ok: http.StatusOK},
		route{method: "GET", path: "/api/admin/teams", allow: admin, ok: http.StatusOK},
		route{method: "POST", path: "/api/admin/teams", allow: admin, ok: http.StatusCreated,
			prepare: func(*testing.T, *testServer) (string, any) {
				return "/api/admin/teams", map[string]any{"name": unique("Team")}
			}},
		route{method: "PATCH", path: "/api/admin/teams/:id", allow: admin, ok: http.StatusOK,
			prepare: func(t *testing.T, s *testServer) (string, any) {
				return "/api/admin/teams/" + freshTeam(t, s), map[string]any{"name": unique("Renamed")}
			}},
		route{method: "DELETE", path: "/api/admin/teams/:id", allow: admin, ok: http.StatusNoContent,
			prepare: func(t *testing.T, s *testServer) (string, any) { return "/api/admin/teams/" + freshTeam(t, s), nil }},
		route{method: "GET", path: "/api/admin/tokens", allow: admin, ok: http.StatusOK},
		route{method: "POST", path: "/api/admin/tokens", allow: admin, ok: http.StatusCreated,
			prepare: func(*testing.T, *testServer) (string, any) {
				return "/api/admin/tokens", map[string]any{"name": unique("Token"), "scopes": []string{"conversations:read"}}
			}},
		route{method: "GET", path: "/api/admin/tokens/:id/uses", allow: admin, ok: http.StatusOK,
			prepare: func(t *testing.T, s *testServer) (string, any) {
				return "/api/admin/tokens/" + freshToken(t, s) + "/uses", nil
			}},
		route{method: "DELETE", path: "/api/admin/tokens/:id", allow: admin, ok: http.StatusNoContent,
			prepare: func(t *testing.T, s *testServer) (string, any) { return "/api/admin/tokens/" + freshToken(t, s), nil }},
	)
	for i := range rs {
		if rs[i].prepare == nil {
			rs[i].prepare = staticPath(rs[i].path)
		}
	}
	return rs
}

// TestRoleMatrix calls every page and API of dashboard and access with
// each role and with no session, and checks allow/deny for each.
func TestRoleMatrix(t *testing.T) {
	s := startServer(t)
	roles := append([]access.Role{""}, access.Roles...)
	// The token column: a token of every scope is refused on every API of
	// dashboard and access (staff administration is for people), and a
	// page opened with one alone is sent to sign in.
	every, err := s.Tokens.Create(context.Background(), "matrix", []string{"conversations:read", "messages:write", "analytics:read", "sites:manage"}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range matrix() {
		t.Run(r.name()+"/token", func(t *testing.T) {
			c := s.anonymous(t)
			c.bearer = every.Secret
			path, body := r.prepare(t, s)
			res, resBody := c.do(r.method, path, body)
			switch {
			case r.public:
				if res.StatusCode != r.ok {
					t.Fatalf("want %d, got %d %s", r.ok, res.StatusCode, resBody)
				}
			case r.page:
				if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
					t.Fatalf("want 302 to /login, got %d %q", res.StatusCode, res.Header.Get("Location"))
				}
			default:
				if res.StatusCode != http.StatusForbidden || !strings.Contains(string(resBody), "API tokens may not call") {
					t.Fatalf("want 403 refusing the token, got %d %s", res.StatusCode, resBody)
				}
			}
		})
	}
	for _, r := range matrix() {
		for _, role := range roles {
			who := string(role)
			if who == "" {
				who = "anonymous"
			}
			t.Run(r.name()+"/"+who, func(t *testing.T) {
				c := s.anonymous(t)
				if role != "" {
					c = s.sessionAs(t, role)
				}
				path, body := r.prepare(t, s)
				res, resBody := c.do(r.method, path, body)
				switch {
				case role == "" && !r.public && r.page:
					loc := res.Header.Get("Location")
					if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/login?next=") {
						t.Fatalf("want 302 to /login, got %d Location %q", res.StatusCode, loc)
					}
				case role == "" && !r.public:
					if res.StatusCode != http.StatusUnauthorized {
						t.Fatalf("want 401, got %d %s", res.StatusCode, resBody)
					}
				case role != "" && r.page && r.path == "/login":
					// A signed-in user is sent on to the app.
					if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/app" {
						t.Fatalf("want 302 to /app, got %d %q", res.StatusCode, res.Header.Get("Location"))
					}
				case r.admits(role):
					if res.StatusCode != r.ok {
						t.Fatalf("want %d, got %d %s", r.ok, res.StatusCode, resBody)
					}
				default:
					if res.StatusCode != http.StatusForbidden {
						t.Fatalf("want 403, got %d %s", res.StatusCode, resBody)
					}
				}
			})
		}
	}
}

// TestUnsafeRequestsNeedCSRF sends every unsafe API call as an admin
// without the CSRF header: each is refused and changes nothing.
func TestUnsafeRequestsNeedCSRF(t *testing.T) {
	s := startServer(t)
	for _, r := range matrix() {
		if r.method == "GET" {
			continue
		}
		t.Run(r.name(), func(t *testing.T) {
			c := s.sessionAs(t, access.Admin)
			c.csrf = ""
			path, body := r.prepare(t, s)
			res, resBody := c.do(r.method, path, body)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(string(resBody), access.CSRFHeader) {
				t.Fatalf("want 403 naming %s, got %d %s", access.CSRFHeader, res.StatusCode, resBody)
			}
		})
	}
	// The session survived the refused logout.
	c := s.sessionAs(t, access.Admin)
	c.csrf = ""
	c.do("POST", "/api/auth/logout", nil)
	if res, _ := c.do("GET", "/api/auth/me", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("logout without CSRF ended the session: /me gives %d", res.StatusCode)
	}
}

// TestRoleMatrixSecondSite: with staff on two sites, every role of the
// first site sees only its colleagues in the staff directory (and the
// admins), only admins may give anyone a site, and a staff member's
// sites are visible to admins only through the users API.
func TestRoleMatrixSecondSite(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	for _, r := range access.Roles {
		if err := s.Store.SetSites(ctx, s.Users[r].ID, []string{"site-a"}); err != nil {
			t.Fatal(err)
		}
	}
	other, err := s.Store.CreateUser(ctx, unique("other")+"@example.test", "Other Site Agent", testPassword, []access.Role{access.Agent}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.SetSites(ctx, other.ID, []string{"site-b"}); err != nil {
		t.Fatal(err)
	}
	for _, role := range access.Roles {
		c := s.sessionAs(t, role)
		res, body := c.do("GET", "/api/auth/staff", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("directory as %s: %d %s", role, res.StatusCode, body)
		}
		sees := strings.Contains(string(body), `"Other Site Agent"`)
		if sees != (role == access.Admin) {
			t.Errorf("directory as %s of site-a lists the site-b agent: %v", role, sees)
		}
		res, body = c.do("PATCH", "/api/admin/users/"+other.ID, map[string]any{"sites": []string{"site-a", "site-b"}})
		if want := http.StatusForbidden; role != access.Admin && res.StatusCode != want {
			t.Errorf("PATCH sites as %s = %d %s, want 403", role, res.StatusCode, body)
		}
		if role == access.Admin && res.StatusCode != http.StatusOK {
			t.Errorf("PATCH sites as admin = %d %s", res.StatusCode, body)
		}
	}
}
