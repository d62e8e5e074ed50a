package analytics

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
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
	supervisor string // session cookie values; the supervisor works on s1 and s2
	agent      string
	supS2      string // a supervisor of s2 only
	nobody     string // a supervisor on no site
	admin      string
	moderator  string // a moderator of s1 and s2
	svc        *Service
	access     *sql.DB
	staff      *access.Directory
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
	staffStore, err := access.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	as := access.NewDirectory(staffStore)
	as.SetBcryptCost(bcrypt.MinCost)
	session := func(email string, role access.Role, sites ...string) string {
		u, err := as.CreateUser(ctx, email, email, "correct horse", []access.Role{role}, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := as.SetSites(ctx, u.ID, sites); err != nil {
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
	return apiServer{base: "http://" + ln.Addr().String(), supervisor: session("sup@example.test", access.Supervisor, "s1", "s2"),
		agent: session("agent@example.test", access.Agent, "s1", "s2"),
		supS2: session("sup2@example.test", access.Supervisor, "s2"), nobody: session("none@example.test", access.Supervisor),
		admin: session("admin@example.test", access.Admin), moderator: session("mod@example.test", access.Moderator, "s1", "s2"),
		svc: svc, access: db, staff: as}
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

	// Roles are checked server-side on every endpoint; the moderation
	// report also admits moderators.
	for _, path := range []string{"/api/analytics/report", "/api/analytics/conversations", "/api/analytics/export.csv",
		"/api/analytics/overview", "/api/analytics/moderation", "/api/analytics/moderation/items", "/api/analytics/sites", "/api/analytics/agents", "/api/analytics/pipeline", "/ws/analytics"} {
		if code, _ := srv.get(t, "", path); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a session = %d, want 401", path, code)
		}
		if code, _ := srv.get(t, srv.agent, path); code != http.StatusForbidden {
			t.Errorf("GET %s as an agent = %d, want 403", path, code)
		}
		moderation := strings.HasPrefix(path, "/api/analytics/moderation") || path == "/api/analytics/sites"
		if code, _ := srv.get(t, srv.moderator, path+"?"+goldenParams); (code == http.StatusOK) != moderation {
			t.Errorf("GET %s as a moderator = %d", path, code)
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
		"/api/analytics/report?tz=Mars/Olympus":                            "tz",
		"/api/analytics/report?bucket=minute":                              "bucket",
		"/api/analytics/report?split=visitor":                              "split",
		"/api/analytics/report?from=yesterday":                             "from",
		"/api/analytics/report?from=2024-04-02&to=2024-03-01":              "must be after",
		"/api/analytics/report?bucket=hour&from=2000-01-01":                "buckets",
		"/api/analytics/report?business_hours=maybe":                       "business_hours",
		"/api/analytics/conversations?metric=bogus":                        "metric",
		"/api/analytics/conversations?limit=100000":                        "limit",
		"/api/analytics/conversations?" + goldenParams + "&point=today":    "point",
		"/api/analytics/moderation/items?" + goldenParams + "&what=bogus":  "what",
		"/api/analytics/moderation/items?" + goldenParams + "&point=today": "point",
	} {
		code, body := srv.get(t, srv.supervisor, path)
		if code != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %s; want 400 mentioning %q", path, code, body, want)
		}
	}

	// Drill-down behind the 31 March "missed" point says why.
	code, body = srv.get(t, srv.supervisor, "/api/analytics/conversations?"+goldenParams+"&point="+url.QueryEscape("2024-03-31T00:00:00+01:00")+"&metric=missed")
	if code != http.StatusOK {
		t.Fatalf("drill-down = %d %s", code, body)
	}
	var drill struct {
		Conversations []struct {
			ConversationID string `json:"conversation_id"`
			Missed         bool   `json:"missed"`
			MissReason     string `json:"miss_reason"`
			Reason         string `json:"reason"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(body, &drill); err != nil {
		t.Fatal(err)
	}
	if len(drill.Conversations) != 1 || drill.Conversations[0].ConversationID != "c3" || !drill.Conversations[0].Missed ||
		drill.Conversations[0].MissReason != missVisitorLeft || drill.Conversations[0].Reason != "the visitor left before any human reply" {
		t.Fatalf("drill-down = %s", body)
	}

	code, body = srv.get(t, srv.supervisor, "/api/analytics/moderation?"+goldenParams)
	if code != http.StatusOK {
		t.Fatalf("moderation = %d %s", code, body)
	}
	var mr ModerationReport
	if err := json.Unmarshal(body, &mr); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "moderation over HTTP", loadExpected(t).Moderation, mr)
	// The moderation drill-down: what is waiting at the end of 1 April, and what mod2 removed.
	code, body = srv.get(t, srv.moderator, "/api/analytics/moderation/items?"+goldenParams+"&what=backlog&point="+url.QueryEscape("2024-04-01T00:00:00+02:00"))
	var items struct {
		Items []ModerationFact `json:"items"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &items) != nil || len(items.Items) != 2 || items.Items[0].ItemID != "i2" || items.Items[1].ItemID != "i4" {
		t.Fatalf("moderation backlog items = %d %s", code, body)
	}
	code, body = srv.get(t, srv.moderator, "/api/analytics/moderation/items?"+goldenParams+"&what=decisions&moderator=mod2")
	if code != http.StatusOK || json.Unmarshal(body, &items) != nil || len(items.Items) != 1 || items.Items[0].ItemID != "i3" || items.Items[0].Decision != "remove" {
		t.Fatalf("moderation decisions of mod2 = %d %s", code, body)
	}

	code, body = srv.get(t, srv.supervisor, "/api/analytics/sites")
	if code != http.StatusOK || !strings.Contains(string(body), `{"id":"s2","name":"Night desk","timezone":"Europe/London","first_response_target_s":300,"reply_target_s":300}`) {
		t.Fatalf("sites = %d %s", code, body)
	}
	code, body = srv.get(t, srv.supervisor, "/api/analytics/agents?"+goldenParams)
	if code != http.StatusOK || !strings.Contains(string(body), `"agent_id":"a3"`) {
		t.Fatalf("agents = %d %s", code, body)
	}
	code, body = srv.get(t, srv.supervisor, "/api/analytics/overview?tz=Europe/Berlin")
	if code != http.StatusOK || !strings.Contains(string(body), `"open":2`) {
		t.Fatalf("overview = %d %s", code, body)
	}
}

// TestExportRoundTrip exports the golden fixture as CSV on both clocks,
// reads it back and checks every row against the conversation's facts:
// timestamps, durations of the chosen clock (named after it), the miss
// reason, names of sites, agents and teams, the rating and its comment
// (defused against spreadsheet formulas).
func TestExportRoundTrip(t *testing.T) {
	s := newSQLiteStore(t)
	loadGolden(t, s)
	srv := startAPI(t, Config{Store: s})
	// Staff and teams named like the fixture's ids.
	as := srv.staff
	for id, name := range map[string]string{"a1": "Ann Agent", "a2": "Bea Billing", "a3": "=Cal Night"} {
		u, err := as.CreateUser(context.Background(), id+"@example.test", name, "correct horse", []access.Role{access.Agent}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.access.Exec(`UPDATE staff_users SET id = ? WHERE id = ?`, id, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	for id, name := range map[string]string{"t1": "Support", "t2": "Nights"} {
		tm, err := as.CreateTeam(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.access.Exec(`UPDATE staff_teams SET id = ? WHERE id = ?`, id, tm.ID); err != nil {
			t.Fatal(err)
		}
	}
	q := goldenQuery(t)
	for _, clk := range []Clock{ClockCalendar, ClockBusiness} {
		q.Clock = clk
		want, err := s.Conversations(context.Background(), q, Drill{})
		if err != nil {
			t.Fatal(err)
		}
		code, body := srv.get(t, srv.supervisor, "/api/analytics/export.csv?"+goldenParams+"&clock="+string(clk))
		if code != http.StatusOK {
			t.Fatalf("export = %d %s", code, body)
		}
		recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want)+1 || len(want) != 11 {
			t.Fatalf("%s: %d rows for %d conversations", clk, len(recs)-1, len(want))
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		for _, name := range []string{"first_response_" + string(clk) + "_ms", "resolution_last_" + string(clk) + "_ms", "visitor_left_at", "miss_reason", "csat_comment", "agent_name", "team_name", "site_name"} {
			if _, ok := col[name]; !ok {
				t.Fatalf("%s: header %v lacks %s", clk, recs[0], name)
			}
		}
		ms := func(v string) int64 {
			if v == "" {
				return 0
			}
			ts, err := time.Parse(time.RFC3339, v)
			if err != nil {
				t.Fatalf("timestamp %q: %v", v, err)
			}
			return ts.UnixMilli()
		}
		dur := func(v string) int64 {
			if v == "" {
				return -1
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("duration %q: %v", v, err)
			}
			return n
		}
		names := map[string]string{"a1": "Ann Agent", "a2": "Bea Billing", "a3": "'=Cal Night", "t1": "Support", "t2": "Nights", "s1": "Shop", "s2": "Night desk"}
		for i, f := range want {
			row := recs[i+1]
			get := func(c string) string { return row[col[c]] }
			fr, resLast := f.FirstResponseMs, f.ResolutionLastMs
			if clk == ClockBusiness {
				fr, resLast = f.FirstResponseBhMs, f.ResolutionLastBhMs
			}
			checks := []struct {
				name      string
				got, want any
			}{
				{"conversation_id", get("conversation_id"), f.ConversationID},
				{"visitor_id", get("visitor_id"), f.VisitorID},
				{"site_name", get("site_name"), names[f.SiteID]},
				{"agent_name", get("agent_name"), names[f.AgentID]},
				{"team_name", get("team_name"), names[f.TeamID]},
				{"started_at", ms(get("started_at")), f.StartedAt},
				{"first_reply_at", ms(get("first_reply_at")), f.FirstReplyAt},
				{"visitor_left_at", ms(get("visitor_left_at")), f.LeftAt},
				{"first_resolved_at", ms(get("first_resolved_at")), f.ResolvedAt},
				{"last_resolved_at", ms(get("last_resolved_at")), f.LastResolvedAt},
				{"csat_at", ms(get("csat_at")), f.CSATAt},
				{"first_response", dur(get("first_response_" + string(clk) + "_ms")), fr},
				{"resolution_last", dur(get("resolution_last_" + string(clk) + "_ms")), resLast},
				{"missed", get("missed"), strconv.FormatBool(f.Missed)},
				{"miss_reason", get("miss_reason"), f.MissReason},
				{"csat_comment", strings.TrimPrefix(get("csat_comment"), "'"), f.CSATComment},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: %s %s = %v, want %v", clk, f.ConversationID, c.name, c.got, c.want)
				}
			}
			if strings.HasPrefix(get("csat_comment"), "=") {
				t.Errorf("%s: the comment of %s is a live formula: %q", clk, f.ConversationID, get("csat_comment"))
			}
		}
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
	if _, err := newTestApplier(t, s).apply(context.Background(), evs); err != nil {
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
	b.publish(t, testSites(t, time.Now().Add(-time.Hour)))
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
	// The count can be visible while the loader still finishes the batch
	// (its offsets and status come after the rows).
	waitFor(t, 10*time.Second, "loader status with every row", func() (bool, error) {
		st := srv.svc.Loader().Status()
		if st.Paused {
			return false, fmt.Errorf("loader paused: %+v", st)
		}
		return st.Rows == 13, nil // 10 conversations and the 3 sites' profiles
	})
}

// TestLiveOverviewEndsWhenTheAccountIsDeleted: a supervisor deleted on
// another node (no notice reaches this one) loses the live overview at the
// next re-check, which says why.
func TestLiveOverviewEndsWhenTheAccountIsDeleted(t *testing.T) {
	ctx := context.Background()
	srv := startAPI(t, Config{Store: newSQLiteStore(t), OverviewEvery: 50 * time.Millisecond, StaffRecheck: 100 * time.Millisecond})
	conn, _, err := dialLive(t, srv, srv.supervisor, srv.base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	users, err := srv.staff.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Email == "sup@example.test" {
			if err := srv.staff.DeleteUser(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var o liveOverview
		err := conn.ReadJSON(&o)
		if err == nil {
			continue
		}
		var ce *fws.CloseError
		if !errors.As(err, &ce) || ce.Text != access.ReasonAccountDeleted {
			t.Fatalf("live socket ended with %v, want a close saying %q", err, access.ReasonAccountDeleted)
		}
		return
	}
}
