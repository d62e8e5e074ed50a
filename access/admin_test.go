package access

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

type adminFixture struct {
	t     *testing.T
	app   *fiber.App
	store *Directory
	admin User
	token string
	csrf  string
}

func newAdminFixture(t *testing.T, backend string) *adminFixture {
	t.Helper()
	ctx := context.Background()
	store := NewDirectory(openStaffStore(t, backend))
	store.SetBcryptCost(bcrypt.MinCost)
	g := NewGuard(store, false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		code := fiber.StatusInternalServerError
		if fe, ok := err.(*fiber.Error); ok {
			code = fe.Code
		}
		return c.Status(code).JSON(fiber.Map{"error": err.Error()})
	}})
	g.Mount(app)
	g.MountAdmin(app)
	admin, err := store.CreateUser(ctx, "root@example.test", "Root", "password-123", []Role{Admin}, "")
	if err != nil {
		t.Fatal(err)
	}
	token, csrf, err := store.NewSession(ctx, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &adminFixture{t: t, app: app, store: store, admin: admin, token: token, csrf: csrf}
}

// call sends a request as the fixture's admin and decodes a JSON answer.
func (f *adminFixture) call(method, path, body string, into any) (int, string) {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(CSRFHeader, f.csrf)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: f.token})
	res, err := f.app.Test(req, 5000)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if into != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, into); err != nil {
			f.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	var e struct{ Error string }
	if res.StatusCode >= 400 && json.Unmarshal(b, &e) == nil && e.Error != "" {
		return res.StatusCode, e.Error
	}
	return res.StatusCode, string(b)
}

func TestAdminCreatesUsersAndRejectsBadInputPrecisely(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend)
		var team Team
		if code, body := f.call("POST", "/api/admin/teams", `{"name":"Billing"}`, &team); code != 201 {
			t.Fatalf("create team: %d %s", code, body)
		}
		var u User
		code, body := f.call("POST", "/api/admin/users", `{"email":"Ann@Example.test","name":" Ann ","password":"password-123","roles":["agent","supervisor"],"team_id":"`+team.ID+`"}`, &u)
		if code != 201 || u.Email != "ann@example.test" || u.Name != "Ann" || u.TeamID != team.ID || len(u.Roles) != 2 {
			t.Fatalf("create user: %d %s", code, body)
		}
		// The new account can sign in.
		if _, err := f.store.Authenticate(context.Background(), "ann@example.test", "password-123"); err != nil {
			t.Fatalf("new user cannot sign in: %v", err)
		}
		bad := []struct {
			body string
			code int
			want string
		}{
			{`{"email":"ann@example.test","name":"Ann 2","password":"password-123","roles":["agent"]}`, 409, "exists"},
			{`{"email":"x@example.test","name":"X","password":"password-123","roles":["boss"]}`, 400, `unknown role "boss"`},
			{`{"email":"x@example.test","name":"X","password":"password-123","roles":[]}`, 400, "at least one role"},
			{`{"email":"x@example.test","name":"X","password":"short","roles":["agent"]}`, 400, "8 to 72 bytes"},
			{`{"email":"not-an-address","name":"X","password":"password-123","roles":["agent"]}`, 400, "is not an address"},
			{`{"email":"x@example.test","name":"","password":"password-123","roles":["agent"]}`, 400, "name is empty"},
			{`{"email":"x@example.test","name":"` + strings.Repeat("n", 101) + `","password":"password-123","roles":["agent"]}`, 400, "limit is 100"},
			{`{"email":"x@example.test","name":"X","password":"password-123","roles":["agent"],"team_id":"nope"}`, 400, `team "nope" does not exist`},
			{`{"email":"x@example.test","name":"X","password":"password-123","roles":["agent"],"admin":true}`, 400, `unknown field "admin"`},
			{`{"email":`, 400, "invalid JSON body"},
			{``, 400, "body is empty"},
			{`{"email":"x@example.test","name":"X","password":"password-123","roles":["agent"]} {}`, 400, "data after the object"},
		}
		for _, b := range bad {
			code, body := f.call("POST", "/api/admin/users", b.body, nil)
			if code != b.code || !strings.Contains(body, b.want) {
				t.Errorf("POST %s: got %d %s, want %d containing %q", b.body, code, body, b.code, b.want)
			}
		}
		n, _ := f.store.Count(context.Background())
		if n != 2 {
			t.Fatalf("bad requests created users: %d accounts, want 2", n)
		}
	})
}

