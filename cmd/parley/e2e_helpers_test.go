package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// e2eAdminPassword is the first admin's password in end-to-end tests.
const e2eAdminPassword = "e2e-admin-password"

// e2eStaffPassword is the password of every staff user a test creates.
const e2eStaffPassword = "staff-password-1"

// parleyE2E is one `parley serve` on its own data directory, with the
// first admin signed in over HTTP and the first site ("Demo") it created.
type parleyE2E struct {
	t     *testing.T
	base  string
	admin *staffClient
	site  siteInfo
}

type siteInfo struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Key            string   `json:"key"`
	AllowedOrigins []string `json:"allowed_origins"`
	Snippet        string   `json:"snippet"`
}

// startE2E starts `parley serve` (with extra flags) and waits until it is ready.
func startE2E(t *testing.T, extra ...string) *parleyE2E {
	t.Helper()
	t.Setenv("PARLEY_ADMIN_PASSWORD", e2eAdminPassword)
	base, _ := startServe(t, t.TempDir(), extra...)
	waitUntil(t, 30*time.Second, "/readyz 200", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusOK
	})
	p := &parleyE2E{t: t, base: base}
	p.admin = signIn(t, base, initialAdminEmail, e2eAdminPassword)
	var sites struct {
		Sites []siteInfo `json:"sites"`
	}
	p.admin.call("GET", "/api/chat/sites", nil, http.StatusOK, &sites)
	if len(sites.Sites) != 1 {
		t.Fatalf("serve created %d sites, want the one demo site", len(sites.Sites))
	}
	p.site = sites.Sites[0]
	return p
}

// createStaff creates a staff account through the admin API and returns its id.
func (p *parleyE2E) createStaff(email, name string, roles ...string) string {
	p.t.Helper()
	var u struct {
		ID string `json:"id"`
	}
	p.admin.call("POST", "/api/admin/users", map[string]any{
		"email": email, "name": name, "password": e2eStaffPassword, "roles": roles, "sites": []string{p.site.ID},
	}, http.StatusCreated, &u)
	return u.ID
}

// allowOrigin adds origin to a site's allowed origins through the admin sites API.
func (p *parleyE2E) allowOrigin(siteID, origin string) {
	p.t.Helper()
	var site map[string]any
	p.admin.call("GET", "/api/chat/sites/"+siteID, nil, http.StatusOK, &site)
	origins, _ := site["allowed_origins"].([]any)
	site["allowed_origins"] = append(origins, origin)
	var out siteInfo
	p.admin.call("PUT", "/api/chat/sites/"+siteID, site, http.StatusOK, &out)
	for _, o := range out.AllowedOrigins {
		if o == origin {
			return
		}
	}
	p.t.Fatalf("site %s does not allow %s after the update: %v", siteID, origin, out.AllowedOrigins)
}

// staffClient is a signed-in staff member talking to the HTTP API.
type staffClient struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
	ID   string
	// bearer is an API token sent instead of a session (tokenClient).
	bearer string
}

// tokenClient calls the API with an API token and no session.
func tokenClient(t *testing.T, base, secret string) *staffClient {
	return &staffClient{t: t, base: base, http: &http.Client{Timeout: 20 * time.Second}, bearer: secret}
}

// createToken creates an API token through the admin API and returns its secret and id.
func (p *parleyE2E) createToken(name string, scopes []string, sites []string) (secret, id string) {
	p.t.Helper()
	var tk struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	p.admin.call("POST", "/api/admin/tokens", map[string]any{"name": name, "scopes": scopes, "sites": sites}, http.StatusCreated, &tk)
	return tk.Secret, tk.ID
}

func signIn(t *testing.T, base, email, password string) *staffClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &staffClient{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		CSRF string `json:"csrf"`
	}
	c.call("POST", "/api/auth/login", map[string]string{"email": email, "password": password}, http.StatusOK, &out)
	c.csrf, c.ID = out.CSRF, out.User.ID
	return c
}

