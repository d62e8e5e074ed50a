package chatsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

const testOrigin = "https://shop.example"

// env is one chat node on a real listener with a real embedded broker and
// real SQLite files.
type env struct {
	t        testing.TB
	dir      string
	broker   *ingest.EmbeddedBroker
	brokers  []string
	producer *ingest.Producer
	svc      *Service
	app      *fiber.App
	base     string
	ws       string
	site     Site
	users    *access.Directory
	// staffStore is the store under users (another node's directory would share it).
	staffStore access.StaffStore
	// staffFaults makes the directory's reads of chosen users fail.
	staffFaults *faultyStaffStore
	store       ChatStore
	stop        context.CancelFunc
	runDone     chan error
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newEnv starts a chat node whose rows live in the given backend ("sqlite"
// or "postgres", see sqltest.Run).
func newEnv(t testing.TB, backend string, tweak ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	var err error
	e.broker, err = ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: filepath.Join(e.dir, "kafka")})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { e.broker.Close() })
	e.brokers = e.broker.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, e.brokers, ingest.DefaultTopics(2, 0)); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	e.producer = ingest.NewProducer(ingest.ProducerConfig{Brokers: e.brokers})
	t.Cleanup(func() { e.producer.Close() })

	adb, err := sqlstore.Open(filepath.Join(e.dir, "access.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adb.Close() })
	staffStore, err := access.OpenSQLite(ctx, adb)
	if err != nil {
		t.Fatal(err)
	}
	e.staffStore = staffStore
	e.staffFaults = &faultyStaffStore{StaffStore: staffStore, failures: map[string]int{}}
	e.users = access.NewDirectory(e.staffFaults)
	e.users.SetBcryptCost(bcrypt.MinCost)
	guard := access.NewGuard(e.users, false, testLogger(t))

	var files AttachmentStore
	e.store, files = openTestStores(t, backend)
	cfg := Config{
		Store: e.store, Attachments: files, DataDir: e.dir, Producer: e.producer, Brokers: e.brokers, NodeID: "test",
		Guard: guard, Secret: bytes.Repeat([]byte("k"), 32), Logger: testLogger(t), Registerer: prometheus.NewRegistry(),
		RelayPoll: 200 * time.Millisecond, AgentOfflineGrace: 300 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	e.svc, err = New(ctx, cfg)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	e.site, err = e.svc.CreateSite(ctx, SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin},
		Settings: SiteSettings{Color: "#123456", Greeting: "Hello!"}}, "admin")
	if err != nil {
		t.Fatal(err)
	}

	e.app = fiber.New(fiber.Config{BodyLimit: BodyLimit, DisableStartupMessage: true, ReduceMemoryUsage: true})
	guard.Mount(e.app)
	e.svc.Mount(e.app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.app.Listener(ln)
	e.base = "http://" + ln.Addr().String()
	e.ws = "ws://" + ln.Addr().String()

	runCtx, stop := context.WithCancel(context.Background())
	e.stop = stop
	e.runDone = make(chan error, 1)
	go func() { e.runDone <- e.svc.Run(runCtx) }()
	t.Cleanup(e.shutdown)
	return e
}

func (e *env) shutdown() {
	if e.stop == nil {
		return
	}
	e.app.ShutdownWithTimeout(2 * time.Second)
	e.stop()
	select {
	case err := <-e.runDone:
		if err != nil {
			e.t.Errorf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		e.t.Errorf("Run did not return within 15 s of cancel")
	}
	e.stop = nil
}

// staff is a signed-in staff member with an HTTP client.
type staff struct {
	e    *env
	user access.User
	csrf string
	http *http.Client
	jar  http.CookieJar
}

func (e *env) staff(name string, roles ...access.Role) *staff {
	e.t.Helper()
	email := strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com"
	u, err := e.users.CreateUser(context.Background(), email, name, "correct horse battery", roles, "")
	if err != nil {
		e.t.Fatal(err)
	}
	// Staff work on every site the test made so far (admins see every
	// site anyway); scope tests narrow it with SetSites.
	var sites []string
	for _, site := range e.svc.Sites() {
		sites = append(sites, site.ID)
	}
	if err := e.users.SetSites(context.Background(), u.ID, sites); err != nil {
		e.t.Fatal(err)
	}
	u.Sites = sites
	jar, _ := cookiejar.New(nil)
	s := &staff{e: e, user: u, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}, jar: jar}
	var out struct {
		CSRF string `json:"csrf"`
	}
	s.call("POST", "/api/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, 200, &out)
	s.csrf = out.CSRF
	return s
}

// call makes a JSON request and checks the status.
func (s *staff) call(method, path string, body any, want int, out any) []byte {
	s.e.t.Helper()
	return doJSON(s.e.t, s.http, method, s.e.base+path, body, want, out, map[string]string{access.CSRFHeader: s.csrf})
}

func doJSON(t testing.TB, client *http.Client, method, url string, body any, want int, out any, headers map[string]string) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
	return b
}

// agentSocket opens /ws/agent with the staff member's cookie.
func (s *staff) socket() *wsClient {
	s.e.t.Helper()
	c, _ := s.socketHello()
	return c
}

// socketHello opens an agent socket and returns it with its hello frame.
func (s *staff) socketHello() (*wsClient, frame) {
	s.e.t.Helper()
	h := http.Header{}
	h.Set("Origin", s.e.base)
	for _, c := range s.jar.Cookies(mustURL(s.e.base)) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	c := dial(s.e.t, s.e.ws+"/ws/agent", h)
	return c, c.first("hello")
}

// first reads the socket's first frame and checks it is of type typ: the
// protocol promises the hello before anything else (docs/protocol.md).
func (c *wsClient) first(typ string) frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		if f.str("type") != typ {
			c.t.Fatalf("first frame = %v, want a %s frame", f, typ)
		}
		return f
	case <-c.closed:
		c.t.Fatalf("socket closed before its %s frame", typ)
	case <-time.After(20 * time.Second):
		c.t.Fatalf("no %s frame within 20s", typ)
	}
	return nil
}

