package access

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestStaffStoreSecurityConformance covers site memberships, sign-in
// failure counts and the sign-in audit on both backends.
func TestStaffStoreSecurityConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStaffStore(t, backend)
		now := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
		for _, u := range []User{
			{ID: "u1", Email: "ann@example.test", Name: "Ann", Roles: []Role{Agent}, CreatedAt: now},
			{ID: "u2", Email: "bob@example.test", Name: "Bob", Roles: []Role{Supervisor}, CreatedAt: now},
		} {
			if err := s.InsertUser(ctx, u, "hash"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetUserSites(ctx, "u1", []string{"s1", "s2"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserSites(ctx, "u2", []string{"s2"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserSites(ctx, "u1", []string{"s2", "s3"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserSites(ctx, "nobody", []string{"s1"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetUserSites of a missing user = %v, want ErrNotFound", err)
		}
		u, _, err := s.UserByID(ctx, "u1")
		if err != nil || !slices.Equal(u.Sites, []string{"s2", "s3"}) {
			t.Fatalf("UserByID sites = %v, %v; want [s2 s3]", u.Sites, err)
		}
		u, _, err = s.UserByEmail(ctx, "bob@example.test")
		if err != nil || !slices.Equal(u.Sites, []string{"s2"}) {
			t.Fatalf("UserByEmail sites = %v, %v", u.Sites, err)
		}
		all, err := s.Users(ctx)
		if err != nil || len(all) != 2 || !slices.Equal(all[0].Sites, []string{"s2", "s3"}) || !slices.Equal(all[1].Sites, []string{"s2"}) {
			t.Fatalf("Users = %+v, %v", all, err)
		}
		if err := s.DeleteUser(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertUser(ctx, User{ID: "u1", Email: "ann2@example.test", Name: "Ann", Roles: []Role{Agent}, CreatedAt: now}, "h"); err != nil {
			t.Fatal(err)
		}
		if u, _, _ := s.UserByID(ctx, "u1"); len(u.Sites) != 0 {
			t.Fatalf("a deleted user's memberships survived: %v", u.Sites)
		}

		// Failure counts: stored, replaced, purged when old, cleared.
		f, err := s.LoginFailures(ctx, "ann@example.test")
		if err != nil || f.Failures != 0 {
			t.Fatalf("LoginFailures before any = %+v, %v", f, err)
		}
		put := LoginFailures{Email: "ann@example.test", Failures: 3, FirstAt: now, LockedUntil: now.Add(time.Minute)}
		if err := s.PutLoginFailures(ctx, put, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		old := LoginFailures{Email: "old@example.test", Failures: 1, FirstAt: now.Add(-48 * time.Hour)}
		if err := s.PutLoginFailures(ctx, old, now.Add(-72*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoginFailures(ctx, "ann@example.test")
		if err != nil || got.Failures != 3 || !got.FirstAt.Equal(now) || !got.LockedUntil.Equal(now.Add(time.Minute)) {
			t.Fatalf("LoginFailures = %+v, %v", got, err)
		}
		put.Failures = 4
		if err := s.PutLoginFailures(ctx, put, now.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LoginFailures(ctx, "old@example.test"); got.Failures != 0 {
			t.Fatalf("an old failure record was not purged: %+v", got)
		}
		if got, _ := s.LoginFailures(ctx, "ann@example.test"); got.Failures != 4 {
			t.Fatalf("replaced failures = %d, want 4", got.Failures)
		}
		if err := s.ClearLoginFailures(ctx, "ann@example.test"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LoginFailures(ctx, "ann@example.test"); got.Failures != 0 {
			t.Fatalf("cleared failures = %+v", got)
		}

		// The audit: newest first, failed only on request.
		for i, e := range []SignIn{
			{At: now, Email: "a@x.test", IP: "10.0.0.1", Reason: "wrong email or password"},
			{At: now.Add(time.Second), Email: "a@x.test", UserID: "u1", IP: "10.0.0.1", OK: true},
			{At: now.Add(2 * time.Second), Email: "b@x.test", IP: "10.0.0.2", Reason: "account locked"},
		} {
			if err := s.AppendSignIn(ctx, e); err != nil {
				t.Fatalf("sign-in %d: %v", i, err)
			}
		}
		list, err := s.SignIns(ctx, false, 10)
		if err != nil || len(list) != 3 || list[0].Email != "b@x.test" || !list[1].OK || list[1].UserID != "u1" || !list[2].At.Equal(now) {
			t.Fatalf("SignIns = %+v, %v", list, err)
		}
		failed, err := s.SignIns(ctx, true, 10)
		if err != nil || len(failed) != 2 || failed[0].Reason != "account locked" {
			t.Fatalf("failed SignIns = %+v, %v", failed, err)
		}
	})
}

// TestAccountLockout: five failed sign-ins lock the account for a while
// (the right password is refused with 429 meanwhile); every attempt is in
// the audit; an admin's password reset lifts the lock.
func TestAccountLockout(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend)
		ctx := context.Background()
		u, err := f.store.CreateUser(ctx, "ann@example.test", "Ann", "password-123", []Role{Agent}, "")
		if err != nil {
			t.Fatal(err)
		}
		login := func(email, password string) (int, string) {
			return postLogin(t, f, "application/json", "", `{"email":"`+email+`","password":"`+password+`"}`)
		}
		for i := 0; i < lockoutFailures; i++ {
			if code, body := login("Ann@example.test", "wrong-password"); code != http.StatusUnauthorized {
				t.Fatalf("failed sign-in %d: %d %s", i, code, body)
			}
		}
		code, body := login("ann@example.test", "password-123")
		if code != http.StatusTooManyRequests || !strings.Contains(body, "too many failed sign-ins") {
			t.Fatalf("right password on a locked account: %d %s; want 429", code, body)
		}
		// Another account is not affected.
		if _, err := f.store.CreateUser(ctx, "bob@example.test", "Bob", "password-123", []Role{Agent}, ""); err != nil {
			t.Fatal(err)
		}
		if code, body := login("bob@example.test", "password-123"); code != http.StatusOK {
			t.Fatalf("another account: %d %s", code, body)
		}
		var audit struct{ SignIns []SignIn }
		if code, body := f.call("GET", "/api/admin/signins?failed=1", "", &audit); code != 200 {
			t.Fatalf("audit: %d %s", code, body)
		}
		if len(audit.SignIns) != lockoutFailures+1 || audit.SignIns[0].Reason != "account locked" || audit.SignIns[1].Reason != "wrong email or password; account locked" {
			t.Fatalf("failed sign-ins in the audit: %+v", audit.SignIns)
		}
		// An admin resets the password: the lock is lifted.
		if code, body := f.call("PATCH", "/api/admin/users/"+u.ID, `{"password":"a-new-password"}`, nil); code != 200 {
			t.Fatalf("reset: %d %s", code, body)
		}
		if code, body := login("ann@example.test", "a-new-password"); code != http.StatusOK {
			t.Fatalf("after the reset: %d %s", code, body)
		}
	})
}

// TestLoginTakesJSONFromItsOwnOrigin: the sign-in refuses form bodies
// and posts from other sites (login CSRF).
func TestLoginTakesJSONFromItsOwnOrigin(t *testing.T) {
	f := newAdminFixture(t, "sqlite")
	if _, err := f.store.CreateUser(context.Background(), "ann@example.test", "Ann", "password-123", []Role{Agent}, ""); err != nil {
		t.Fatal(err)
	}
	try := func(contentType, origin, body string) (int, string) {
		return postLogin(t, f, contentType, origin, body)
	}
	jsonBody := `{"email":"ann@example.test","password":"password-123"}`
	cases := []struct {
		ct, origin, body string
		code             int
		want             string
	}{
		{"application/x-www-form-urlencoded", "", "email=ann%40example.test&password=password-123", 415, "JSON"},
		{"multipart/form-data; boundary=x", "", "--x--", 415, "JSON"},
		{"text/plain", "https://parley.example", jsonBody, 415, "JSON"},
		{"application/json", "https://evil.example", jsonBody, 403, "may not sign in"},
		{"application/json", "null", jsonBody, 403, "may not sign in"},
		{"application/json", "", `{"email":"ann@example.test","password":"password-123","remember":true}`, 400, "unknown field"},
		{"application/json", "https://parley.example", jsonBody, 200, "csrf"},
		{"application/json; charset=utf-8", "", jsonBody, 200, "csrf"},
	}
	for _, c := range cases {
		if code, body := try(c.ct, c.origin, c.body); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("login %s from %q: %d %s; want %d containing %q", c.ct, c.origin, code, body, c.code, c.want)
		}
	}
}

// TestAdminSetsSites: memberships through the admin API, validated, and
// changing them closes the user's sockets (listeners hear it).
func TestAdminSetsSites(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend)
		heard := &recorder{}
		f.store.Listen(heard)
		var u User
		if code, body := f.call("POST", "/api/admin/users", `{"email":"a@example.test","name":"A","password":"password-123","roles":["agent"],"sites":["s2","s1","s1"]}`, &u); code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
		if !slices.Equal(u.Sites, []string{"s1", "s2"}) {
			t.Fatalf("created with sites %v", u.Sites)
		}
		if code, body := f.call("PATCH", "/api/admin/users/"+u.ID, `{"sites":["s3"]}`, &u); code != 200 || !slices.Equal(u.Sites, []string{"s3"}) {
			t.Fatalf("patch sites: %d %s %v", code, body, u.Sites)
		}
		if !slices.Contains(heard.users, u.ID) {
			t.Fatal("changing sites did not tell the listeners")
		}
		if code, body := f.call("PATCH", "/api/admin/users/"+u.ID, `{"sites":["bad id"]}`, nil); code != 400 || !strings.Contains(body, "not a site id") {
			t.Fatalf("bad site id: %d %s", code, body)
		}
		if got, _ := f.store.User(context.Background(), u.ID); !slices.Equal(got.Sites, []string{"s3"}) || !got.OnSite("s3") || got.OnSite("s1") {
			t.Fatalf("stored sites %v", got.Sites)
		}
		if !f.admin.OnSite("anything") {
			t.Fatal("an admin is not on every site")
		}
	})
}

type recorder struct{ users, sessions []string }

func (r *recorder) SessionEnded(id, reason string) { r.sessions = append(r.sessions, id) }
func (r *recorder) UserChanged(id, reason string)  { r.users = append(r.users, id) }

// postLogin posts a sign-in to the fixture's app as a request to
// http://parley.example, with Origin when given.
func postLogin(t *testing.T, f *adminFixture, contentType, origin, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "http://parley.example/api/auth/login", strings.NewReader(body))
	req.Host = "parley.example"
	req.Header.Set("Content-Type", contentType)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := f.app.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestStaffDirectoryShowsColleaguesOnly: the directory lists the staff
// of the caller's sites (and admins), not other sites' staff.
func TestStaffDirectoryShowsColleaguesOnly(t *testing.T) {
	f := newAdminFixture(t, "sqlite")
	ctx := context.Background()
	mk := func(email string, sites ...string) User {
		u, err := f.store.CreateUser(ctx, email, email, "password-123", []Role{Agent}, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.SetSites(ctx, u.ID, sites); err != nil {
			t.Fatal(err)
		}
		return u
	}
	mk("a@x.test", "s1")
	mk("b@x.test", "s1", "s2")
	mk("c@x.test", "s2")
	ann := mk("ann@x.test", "s1")
	token, _, err := f.store.NewSession(ctx, ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/auth/staff", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	res, err := f.app.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	body := string(b)
	for name, want := range map[string]bool{"a@x.test": true, "b@x.test": true, "c@x.test": false, "Root": true} {
		if strings.Contains(body, `"name":"`+name+`"`) != want {
			t.Errorf("directory for a site-1 agent lists %s: %v, want %v (%s)", name, !want, want, body)
		}
	}
}