// request sends one request (with the CSRF header when withCSRF) and
// returns the status and body.
func (c *staffClient) request(method, path string, body any, withCSRF bool) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatalf("encode %s %s body: %v", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withCSRF && c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// call sends a request with the CSRF header, fails the test unless the
// status is want, and decodes the JSON answer into out (when not nil).
func (c *staffClient) call(method, path string, body any, want int, out any) {
	c.t.Helper()
	code, b := c.request(method, path, body, true)
	if code != want {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// cookieHeader is the session cookie for a WebSocket handshake.
func (c *staffClient) cookieHeader() string {
	u, _ := url.Parse(c.base)
	var parts []string
	for _, ck := range c.http.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// socket is a chat WebSocket read in the background.
type socket struct {
	t      *testing.T
	conn   *fws.Conn
	frames chan map[string]any
	wmu    sync.Mutex
}

func dialSocket(t *testing.T, wsURL string, h http.Header) *socket {
	t.Helper()
	conn, res, err := fws.DefaultDialer.Dial(wsURL, h)
	if err != nil {
		msg := ""
		if res != nil {
			b, _ := io.ReadAll(res.Body)
			msg = fmt.Sprintf(" (%d: %s)", res.StatusCode, b)
		}
		t.Fatalf("dial %s: %v%s", wsURL, err, msg)
	}
	s := &socket{t: t, conn: conn, frames: make(chan map[string]any, 1000)}
	go func() {
		defer close(s.frames)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(data, &f) == nil {
				s.frames <- f
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s
}

func (s *socket) send(frame any) {
	s.t.Helper()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.conn.WriteJSON(frame); err != nil {
		s.t.Fatalf("send %v: %v", frame, err)
	}
}

// expect returns the first frame for which match is true, within 15 s.
func (s *socket) expect(what string, match func(map[string]any) bool) map[string]any {
	s.t.Helper()
	return s.expectWithin(15*time.Second, what, match)
}

// expectWithin is expect with its own deadline.
func (s *socket) expectWithin(d time.Duration, what string, match func(map[string]any) bool) map[string]any {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				s.t.Fatalf("socket closed while waiting for %s", what)
			}
			if f["type"] == "error" {
				s.t.Logf("socket error frame while waiting for %s: %v", what, f)
			}
			if match(f) {
				return f
			}
		case <-deadline:
			s.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

func ofType(typ string) func(map[string]any) bool {
	return func(f map[string]any) bool { return f["type"] == typ }
}

func wsURL(base, path string) string { return "ws" + strings.TrimPrefix(base, "http") + path }

// goVisitor is a visitor driven from Go through the chat API (visitor
// session over REST, then /ws/visitor), as the widget would.
type goVisitor struct {
	*socket
	ID string
}

func newGoVisitor(t *testing.T, base, siteKey, origin string) *goVisitor {
	t.Helper()
	token, id := visitorToken(t, base, siteKey, origin)
	return dialGoVisitor(t, base, origin, token, id)
}

// dialGoVisitor connects a visitor whose session is open and waits for its hello.
func dialGoVisitor(t *testing.T, base, origin, token, visitorID string) *goVisitor {
	t.Helper()
	s := dialSocket(t, wsURL(base, "/ws/visitor?token="+url.QueryEscape(token)), http.Header{"Origin": {origin}})
	s.expect("visitor hello", ofType("hello"))
	return &goVisitor{socket: s, ID: visitorID}
}

// visitorSession opens a visitor session through base with the given
// request body (site_key, and user for an identified visitor).
func visitorSession(t *testing.T, base, origin string, body map[string]any) (token, visitorID string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+"/api/chat/visitor/session", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("visitor session: %v", err)
	}
	defer res.Body.Close()
	var sess struct {
		Token     string `json:"token"`
		VisitorID string `json:"visitor_id"`
	}
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || json.Unmarshal(out, &sess) != nil {
		t.Fatalf("visitor session = %d: %s", res.StatusCode, out)
	}
	return sess.Token, sess.VisitorID
}

// say sends a message and returns the conversation id from its ack.
func (v *goVisitor) say(clientID, text string) string {
	v.t.Helper()
	v.send(map[string]any{"type": "send", "ref": clientID, "client_id": clientID, "text": text})
	ack := v.expect("ack of "+clientID, func(f map[string]any) bool {
		return (f["type"] == "ack" || f["type"] == "blocked") && f["client_id"] == clientID
	})
	id, _ := ack["conversation_id"].(string)
	return id
}

// agentSocket opens /ws/agent for a signed-in staff member.
func agentSocket(t *testing.T, c *staffClient) *socket {
	t.Helper()
	s := dialSocket(t, wsURL(c.base, "/ws/agent"), http.Header{"Origin": {c.base}, "Cookie": {c.cookieHeader()}})
	s.expect("agent hello", ofType("hello"))
	return s
}

// Browser helpers.

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript predicate until it is truthy, up to d.
func waitFor(t *testing.T, ctx context.Context, d time.Duration, predicate string) {
	t.Helper()
	browsertest.WaitJS(t, ctx, d, predicate)
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return browsertest.Eval[T](t, ctx, expr)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// loginUI signs in through the login page, starting from path, and waits
// for the page the app lands on.
func loginUI(t *testing.T, ctx context.Context, base, path, email, password string) {
	t.Helper()
	do(t, ctx, "open "+path, chromedp.Navigate(base+path))
	waitFor(t, ctx, 15*time.Second, `location.pathname === '/login' && !!document.querySelector('#login-form')`)
	do(t, ctx, "fill the login form",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, 15*time.Second, `location.pathname.startsWith('/app/') && document.querySelectorAll('#nav a').length > 0`)
}

// testPage is a customer's web site on another origin (another port of
// 127.0.0.1) whose page carries a widget snippet.
type testPage struct {
	srv     *httptest.Server
	origin  string
	mu      sync.Mutex
	snippet string
}

func newTestPage(t *testing.T, snippet string) *testPage {
	t.Helper()
	tp := &testPage{snippet: snippet}
	tp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp.mu.Lock()
		s := tp.snippet
		tp.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title></head>"+
			"<body><h1>Customer shop</h1><p>A page on another origin.</p>\n%s\n</body></html>", s)
	}))
	t.Cleanup(tp.srv.Close)
	tp.origin = tp.srv.URL
	return tp
}

func (tp *testPage) setSnippet(s string) {
	tp.mu.Lock()
	tp.snippet = s
	tp.mu.Unlock()
}

// widgetJS evaluates expr with `w` bound to the widget's shadow root.
func widgetJS(expr string) string {
	return `(() => { const w = document.querySelector('#parley-widget-host')?.shadowRoot; if (!w) return null; return (` + expr + `); })()`
}

// visitorSays opens the widget (if closed) and sends text, then waits
// until the server acknowledged it (the message is no longer pending).
func visitorSays(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	waitFor(t, ctx, 15*time.Second, widgetJS(`!!w.querySelector('.launcher')`))
	do(t, ctx, "open the widget", chromedp.Evaluate[chromedp.Void](widgetJS(
		`w.querySelector('.panel').hidden && w.querySelector('.launcher').click()`)))
	waitFor(t, ctx, 15*time.Second, widgetJS(`!w.querySelector('.panel').hidden && !!w.querySelector('.composer textarea') && w.querySelector('.composer').offsetParent !== null`))
	do(t, ctx, "type and send", chromedp.Evaluate[chromedp.Void](widgetJS(
		`(w.querySelector('.composer textarea').value = `+jsString(text)+`, w.querySelector('.composer .send').click())`)))
	waitFor(t, ctx, 15*time.Second, widgetJS(
		`[...w.querySelectorAll('.msg.mine:not(.pending) .text')].some(p => p.textContent === `+jsString(text)+`)`))
}

// visitorSees waits until the widget shows a message from the other side.
func visitorSees(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	waitFor(t, ctx, 15*time.Second, widgetJS(
		`[...w.querySelectorAll('.msg.theirs .text')].some(p => p.textContent === `+jsString(text)+`)`))
}