// visitorSession starts a visitor session from the test origin.
func (e *env) visitorSession(token string) (string, string) {
	e.t.Helper()
	var out sessionResponse
	doJSON(e.t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key, "token": token}, 200, &out,
		map[string]string{"Origin": testOrigin})
	return out.Token, out.VisitorID
}

func (e *env) visitorSocket(token string) *wsClient {
	e.t.Helper()
	h := http.Header{}
	h.Set("Origin", testOrigin)
	c := dial(e.t, e.ws+"/ws/visitor?token="+token, h)
	c.first("hello")
	return c
}

// frame is a decoded server frame.
type frame map[string]any

func (f frame) str(k string) string { s, _ := f[k].(string); return s }
func (f frame) num(k string) int64  { n, _ := f[k].(float64); return int64(n) }
func (f frame) obj(k string) frame  { m, _ := f[k].(map[string]any); return frame(m) }
func (f frame) list(k string) []frame {
	raw, _ := f[k].([]any)
	out := make([]frame, len(raw))
	for i, r := range raw {
		out[i], _ = r.(map[string]any)
	}
	return out
}

// wsClient reads frames in the background so a test can wait for one.
type wsClient struct {
	t      testing.TB
	conn   *fws.Conn
	frames chan frame
	closed chan struct{}
	mu     sync.Mutex
	err    error
	wmu    sync.Mutex
}

func dial(t testing.TB, url string, h http.Header) *wsClient {
	t.Helper()
	conn, resp, err := fws.DefaultDialer.Dial(url, h)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = fmt.Sprintf(" (status %d: %s)", resp.StatusCode, b)
		}
		t.Fatalf("dial %s: %v%s", url, err, body)
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan frame, 10000), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				c.mu.Lock()
				c.err = fmt.Errorf("server sent non-JSON %q", data)
				c.mu.Unlock()
				return
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c
}

// dialFail dials and returns the refused handshake's status and body.
func dialFail(t testing.TB, url string, h http.Header) (int, apiError) {
	t.Helper()
	conn, resp, err := fws.DefaultDialer.Dial(url, h)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s succeeded, want refusal", url)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v (no HTTP response)", url, err)
	}
	var body apiError
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(v)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.WriteMessage(fws.TextMessage, b); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// expect waits up to 10 s for a frame of type typ matching pred; other
// frames are skipped.
func (c *wsClient) expect(typ string, pred func(frame) bool) frame {
	c.t.Helper()
	return c.expectWithin(20*time.Second, typ, pred)
}

