package moderation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// fakeModel is a classifier service on a loopback port: it labels texts
// containing "menace" as threat and counts requests and their sizes.
type fakeModel struct {
	srv      *httptest.Server
	requests atomic.Int64
	sizes    sync.Map      // request number → batch size
	hold     chan struct{} // when set, requests wait on it (or their context)
	status   atomic.Int64  // answer this status instead of 200 when non-zero
}

func newFakeModel(t *testing.T) *fakeModel {
	t.Helper()
	f := &fakeModel{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		if f.hold != nil {
			select {
			case <-f.hold:
			case <-r.Context().Done():
				return
			}
		}
		if st := f.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			return
		}
		var req struct {
			Texts []string `json:"texts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.sizes.Store(n, len(req.Texts))
		type result struct {
			Labels []Label `json:"labels"`
		}
		out := struct {
			Model   string   `json:"model"`
			Results []result `json:"results"`
		}{Model: "menace-detector@7"}
		for _, text := range req.Texts {
			var r result
			if strings.Contains(text, "menace") {
				r.Labels = []Label{{Category: CatThreat, Score: 0.97}, {Category: CatSpam, Score: 0.1}}
			}
			out.Results = append(out.Results, r)
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func TestHTTPClassifierBatchesInOrder(t *testing.T) {
	f := newFakeModel(t)
	h := &HTTPClassifier{URL: f.srv.URL, Batch: 10, Concurrency: 2, Timeout: 5 * time.Second}
	texts := make([]string, 25)
	for i := range texts {
		texts[i] = fmt.Sprintf("message %d", i)
	}
	texts[3], texts[24] = "a menace", "menace again"
	labels, err := h.Classify(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 3 {
		t.Fatalf("%d requests for 25 texts in batches of 10, want 3", got)
	}
	for i, l := range labels {
		want := i == 3 || i == 24
		if got := len(l) > 0 && l[0].Category == CatThreat; got != want {
			t.Fatalf("text %d %q: labels %v", i, texts[i], l)
		}
	}
	if h.Model() != "menace-detector@7" {
		t.Fatalf("model %q", h.Model())
	}
}

// countingTransport counts the requests a client has in flight at once.
type countingTransport struct {
	in, max atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.in.Add(1)
	defer c.in.Add(-1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestHTTPClassifierBoundsConcurrencyAndTimesOut(t *testing.T) {
	f := newFakeModel(t)
	f.hold = make(chan struct{})
	t.Cleanup(func() { close(f.hold) }) // runs before the server closes
	tr := &countingTransport{}
	h := &HTTPClassifier{URL: f.srv.URL, Batch: 1, Concurrency: 3, Timeout: 300 * time.Millisecond, Client: &http.Client{Transport: tr}}
	texts := []string{"a", "b", "c", "d", "e", "f", "g"}
	start := time.Now()
	_, err := h.Classify(context.Background(), texts)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("want a timeout, got %v", err)
	}
	// seven requests, three at a time, each cut at 300 ms: about 900 ms
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timed-out batch took %s", d)
	}
	if m := tr.max.Load(); m != 3 {
		t.Fatalf("%d requests in flight at once, want at most (and, with 7 waiting, exactly) 3", m)
	}
}

func TestHTTPClassifierBreakerOpensAndFailsFast(t *testing.T) {
	f := newFakeModel(t)
	f.status.Store(http.StatusInternalServerError)
	h := &HTTPClassifier{URL: f.srv.URL, Batch: 8, Concurrency: 1, Timeout: time.Second}
	for range classifierTrip {
		if _, err := h.Classify(context.Background(), []string{"x"}); err == nil || errors.Is(err, ErrClassifierOpen) {
			t.Fatalf("want a server error, got %v", err)
		}
	}
	before := f.requests.Load()
	for range 10 {
		if _, err := h.Classify(context.Background(), []string{"x"}); !errors.Is(err, ErrClassifierOpen) {
			t.Fatalf("want the breaker open, got %v", err)
		}
	}
	if f.requests.Load() != before {
		t.Fatalf("an open breaker still called the service (%d → %d requests)", before, f.requests.Load())
	}
}

// TestWorkerClassifiesTheBatchAtOnceAndRecordsSources runs the worker on
// a batch of visitor messages for a site whose policy names an HTTP
// classifier: one request carries the whole batch, the classifier's
// threat counts, and the verdict event says which sources decided.
func TestWorkerClassifiesTheBatchAtOnceAndRecordsSources(t *testing.T) {
	f := newFakeModel(t)
	s := newTestService(t, "sqlite")
	ctx := context.Background()
	doc := fmt.Sprintf(`{"classifier": {"url": %q, "threshold": 0.9, "timeout_ms": 2000}}`, f.srv.URL)
	if _, err := s.SavePolicy(ctx, "s", []byte(doc), access.User{ID: "admin"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	batch := []ingest.Record{
		chatMessage(t, "s", "c1", ingest.RoleVisitor, "v1", 1, "where is my parcel", at),
		chatMessage(t, "s", "c2", ingest.RoleVisitor, "v2", 1, "you are a menace to society", at),
		chatMessage(t, "s", "c3", ingest.RoleVisitor, "v3", 1, "what the fuck, a menace", at),
		chatMessage(t, "s", "c1", ingest.RoleAgent, "a1", 2, "menace? let me check", at),
	}
	if _, err := s.handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d classifier requests for one batch, want 1", got)
	}
	if size, _ := f.sizes.Load(int64(1)); size != 3 {
		t.Fatalf("batch of %v texts, want the 3 visitor messages", size)
	}
	it, err := s.store.Item(ctx, derivedID(batch[1].Event.ID, "item"))
	if err != nil {
		t.Fatalf("classified threat not queued: %v", err)
	}
	if it.Action != ActionBlock || !slicesContain(it.Categories, CatThreat) {
		t.Fatalf("item %+v", it)
	}
	var verdict ingest.ModerationVerdictPayload
	for _, e := range pendingEvents(t, s.store) {
		if e.ID == derivedID(batch[2].Event.ID, "verdict") {
			if err := e.Into(&verdict); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[ingest.VerdictSource]bool{
		{Category: CatThreat, Source: "classifier:menace-detector@7", Decided: true}: true,
		{Category: CatProfanity, Source: SourceRules}:                                true,
	}
	got := map[ingest.VerdictSource]bool{}
	for _, src := range verdict.Sources {
		got[src] = true
	}
	for src := range want {
		if !got[src] {
			t.Fatalf("verdict sources %+v lack %+v", verdict.Sources, src)
		}
	}
}

func TestWorkerJudgesByRulesWhenTheClassifierIsDown(t *testing.T) {
	f := newFakeModel(t)
	f.status.Store(http.StatusServiceUnavailable)
	s := newTestService(t, "sqlite")
	ctx := context.Background()
	doc := fmt.Sprintf(`{"classifier": {"url": %q}}`, f.srv.URL)
	if _, err := s.SavePolicy(ctx, "s", []byte(doc), access.User{ID: "admin"}); err != nil {
		t.Fatal(err)
	}
	msg := chatMessage(t, "s", "c", ingest.RoleVisitor, "v", 1, "you are an idiot", time.Now())
	if _, err := s.handle(ctx, []ingest.Record{msg}); err != nil {
		t.Fatal(err)
	}
	it, err := s.store.Item(ctx, derivedID(msg.Event.ID, "item"))
	if err != nil || it.Action != ActionBlock {
		t.Fatalf("rules alone should block: %+v %v", it, err)
	}
}
