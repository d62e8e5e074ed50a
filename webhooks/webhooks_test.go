package webhooks

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
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/egress"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/ingest/ingesttest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// siteSet is the sites a test's chat would have.
type siteSet map[string]bool

func (s siteSet) SiteExists(id string) bool { return s[id] }

// env is a running webhooks component on a real broker, with its admin
// API on a real listener and an admin session.
type env struct {
	t        *testing.T
	svc      *Service
	api      string
	cookie   string
	csrf     string
	producer *ingest.Producer
}

func startEnv(t *testing.T, backend string, pol *egress.Policy, retry RetryPolicy) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	broker := ingesttest.Broker(t, 3)
	producer := ingesttest.Producer(t, broker.Addrs())

	staff, err := access.OpenSQLite(ctx, sqltest.SQLite(t, "access"))
	if err != nil {
		t.Fatal(err)
	}
	dir := access.NewDirectory(staff)
	dir.SetBcryptCost(bcrypt.MinCost)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard := access.NewGuard(dir, false, log)
	admin, err := dir.CreateUser(ctx, "root@example.test", "Root", "password-123", []access.Role{access.Admin}, "")
	if err != nil {
		t.Fatal(err)
	}
	cookie, csrf, err := dir.NewSession(ctx, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{
		Store: openStore(t, backend), Brokers: broker.Addrs(), DeadLetter: producer, Guard: guard, Egress: pol,
		Sites: siteSet{"s1": true, "s2": true}, Retry: retry, Poll: 50 * time.Millisecond, Timeout: 2 * time.Second,
		GroupID: "parley-webhooks-test", Logger: log,
	})
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
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		app.Shutdown()
	})
	return &env{t: t, svc: svc, api: "http://" + ln.Addr().String(), cookie: cookie, csrf: csrf, producer: producer}
}

// call sends an admin API request and decodes the JSON answer.
func (e *env) call(method, path string, body any, want int, out any) string {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.api+path, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(access.CSRFHeader, e.csrf)
	req.AddCookie(&http.Cookie{Name: access.CookieName, Value: e.cookie})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		e.t.Fatalf("%s %s = %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return string(b)
}

// receipt is one delivery a receiver accepted.
type receipt struct {
	Type, Conversation string
	Seq                int64
	Delivery           string
}

// receiver is a webhook receiver on loopback that verifies signatures and
// can go down (its port closed) and come back on the same port.
type receiver struct {
	t      *testing.T
	addr   string
	secret string
	status int // answer to give; 200 by default

	mu       sync.Mutex
	got      []receipt
	badSig   int
	srv      *http.Server
	received chan struct{}
}

func startReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, status: http.StatusOK, received: make(chan struct{}, 10000)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hooks/parley" }

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	go r.srv.Serve(ln)
}

// down closes the port: deliveries get "connection refused".
func (r *receiver) down() {
	r.srv.Close()
}