// expectWithin is expect with its own deadline.
func (c *wsClient) expectWithin(d time.Duration, typ string, pred func(frame) bool) frame {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f := <-c.frames:
			if f.str("type") == typ && (pred == nil || pred(f)) {
				return f
			}
		case <-c.closed:
			// drain what arrived before the close
			select {
			case f := <-c.frames:
				if f.str("type") == typ && (pred == nil || pred(f)) {
					return f
				}
				continue
			default:
			}
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			c.t.Fatalf("socket closed while waiting for %s: %v", typ, err)
		case <-deadline:
			c.t.Fatalf("no %s frame within %s", typ, d)
		}
	}
}

// none checks that no frame of type typ matching pred arrives within d.
func (c *wsClient) none(typ string, pred func(frame) bool, d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f := <-c.frames:
			if f.str("type") == typ && (pred == nil || pred(f)) {
				c.t.Fatalf("unexpected %s frame: %v", typ, f)
			}
		case <-deadline:
			return
		}
	}
}

func (c *wsClient) closeErr(timeout time.Duration) error {
	select {
	case <-c.closed:
	case <-time.After(timeout):
		return errors.New("still open")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func byClient(id string) func(frame) bool {
	return func(f frame) bool { return f.str("client_id") == id }
}

func byRef(ref string) func(frame) bool {
	return func(f frame) bool { return f.str("ref") == ref }
}

// eventLog reads every partition of a topic from the start.
type eventLog struct {
	mu     sync.Mutex
	events []ingest.Event
	dups   map[string]int
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func readTopic(t testing.TB, brokers []string, topic string, partitions int) *eventLog {
	ctx, cancel := context.WithCancel(context.Background())
	l := &eventLog{dups: map[string]int{}, stop: cancel}
	for p := 0; p < partitions; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				ev, err := ingest.Decode(m.Value)
				if err != nil {
					t.Errorf("undecodable event on %s: %v", topic, err)
					continue
				}
				l.mu.Lock()
				l.events = append(l.events, ev)
				l.dups[ev.ID]++
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { cancel(); l.wg.Wait() })
	return l
}

// waitFor polls the log until cond holds or 20 s pass.
func (l *eventLog) waitFor(t testing.TB, what string, cond func([]ingest.Event) bool) []ingest.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l.mu.Lock()
		evs := append([]ingest.Event(nil), l.events...)
		l.mu.Unlock()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			types := map[ingest.Type]int{}
			for _, e := range evs {
				types[e.Type]++
			}
			t.Fatalf("Kafka never showed %s; saw %v", what, types)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasEvent(typ ingest.Type, conv string, pred func(ingest.Event) bool) func([]ingest.Event) bool {
	return func(evs []ingest.Event) bool {
		for _, e := range evs {
			if e.Type == typ && (conv == "" || e.ConversationID == conv) && (pred == nil || pred(e)) {
				return true
			}
		}
		return false
	}
}

// poll waits for cond with a deadline.
func poll(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// postJSON posts body and returns the status, without judging it.
func postJSON(url string, body any, headers map[string]string) (int, []byte) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// faultyStaffStore is the real staff store whose UserByID fails for a
// user as often as a test asks: a staff store that is slow or down.
type faultyStaffStore struct {
	access.StaffStore
	mu       sync.Mutex
	failures map[string]int
}

// failReads makes the next n reads of user id fail.
func (f *faultyStaffStore) failReads(id string, n int) {
	f.mu.Lock()
	f.failures[id] = n
	f.mu.Unlock()
}

// pending is how many failures are still to come for user id.
func (f *faultyStaffStore) pending(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures[id]
}

func (f *faultyStaffStore) UserByID(ctx context.Context, id string) (access.User, string, error) {
	f.mu.Lock()
	if f.failures[id] > 0 {
		f.failures[id]--
		f.mu.Unlock()
		return access.User{}, "", errors.New("staff store unavailable (injected)")
	}
	f.mu.Unlock()
	return f.StaffStore.UserByID(ctx, id)
}
