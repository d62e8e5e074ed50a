package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/analytics/chtest"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/ingest/ingesttest"
)

type testBroker struct {
	addrs    []string
	producer *ingest.Producer
}

func startBroker(t *testing.T) testBroker {
	t.Helper()
	b := ingesttest.Broker(t, 3)
	p := ingesttest.Producer(t, b.Addrs())
	return testBroker{addrs: b.Addrs(), producer: p}
}

func (b testBroker) publish(t *testing.T, events []ingest.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < len(events); i += 2000 {
		if err := b.producer.Publish(ctx, events[i:min(i+2000, len(events))]...); err != nil {
			t.Fatal(err)
		}
	}
}

// runLoader starts l in the background and returns a stop function that
// cancels it and waits for Run to return.
func runLoader(t *testing.T, l *Loader) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once atomic.Bool
	stop = func() {
		if !once.CompareAndSwap(false, true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("loader run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("loader did not stop within 30 s")
		}
	}
	t.Cleanup(stop)
	return stop
}

func newTestLoader(t *testing.T, b testBroker, s Store, hook func(context.Context, []ingest.Record) error) *Loader {
	t.Helper()
	l, err := NewLoader(LoaderConfig{Store: s, Brokers: b.addrs, DeadLetter: b.producer, Staff: testStaff(), BatchSize: 500,
		BatchWait: 50 * time.Millisecond, SweepEvery: 100 * time.Millisecond, RecomputeDelay: 100 * time.Millisecond, LagEvery: 200 * time.Millisecond,
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	l.afterApply = hook
	return l
}

// crashingStore inserts only the first half of one batch and then fails,
// like a process killed in the middle of a batch.
type crashingStore struct {
	Store
	armed atomic.Bool
	crash func()
}

func (c *crashingStore) InsertEvents(ctx context.Context, events []ingest.Event) error {
	if len(events) > 1 && c.armed.CompareAndSwap(true, false) {
		if err := c.Store.InsertEvents(ctx, events[:len(events)/2]); err != nil {
			return err
		}
		c.crash()
		return errors.New("killed during the batch")
	}
	return c.Store.InsertEvents(ctx, events)
}

// assertExactlyOnce checks that the store holds every event once and the
// facts count every conversation once.
func assertExactlyOnce(t *testing.T, s Store, events []ingest.Event) {
	t.Helper()
	ctx := context.Background()
	want := int64(len(events))
	waitFor(t, 60*time.Second, "all events loaded", func() (bool, error) {
		n, err := s.EventCount(ctx)
		return n >= want, err
	})
	n, err := s.EventCount(ctx)
	if err != nil || n != want {
		t.Fatalf("distinct events = %d (%v), want %d", n, err, want)
	}
	if ch, ok := s.(*ClickHouseStore); ok {
		rows, err := ch.RowCount(ctx)
		if err != nil || rows != want {
			// Name the doubled events, which tells which path stored them.
			if r, err := ch.conn.Query(ctx, `SELECT type, event_id, count() c FROM events GROUP BY type, event_id HAVING c > 1`); err == nil {
				for r.Next() {
					var ty, id string
					var c uint64
					if r.Scan(&ty, &id, &c) == nil {
						t.Logf("stored %d times: %s %s", c, ty, id)
					}
				}
				r.Close()
			}
			t.Fatalf("physical event rows = %d (%v), want %d: a retried batch was inserted twice", rows, err, want)
		}
	}
	convs := map[string]bool{}
	var msgs int64
	first, last := events[0].OccurredAt.Time, events[0].OccurredAt.Time
	for _, e := range events {
		if e.Type == ingest.ConversationStarted {
			convs[e.ConversationID] = true
		}
		if e.Type == ingest.MessageSent {
			msgs++
		}
		if e.OccurredAt.Before(first) {
			first = e.OccurredAt.Time
		}
		if e.OccurredAt.After(last) {
			last = e.OccurredAt.Time
		}
	}
	q := Query{From: first, To: last.Add(time.Millisecond)}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	// Facts of the last batch are written right after its events: wait for them.
	waitFor(t, 30*time.Second, "facts of every conversation", func() (bool, error) {
		r, err := s.Report(ctx, q)
		if err != nil {
			return false, err
		}
		p := r.Series[0].Points[0]
		got := p.Messages.Visitor + p.Messages.Agent + p.Messages.Bot + p.Messages.Notes
		return p.Conversations.New+p.Conversations.Offline == int64(len(convs)) && got == msgs, nil
	})
}

func testCrashBetweenInsertAndCommit(t *testing.T, s Store) {
	b := startBroker(t)
	events := append(testSites(t, time.Now().Add(-72*time.Hour)), newGenerator(11).events(300, time.Now().Add(-48*time.Hour), 24*time.Hour)...)
	b.publish(t, events)

	// First run: the second batch is durable, then the process "dies"
	// before the commit.
	var batches atomic.Int32
	crashed := make(chan struct{})
	// The crash hooks run on the loader's goroutine, maybe before runLoader
	// has returned the stop function: they receive it through a channel.
	stopper1 := make(chan func(), 1)
	l1 := newTestLoader(t, b, s, func(ctx context.Context, batch []ingest.Record) error {
		if batches.Add(1) == 2 {
			close(crashed)
			go func() { stop := <-stopper1; stop() }()
			return errors.New("killed between insert and commit")
		}
		return nil
	})
	stop1 := runLoader(t, l1)
	stopper1 <- stop1
	select {
	case <-crashed:
	case <-time.After(60 * time.Second):
		t.Fatal("loader never reached its second batch")
	}
	stop1()

	// Second run: killed in the middle of a batch (half its rows inserted).
	cs := &crashingStore{Store: s}
	cs.armed.Store(true)
	stopper2 := make(chan func(), 1)
	killed := make(chan struct{})
	cs.crash = func() { close(killed); go func() { stop := <-stopper2; stop() }() }
	stop2 := runLoader(t, newTestLoader(t, b, cs, nil))
	stopper2 <- stop2
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("second loader never started a batch")
	}
	stop2()
	before, err := s.EventCount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if before == 0 || before >= int64(len(events)) {
		t.Fatalf("after two crashes %d of %d events are stored; the test needs a partial load", before, len(events))
	}

	// Third run: same group, replays the uncommitted offsets.
	runLoader(t, newTestLoader(t, b, s, nil))
	assertExactlyOnce(t, s, events)
}

func TestLoaderCrashBetweenInsertAndCommitSQLite(t *testing.T) {
	t.Parallel()
	testCrashBetweenInsertAndCommit(t, newSQLiteStore(t))
}

func TestLoaderCrashBetweenInsertAndCommitClickHouse(t *testing.T) {
	t.Parallel()
	testCrashBetweenInsertAndCommit(t, newClickHouseStore(t))
}

// TestLoaderClickHouseOutage stops a dedicated ClickHouse server while
// events keep arriving, checks the loader reports itself paused, restarts
// the server and checks the loader caught up without loss or duplicates.
func TestLoaderClickHouseOutage(t *testing.T) {
	t.Parallel()
	pc := chtest.Start(t)
	addr := pc.Addr
	ctx := context.Background()
	s, err := OpenClickHouse(ctx, ClickHouseConfig{Addr: addr, Database: "outage", DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	b := startBroker(t)
	l := newTestLoader(t, b, s, nil)
	runLoader(t, l)
	g := newGenerator(5)
	first := append(testSites(t, time.Now().Add(-3*time.Hour)), g.events(100, time.Now().Add(-2*time.Hour), time.Hour)...)
	b.publish(t, first)
	waitFor(t, 30*time.Second, "first events loaded", func() (bool, error) {
		n, err := s.EventCount(ctx)
		return n == int64(len(first)), err
	})
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("ready before the outage: %v", err)
	}

	pc.Stop(t)
	second := g.events(100, time.Now().Add(-time.Hour), time.Hour)
	b.publish(t, second)
	waitFor(t, 30*time.Second, "loader paused", func() (bool, error) {
		return l.Status().Paused && l.Ready(ctx) != nil, nil
	})
	if err := l.Ready(ctx); err == nil || !strings.Contains(err.Error(), "analytics") {
		t.Fatalf("ready during the outage = %v, want an analytics store error", err)
	}

	pc.Restart(t)
	assertExactlyOnce(t, s, append(first, second...))
	waitFor(t, 10*time.Second, "loader ready again", func() (bool, error) {
		err := l.Ready(ctx)
		return err == nil, err
	})
}

// TestLoaderDeadLetters sends an unloadable event and a garbage message
// between good events: both land on the dead-letter topic with a reason,
// and the good events load.
func TestLoaderDeadLetters(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	s := newSQLiteStore(t)
	runLoader(t, newTestLoader(t, b, s, nil))
	good := append(testSites(t, time.Now().Add(-2*time.Hour)), newGenerator(3).events(5, time.Now().Add(-time.Hour), time.Hour)...)
	bad, err := ingest.New(ingest.VisitorLeft, "s1", "c-old", ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), ingest.VisitorLeftPayload{})
	if err != nil {
		t.Fatal(err)
	}
	b.publish(t, good[:3])
	b.publish(t, []ingest.Event{bad})
	poison := &kafka.Writer{Addr: kafka.TCP(b.addrs...), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer poison.Close()
	if err := poison.WriteMessages(context.Background(), kafka.Message{Topic: ingest.TopicChat, Key: []byte("x"), Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	b.publish(t, good[3:])
	assertExactlyOnce(t, s, good)

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.addrs, Topic: ingest.TopicDeadLetter, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reasons := map[string]string{}
	for len(reasons) < 2 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letters (have %v): %v", reasons, err)
		}
		var dl ingest.DeadLetterRecord
		if err := json.Unmarshal(m.Value, &dl); err != nil {
			t.Fatal(err)
		}
		reasons[dl.Value] = dl.Reason
	}
	var sawRange, sawDecode bool
	for v, reason := range reasons {
		if bytes.Contains([]byte(v), []byte(bad.ID)) && strings.Contains(reason, "outside 1970") {
			sawRange = true
		}
		if v == "{not json" && strings.Contains(reason, "invalid event") {
			sawDecode = true
		}
	}
	if !sawRange || !sawDecode {
		t.Fatalf("dead letters = %v; want the 1960 event (out of range) and the garbage (invalid)", reasons)
	}
}

// TestReplay rebuilds the store from the topics, twice, and on a live
// store: counts stay exact and the reports equal the loader's.
func TestReplay(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	live := newSQLiteStore(t)
	runLoader(t, newTestLoader(t, b, live, nil))
	events := append(testSites(t, time.Now().Add(-96*time.Hour)), newGenerator(9).events(80, time.Now().Add(-72*time.Hour), 48*time.Hour)...)
	b.publish(t, events)
	assertExactlyOnce(t, live, events)

	ctx := context.Background()
	q := Query{From: time.Now().Add(-96 * time.Hour), To: time.Now(), Bucket: BucketDay}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	want, err := live.Report(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Store{live, newSQLiteStore(t), newClickHouseStore(t)} {
		var progress bytes.Buffer
		for i := 0; i < 2; i++ {
			if err := Replay(ctx, ReplayConfig{Store: s, Brokers: b.addrs, Staff: testStaff(), BatchSize: 333, Progress: &progress}); err != nil {
				t.Fatalf("replay into %s: %v", s.Backend(), err)
			}
		}
		if !strings.Contains(progress.String(), "replay: done") {
			t.Errorf("replay printed no completion line:\n%s", progress.String())
		}
		assertExactlyOnce(t, s, events)
		got, err := s.Report(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, "replayed report on "+s.Backend(), want.Series, got.Series)
	}
}

// TestMarkStoredFindsRedeliveriesAmongLaterEvents: the redelivery check
// compares a batch only with the stored events from its earliest time on;
// a redelivered event in the middle of a long conversation is still found,
// and an event that arrives late (an earlier time than stored ones) but was
// never stored is not mistaken for one.
func TestMarkStoredFindsRedeliveriesAmongLaterEvents(t *testing.T) {
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var stored []ingest.Event
	for i := 0; i < 50; i++ {
		e, err := ingest.New(ingest.MessageSent, "s1", "c1", ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}, base.Add(time.Duration(i)*time.Second),
			ingest.MessageSentPayload{MessageID: fmt.Sprintf("m%d", i), Seq: int64(i + 1), Kind: ingest.KindText, Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, e)
	}
	sortEvents(stored)
	late, err := ingest.New(ingest.MessageSent, "s1", "c1", ingest.Actor{Role: ingest.RoleAgent, ID: "a"}, base.Add(20500*time.Millisecond),
		ingest.MessageSentPayload{MessageID: "late", Seq: 99, Kind: ingest.KindText, Text: "late"})
	if err != nil {
		t.Fatal(err)
	}
	batch := []ingest.Event{stored[49], late, stored[20]}
	known := map[string]bool{}
	for _, e := range batch {
		known[e.ID] = false
	}
	markStored(known, stored, batch)
	if !known[stored[20].ID] || !known[stored[49].ID] {
		t.Fatalf("redeliveries not found: %v", known)
	}
	if known[late.ID] {
		t.Fatal("a late event that was never stored was taken for a redelivery")
	}
}