// up listens on the same port again.
func (r *receiver) up() {
	var ln net.Listener
	var err error
	for range 50 { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := Verify(r.secret, req.Header.Get(HeaderSignature), body, time.Now(), DefaultTolerance); err != nil {
		r.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.status != http.StatusOK {
		http.Error(w, "receiver is failing on purpose", r.status)
		return
	}
	var ev struct {
		Type           string `json:"type"`
		ConversationID string `json:"conversation_id"`
		Payload        struct {
			Seq int64 `json:"seq"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get(HeaderEventType) != ev.Type {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.got = append(r.got, receipt{Type: ev.Type, Conversation: ev.ConversationID, Seq: ev.Payload.Seq, Delivery: req.Header.Get(HeaderDelivery)})
	r.received <- struct{}{}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) receipts() []receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receipt(nil), r.got...)
}

func (r *receiver) setStatus(code int) {
	r.mu.Lock()
	r.status = code
	r.mu.Unlock()
}

// messages builds n message.sent events for each of convs conversations of
// site, interleaved.
func messages(t *testing.T, site string, convs, n int) []ingest.Event {
	var out []ingest.Event
	for seq := 1; seq <= n; seq++ {
		for c := range convs {
			e, err := ingest.New(ingest.MessageSent, site, fmt.Sprintf("conv-%s-%d", site, c), ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}, time.Now(),
				&ingest.MessageSentPayload{MessageID: ingest.NewID(), Seq: int64(seq), Kind: ingest.KindText, Text: fmt.Sprintf("message %d", seq)})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outage is how long the receiver stays down in the outage test: a short
// but real outage by default; PARLEY_TEST_WEBHOOK_OUTAGE=1m runs the full minute.
func outage(t *testing.T) time.Duration {
	if v := os.Getenv("PARLEY_TEST_WEBHOOK_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PARLEY_TEST_WEBHOOK_OUTAGE: %v", err)
		}
		return d
	}
	return 3 * time.Second
}

// TestReceiverDownGetsEveryEventInOrder: a receiver that is down while
// events flow gets every subscribed event once it is back, once each, in
// order per conversation, each signed; the admin sees the pending
// deliveries with their last error meanwhile.
func TestReceiverDownGetsEveryEventInOrder(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		pol := &egress.Policy{AllowHosts: []string{"127.0.0.1"}}
		e := startEnv(t, backend, pol, RetryPolicy{Initial: 100 * time.Millisecond, Max: time.Second, GiveUpAfter: time.Hour})
		rcv := startReceiver(t)
		var ep endpointView
		e.call("POST", "/api/webhooks/endpoints", map[string]any{"site_id": "s1", "url": rcv.url(), "events": []string{"message.sent"}, "description": "CRM"}, http.StatusCreated, &ep)
		if !strings.HasPrefix(ep.Secret, "whsec_") || ep.SecretHint != ep.Secret[:12] {
			t.Fatalf("created endpoint %+v", ep)
		}
		rcv.secret = ep.Secret
		if body := e.call("GET", "/api/webhooks/endpoints", nil, http.StatusOK, nil); strings.Contains(body, ep.Secret) {
			t.Fatal("the endpoint list shows the secret")
		}

		// Send test event: delivered now, reported to the admin.
		var test testResult
		e.call("POST", "/api/webhooks/endpoints/"+ep.ID+"/test", nil, http.StatusOK, &test)
		if !test.Delivered || test.Status != http.StatusNoContent || len(rcv.receipts()) != 1 || rcv.receipts()[0].Type != TestEventType {
			t.Fatalf("test event: %+v, receiver got %+v", test, rcv.receipts())
		}

		rcv.down()
		const convs, perConv = 5, 12
		events := messages(t, "s1", convs, perConv)
		other := messages(t, "s2", 1, 3) // another site's: not for this endpoint
		started, _ := ingest.New(ingest.ConversationStarted, "s1", "conv-s1-0", ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}, time.Now(),
			&ingest.ConversationStartedPayload{Channel: ingest.ChannelWidget, VisitorID: "v"}) // not subscribed
		ctx := context.Background()
		if err := e.producer.Publish(ctx, append(append(events, other...), started)...); err != nil {
			t.Fatal(err)
		}
		down := outage(t)
		var pending []Delivery
		waitFor(t, 30*time.Second, "deliveries queued and failing", func() bool {
			var out struct{ Deliveries []Delivery }
			e.call("GET", "/api/webhooks/endpoints/"+ep.ID+"/deliveries?status=pending&limit=500", nil, http.StatusOK, &out)
			pending = out.Deliveries
			return len(pending) == len(events) && strings.Contains(strings.Join(lastErrors(pending), " "), "connection refused")
		})
		time.Sleep(down)
		if got := rcv.receipts(); len(got) != 1 {
			t.Fatalf("a receiver that is down received %d", len(got))
		}
		t.Logf("receiver down %s with %d deliveries pending", down, len(pending))

		rcv.up()
		back := time.Now()
		waitFor(t, 30*time.Second, "every event after the outage", func() bool { return len(rcv.receipts()) >= 1+len(events) })
		t.Logf("all %d events delivered %s after the receiver came back", len(events), time.Since(back).Round(time.Millisecond))
		time.Sleep(300 * time.Millisecond) // nothing more arrives
		got := rcv.receipts()[1:]
		if len(got) != len(events) {
			t.Fatalf("received %d deliveries, want %d once each", len(got), len(events))
		}
		last := map[string]int64{}
		deliveries := map[string]bool{}
		for _, r := range got {
			if r.Type != "message.sent" || !strings.HasPrefix(r.Conversation, "conv-s1-") {
				t.Fatalf("unsubscribed event delivered: %+v", r)
			}
			if r.Seq != last[r.Conversation]+1 {
				t.Fatalf("conversation %s: seq %d after %d; out of order", r.Conversation, r.Seq, last[r.Conversation])
			}
			last[r.Conversation] = r.Seq
			deliveries[r.Delivery] = true
		}
		if len(last) != convs || len(deliveries) != len(events) || rcv.badSig != 0 {
			t.Fatalf("conversations %d, distinct deliveries %d, bad signatures %d", len(last), len(deliveries), rcv.badSig)
		}
		var view endpointView
		e.call("GET", "/api/webhooks/endpoints/"+ep.ID, nil, http.StatusOK, &view)
		if view.Counts[StatusDelivered] != len(events) || view.Counts[StatusPending] != 0 {
			t.Fatalf("counts after recovery: %v", view.Counts)
		}
	})
}

func lastErrors(ds []Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.LastError
	}
	return out
}

// TestGivesUpThenAdminRetries: a receiver that keeps failing gets the
// delivery dead-lettered with its last error once the retry window is
// over; after it is fixed, the admin's retry delivers it.
func TestGivesUpThenAdminRetries(t *testing.T) {
	pol := &egress.Policy{AllowHosts: []string{"127.0.0.1"}}
	e := startEnv(t, "sqlite", pol, RetryPolicy{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond, GiveUpAfter: 500 * time.Millisecond})
	rcv := startReceiver(t)
	rcv.setStatus(http.StatusInternalServerError)
	var ep endpointView
	e.call("POST", "/api/webhooks/endpoints", map[string]any{"site_id": "s1", "url": rcv.url(), "events": []string{"*"}}, http.StatusCreated, &ep)
	rcv.secret = ep.Secret
	if err := e.producer.Publish(context.Background(), messages(t, "s1", 1, 2)...); err != nil {
		t.Fatal(err)
	}
	var dead []Delivery
	waitFor(t, 30*time.Second, "both deliveries dead", func() bool {
		var out struct{ Deliveries []Delivery }
		e.call("GET", "/api/webhooks/endpoints/"+ep.ID+"/deliveries?status=dead", nil, http.StatusOK, &out)
		dead = out.Deliveries
		return len(dead) == 2
	})
	// The lane's first delivery was retried until the window closed; the
	// second waited behind it and failed once.
	if d := dead[1]; d.LastStatus != 500 || !strings.Contains(d.LastError, "HTTP 500: receiver is failing on purpose") || d.Attempts < 2 {
		t.Fatalf("dead delivery %+v", d)
	}
	rcv.setStatus(http.StatusOK)
	for i := len(dead) - 1; i >= 0; i-- { // oldest first keeps the order
		e.call("POST", "/api/webhooks/deliveries/"+dead[i].ID+"/retry", nil, http.StatusOK, nil)
	}
	waitFor(t, 10*time.Second, "retried deliveries", func() bool { return len(rcv.receipts()) == 2 })
	if got := rcv.receipts(); got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("retried in order: %+v", got)
	}
	e.call("POST", "/api/webhooks/deliveries/"+dead[0].ID+"/retry", nil, http.StatusNotFound, nil)
}

// TestInternalAddressesRefused: without the operator allowing a host, an
// endpoint on loopback, a private network or the metadata address is
// refused when saved; an allowed name that later points inside is refused
// when dialled.
func TestInternalAddressesRefused(t *testing.T) {
	e := startEnv(t, "sqlite", &egress.Policy{}, DefaultRetry)
	for _, u := range []string{"http://127.0.0.1:9/x", "http://10.0.0.8/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "ftp://example.com/x", "http://user:pw@example.com/"} {
		body := e.call("POST", "/api/webhooks/endpoints", map[string]any{"site_id": "s1", "url": u, "events": []string{"*"}}, http.StatusBadRequest, nil)
		if !strings.Contains(body, "url") {
			t.Errorf("%s refused without naming the url: %s", u, body)
		}
	}
	e.call("POST", "/api/webhooks/endpoints", map[string]any{"site_id": "nope", "url": "https://example.com/", "events": []string{"*"}}, http.StatusBadRequest, nil)
	e.call("POST", "/api/webhooks/endpoints", map[string]any{"site_id": "s1", "url": "https://example.com/", "events": []string{"message.bogus"}}, http.StatusBadRequest, nil)

	// The dial check: the policy's client refuses loopback even when a
	// stored URL names it (a URL saved under another policy, DNS rebinding).
	rcv := startReceiver(t)
	_, err := e.svc.post(context.Background(), Endpoint{URL: rcv.url(), Secret: "k"}, "d", "ev", "message.sent", []byte(`{}`))
	if !errors.Is(err, egress.ErrBlocked) {
		t.Fatalf("posting to loopback: %v; want egress.ErrBlocked", err)
	}
}
