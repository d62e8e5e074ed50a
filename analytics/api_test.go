package analytics

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

type apiServer struct {
	base       string
	supervisor string // session cookie values
	agent      string
	svc        *Service
}

// startAPI serves the analytics routes over a real socket with real
// access sessions. cfg.Store must be set; Guard is filled in.
func startAPI(t *testing.T, cfg Config) apiServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "access.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	as, err := access.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	as.SetBcryptCost(bcrypt.MinCost)
	session := func(email string, role access.Role) string {
		u, err := as.CreateUser(ctx, email, email, "correct horse", []access.Role{role}, "")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := as.NewSession(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cfg.Guard = access.NewGuard(as, false, slog.Default())
	svc, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	svc.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second) })
	return apiServer{base: "http://" + ln.Addr().String(), supervisor: session("sup@example.test", access.Supervisor),
		agent: session("agent@example.test", access.Agent), svc: svc}
}

func (a apiServer) get(t *testing.T, cookie, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: access.CookieName, Value: cookie})
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

const goldenParams = "from=2024-03-29&to=2024-04-02&tz=Europe/Berlin&bucket=day"

func TestAPI(t *testing.T) {
	s := newSQLiteStore(t)
	loadGolden(t, s)
	srv := startAPI(t, Config{Store: s, OverviewEvery: 50 * time.Millisecond})

	// Roles are checked server-side on every endpoint.
	for _, path := range []string{"/api/analytics/report", "/api/analytics/conversations", "/api/analytics/export.csv",
		"/api/analytics/overview", "/api/analytics/moderation", "/api/analytics/agents", "/api/analytics/pipeline", "/ws/analytics"} {
		if code, _ := srv.get(t, "", path); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a session = %d, want 401", path, code)
		}
		if code, _ := srv.get(t, srv.agent, path); code != http.StatusForbidden {
			t.Errorf("GET %s as an agent = %d, want 403", path, code)
		}
	}

	code, body := srv.get(t, srv.supervisor, "/api/analytics/report?"+goldenParams)
	if code != http.StatusOK {
		t.Fatalf("report = %d %s", code, body)
	}
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "report over HTTP", loadExpected(t).DayCalendar, r.Series)
	if r.TZ != "Europe/Berlin" || r.Backend != "sqlite" {
		t.Errorf("report echoes tz %q backend %q", r.TZ, r.Backend)
	}

	for path, want := range map[string]string{
		"/api/analytics/report?tz=Mars/Olympus":                         "tz",
		"/api/analytics/report?bucket=minute":                           "bucket",
		"/api/analytics/report?split=visitor":                           "split",
		"/api/analytics/report?from=yesterday":                          "from",
		"/api/analytics/report?from=2024-04-02&to=2024-03-01":           "must be after",
		"/api/analytics/report?bucket=hour&from=2000-01-01":             "buckets",
		"/api/analytics/report?business_hours=maybe":                    "business_hours",
		"/api/analytics/conversations?metric=bogus":                     "metric",
		"/api/analytics/conversations?limit=100000":                     "limit",
		"/api/analytics/conversations?" + goldenParams + "&point=today": "point",
	} {
		code, body := srv.get(t, srv.supervisor, path)
		if code != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %s; want 400 mentioning %q", path, code, body, want)
		}
	}

	// Drill-down behind the 31 March "missed" point.
	code, body = srv.get(t, srv.supervisor, "/api/analytics/conversations?"+goldenParams+"&point="+url.QueryEscape("2024-03-31T00:00:00+01:00")+"&metric=missed")
	if code != http.StatusOK {
		t.Fatalf("drill-down = %d %s", code, body)
	}
	var drill struct {
		Conversations []struct {
			ConversationID string `json:"conversation_id"`
			Missed         bool   `json:"missed"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(body, &drill); err != nil {
		t.Fatal(err)
	}
	if len(drill.Conversations) != 2 || drill.Conversations[0].ConversationID != "c4" || !drill.Conversations[1].Missed {
		t.Fatalf("drill-down = %s", body)
	}

	// CSV export: one row per conversation of the range.
	code, body = srv.get(t, srv.supervisor, "/api/analytics/export.csv?"+goldenParams)
	if code != http.StatusOK {
		t.Fatalf("export = %d %s", code, body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 8 || recs[0][1] != "conversation_id" || recs[1][1] != "c1" || recs[1][7] != "180000" {
		t.Fatalf("csv = %q", recs)
	}

	code, body = srv.get(t, srv.supervisor, "/api/analytics/moderation?"+goldenParams)
	if code != http.StatusOK || !strings.Contains(string(body), `"backlog":1`) {
		t.Fatalf("moderation = %d %s", code, body)
	}
	code, body = srv.get(t, srv.supervisor, "/api/analytics/agents?"+goldenParams)
	if code != http.StatusOK || !strings.Contains(string(body), `"agent_id":"a3"`) {
		t.Fatalf("agents = %d %s", code, body)
	}
	code, body = srv.get(t, srv.supervisor, "/api/analytics/overview?tz=Europe/Berlin")
	if code != http.StatusOK || !strings.Contains(string(body), `"open":3`) {
		t.Fatalf("overview = %d %s", code, body)
	}
}

func dialLive(t *testing.T, srv apiServer, cookie, origin string) (*fws.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	h.Set("Cookie", access.CookieName+"="+cookie)
	if origin != "" {
		h.Set("Origin", origin)
	}
	return fws.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.base, "http")+"/ws/analytics?tz=Europe/Berlin", h)
}

// TestLiveOverview checks the WebSocket pushes the overview repeatedly,
// refuses foreign origins and follows new events.
func TestLiveOverview(t *testing.T) {
	s := newSQLiteStore(t)
	srv := startAPI(t, Config{Store: s, OverviewEvery: 50 * time.Millisecond})
	if _, res, err := dialLive(t, srv, srv.supervisor, "http://evil.example"); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v, response %v; want 403", err, res)
	}
	if _, res, err := dialLive(t, srv, srv.agent, srv.base); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("agent role: err %v; want 403", err)
	}
	conn, _, err := dialLive(t, srv, srv.supervisor, srv.base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read := func() liveOverview {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var o liveOverview
		if err := conn.ReadJSON(&o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	if o := read(); o.Open != 0 || o.TZ != "Europe/Berlin" {
		t.Fatalf("first overview = %+v", o)
	}
	// A conversation starts and waits: the next pushes show it.
	now := time.Now().Add(-time.Minute)
	var evs []ingest.Event
	for _, e := range []struct {
		typ ingest.Type
		p   any
	}{
		{ingest.ConversationStarted, ingest.ConversationStartedPayload{Channel: "widget", VisitorID: "v"}},
		{ingest.ConversationQueued, ingest.ConversationQueuedPayload{Reason: "new"}},
	} {
		ev, err := ingest.New(e.typ, "s1", "live-1", ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}, now, e.p)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := (&applier{store: s, log: slog.Default()}).apply(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		o := read()
		if o.Open == 1 && o.Waiting == 1 && o.LongestWaitMs >= 60000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("overview never showed the waiting visitor: %+v", o)
		}
	}
}

// TestFreshness publishes events one at a time to a running loader (batch
// wait 200 ms, as in serve) and measures publish → counted by the query
// API. The median must be under 2 s.
func TestFreshness(t *testing.T) {
	b := startBroker(t)
	s := newSQLiteStore(t)
	srv := startAPI(t, Config{Store: s, Brokers: b.addrs, DeadLetter: b.producer, BatchWait: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var lat []time.Duration
	for i := 0; i < 10; i++ {
		conv := fmt.Sprintf("fresh-%d", i)
		e, err := ingest.New(ingest.ConversationStarted, "s1", conv, ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}, time.Now(), ingest.ConversationStartedPayload{Channel: "widget", VisitorID: "v"})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		b.publish(t, []ingest.Event{e})
		for {
			code, body := srv.get(t, srv.supervisor, "/api/analytics/report?from="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)))
			var r Report
			if code == http.StatusOK && json.Unmarshal(body, &r) == nil && r.Series[0].Points[0].Conversations.New == int64(i+1) {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("event %d not counted after 20 s: %d %s", i, code, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	median := lat[len(lat)/2]
	t.Logf("publish → counted by the query API: median %s, max %s", median, lat[len(lat)-1])
	if median > 2*time.Second {
		t.Fatalf("median freshness %s exceeds 2 s", median)
	}
	st := srv.svc.Loader().Status()
	if st.Paused || st.Rows != 10 {
		t.Fatalf("loader status = %+v", st)
	}
}