func TestAdminUpdatesAndDeletesUsers(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend)
		ctx := context.Background()
		u, err := f.store.CreateUser(ctx, "bob@example.test", "Bob", "password-123", []Role{Agent}, "")
		if err != nil {
			t.Fatal(err)
		}
		bobToken, _, _ := f.store.NewSession(ctx, u.ID)
		var got User
		if code, body := f.call("PATCH", "/api/admin/users/"+u.ID, `{"roles":["moderator"]}`, &got); code != 200 || got.Name != "Bob" || len(got.Roles) != 1 || got.Roles[0] != Moderator {
			t.Fatalf("change roles: %d %s", code, body)
		}
		if _, _, err := f.store.Session(ctx, bobToken); err != nil {
			t.Fatalf("a role change should keep sessions: %v", err)
		}
		if code, body := f.call("PATCH", "/api/admin/users/"+u.ID, `{"password":"new-password-1"}`, &got); code != 200 {
			t.Fatalf("set password: %d %s", code, body)
		}
		if _, _, err := f.store.Session(ctx, bobToken); err != ErrNoSession {
			t.Fatalf("a new password must end old sessions, got %v", err)
		}
		if _, err := f.store.Authenticate(ctx, "bob@example.test", "new-password-1"); err != nil {
			t.Fatalf("new password does not work: %v", err)
		}
		if code, _ := f.call("PATCH", "/api/admin/users/nope", `{"name":"X"}`, nil); code != 404 {
			t.Fatalf("unknown user: %d", code)
		}
		if code, body := f.call("DELETE", "/api/admin/users/"+u.ID, "", nil); code != 204 {
			t.Fatalf("delete: %d %s", code, body)
		}
		if _, err := f.store.User(ctx, u.ID); err != ErrNotFound {
			t.Fatalf("deleted user still there: %v", err)
		}
		if code, _ := f.call("DELETE", "/api/admin/users/"+u.ID, "", nil); code != 404 {
			t.Fatalf("second delete: %d", code)
		}
	})
}

func TestAdminCannotLockThemselvesOut(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend)
		if code, body := f.call("DELETE", "/api/admin/users/"+f.admin.ID, "", nil); code != 409 || !strings.Contains(body, "your own account") {
			t.Fatalf("self delete: %d %s", code, body)
		}
		if code, body := f.call("PATCH", "/api/admin/users/"+f.admin.ID, `{"roles":["agent"]}`, nil); code != 409 || !strings.Contains(body, "own admin role") {
			t.Fatalf("self demote: %d %s", code, body)
		}
		// With a second admin, the first may demote the second but not the last.
		ctx := context.Background()
		other, _ := f.store.CreateUser(ctx, "other@example.test", "Other", "password-123", []Role{Admin}, "")
		if code, body := f.call("PATCH", "/api/admin/users/"+other.ID, `{"roles":["agent"]}`, nil); code != 200 {
			t.Fatalf("demote other admin: %d %s", code, body)
		}
		u, _ := f.store.User(ctx, f.admin.ID)
		if !u.Has(Admin) {
			t.Fatal("the caller lost admin")
		}
	})
}

func TestTeamsLifecycle(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend)
		ctx := context.Background()
		var a Team
		f.call("POST", "/api/admin/teams", `{"name":"Sales"}`, &a)
		if code, body := f.call("POST", "/api/admin/teams", `{"name":"Sales"}`, nil); code != 409 {
			t.Fatalf("duplicate team: %d %s", code, body)
		}
		if code, body := f.call("POST", "/api/admin/teams", `{"name":"  "}`, nil); code != 400 || !strings.Contains(body, "team name is empty") {
			t.Fatalf("empty team name: %d %s", code, body)
		}
		if code, body := f.call("POST", "/api/admin/teams", "{\"name\":\"a\\u0007b\"}", nil); code != 400 || !strings.Contains(body, "control character") {
			t.Fatalf("control char: %d %s", code, body)
		}
		member, _ := f.store.CreateUser(ctx, "m@example.test", "M", "password-123", []Role{Agent}, a.ID)
		var list struct{ Teams []Team }
		f.call("GET", "/api/admin/teams", "", &list)
		if len(list.Teams) != 1 || list.Teams[0].Members != 1 {
			t.Fatalf("teams: %+v", list.Teams)
		}
		var renamed Team
		if code, body := f.call("PATCH", "/api/admin/teams/"+a.ID, `{"name":"Sales EU"}`, &renamed); code != 200 || renamed.Name != "Sales EU" {
			t.Fatalf("rename: %d %s", code, body)
		}
		if code, _ := f.call("PATCH", "/api/admin/teams/nope", `{"name":"x"}`, nil); code != 404 {
			t.Fatalf("rename unknown: %d", code)
		}
		if code, _ := f.call("DELETE", "/api/admin/teams/"+a.ID, "", nil); code != 204 {
			t.Fatalf("delete team: %d", code)
		}
		m, _ := f.store.User(ctx, member.ID)
		if m.TeamID != "" {
			t.Fatalf("member still in deleted team %q", m.TeamID)
		}
		if code, _ := f.call("DELETE", "/api/admin/teams/"+a.ID, "", nil); code != 404 {
			t.Fatalf("delete twice: %d", code)
		}
	})
}

func TestStaffDirectoryHidesEmails(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend)
		code, body := f.call("GET", "/api/auth/staff", "", nil)
		if code != 200 || !strings.Contains(body, `"name":"Root"`) || strings.Contains(body, "root@example.test") {
			t.Fatalf("directory: %d %s", code, body)
		}
	})
}
