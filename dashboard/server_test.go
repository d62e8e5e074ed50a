package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/sqlstore"
)

// testPassword is every test account's password.
const testPassword = "correct horse battery"

// testServer is the dashboard and access's routes on a real listener,
// backed by a real SQLite file, with one account per role.
type testServer struct {
	URL    string
	Store  *access.Directory
	Users  map[access.Role]access.User
	Tokens *access.Tokens
}

func startServer(t testing.TB) *testServer {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "access.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	staffStore, err := access.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	store := access.NewDirectory(staffStore)
	store.SetBcryptCost(bcrypt.MinCost)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard := access.NewGuard(store, false, log)
	tokenStore, err := access.OpenTokensSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	tokens := access.NewTokens(tokenStore)
	guard.UseTokens(tokens)
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			code := fiber.StatusInternalServerError
			var fe *fiber.Error
			if errors.As(err, &fe) {
				code = fe.Code
			}
			return c.Status(code).JSON(fiber.Map{"error": err.Error()})
		},
	})
	guard.Mount(app)
	guard.MountAdmin(app)
	guard.MountTokens(app)
	New(Config{Guard: guard, Logger: log}).Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second) })

	s := &testServer{URL: "http://" + ln.Addr().String(), Store: store, Users: map[access.Role]access.User{}, Tokens: tokens}
	for _, r := range access.Roles {
		u, err := store.CreateUser(ctx, string(r)+"@example.test", "Test "+string(r), testPassword, []access.Role{r}, "")
		if err != nil {
			t.Fatal(err)
		}
		s.Users[r] = u
	}
	return s
}

// client is a staff member's HTTP client: cookie jar plus CSRF token.
type client struct {
	t    testing.TB
	base string
	http *http.Client
	csrf string
	// bearer is an API token sent instead of a session.
	bearer string
}

func (s *testServer) anonymous(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: s.URL, http: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// login signs in as the account of role r.
func (s *testServer) login(t testing.TB, r access.Role) *client {
	t.Helper()
	c := s.anonymous(t)
	res, body := c.do("POST", "/api/auth/login", map[string]string{"email": string(r) + "@example.test", "password": testPassword})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: %d %s", r, res.StatusCode, body)
	}
	var me struct{ CSRF string }
	if err := json.Unmarshal(body, &me); err != nil || me.CSRF == "" {
		t.Fatalf("login as %s: no csrf in %s", r, body)
	}
	c.csrf = me.CSRF
	return c
}

// do sends a request (JSON body when body is not nil) with the CSRF
// header on unsafe methods and returns the response and its body.
func (c *client) do(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" && method != "GET" && method != "HEAD" {
		req.Header.Set(access.CSRFHeader, c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res, b
}
