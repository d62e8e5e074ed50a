package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/analytics/chtest"
	"github.com/parleychat/parley/ingest"
)

// mutableStaff is a staff directory a test can change while the loader runs.
type mutableStaff struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (m *mutableStaff) User(_ context.Context, id string) (access.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ids[id] {
		return access.User{}, access.ErrNotFound
	}
	return access.User{ID: id}, nil
}

func (m *mutableStaff) remove(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.ids, id)
}

func loaderWith(t *testing.T, b testBroker, s Store, staff StaffDirectory, tune func(*LoaderConfig)) *Loader {
	t.Helper()
	cfg := LoaderConfig{Store: s, Brokers: b.addrs, DeadLetter: b.producer, Staff: staff, BatchSize: 500,
		BatchWait: 50 * time.Millisecond, SweepEvery: 100 * time.Millisecond, RecomputeDelay: 100 * time.Millisecond,
		LagEvery: 200 * time.Millisecond, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if tune != nil {
		tune(&cfg)
	}
	l, err := NewLoader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// deadLetters waits until the dead-letter topic holds at least want
// records and returns their reasons by original event id.
func deadLetters(t *testing.T, b testBroker, want int) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(b.addrs...), Timeout: 5 * time.Second}
	var out map[string]string
	waitFor(t, 30*time.Second, fmt.Sprintf("%d dead letters", want), func() (bool, error) {
		out = map[string]string{}
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for p := 0; p < 3; p++ {
			req.Topics[ingest.TopicDeadLetter] = append(req.Topics[ingest.TopicDeadLetter], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
		}
		offs, err := client.ListOffsets(ctx, req)
		if err != nil {
			return false, err
		}
		for _, po := range offs.Topics[ingest.TopicDeadLetter] {
			if po.LastOffset <= po.FirstOffset {
				continue
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.addrs, Topic: ingest.TopicDeadLetter, Partition: po.Partition, MaxWait: 100 * time.Millisecond})
			if err := r.SetOffset(po.FirstOffset); err != nil {
				r.Close()
				return false, err
			}
			for next := po.FirstOffset; next < po.LastOffset; {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					r.Close()
					return false, err
				}
				next = m.Offset + 1
				var dl ingest.DeadLetterRecord
				if err := json.Unmarshal(m.Value, &dl); err != nil {
					r.Close()
					return false, err
				}
				if e, err := ingest.Decode([]byte(dl.Value)); err == nil {
					out[e.ID] = dl.Reason
				}
			}
			r.Close()
		}
		return len(out) >= want, nil
	})
	return out
}

// TestLoaderHoldsEventsOfUnknownSites: a conversation's events that reach
// the loader before their site's profile (another partition) are held
// out of the reports, not lost, and loaded when the profile comes; events
// of a site that never gets a profile are dead-lettered after HoldFor with
// the reason, and counted nowhere.
func TestLoaderHoldsEventsOfUnknownSites(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	s := newSQLiteStore(t)
	l := loaderWith(t, b, s, testStaff(), func(c *LoaderConfig) { c.HoldFor = 4 * time.Second })
	runLoader(t, l)
	ctx := context.Background()
	now := time.Now()
	g := newGenerator(21)
	g.sites = []string{"s1"}
	early := g.events(5, now.Add(-time.Hour), 30*time.Minute)
	g.sites = []string{"ghost"}
	ghost := g.events(2, now.Add(-time.Hour), 30*time.Minute)
	b.publish(t, append(append([]ingest.Event{}, early...), ghost...))

	waitFor(t, 20*time.Second, "events of both unknown sites held", func() (bool, error) {
		hs, err := s.HeldSites(ctx)
		return len(hs) == 2, err
	})
	q := Query{From: now.Add(-2 * time.Hour), To: now}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Report(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Series[0].Points[0]; p.Conversations.New+p.Conversations.Offline != 0 || p.Messages.Visitor != 0 {
		t.Fatalf("held events are counted: %+v", p)
	}

	// s1's profile arrives: its held events load.
	s1 := testSites(t, now.Add(-2*time.Hour))[:1]
	b.publish(t, s1)
	assertExactlyOnce(t, s, append(s1, early...))

	// ghost never gets one: dead-lettered with the reason, then not held.
	reasons := deadLetters(t, b, len(ghost))
	for _, e := range ghost {
		if !strings.Contains(reasons[e.ID], `site "ghost" is unknown`) {
			t.Errorf("dead letter of %s %s: %q", e.Type, e.ID, reasons[e.ID])
		}
	}
	waitFor(t, 10*time.Second, "no held events", func() (bool, error) {
		hs, err := s.HeldSites(ctx)
		return len(hs) == 0, err
	})
	r, err = s.Report(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, e := range early {
		if e.Type == ingest.ConversationStarted {
			want++
		}
	}
	if p := r.Series[0].Points[0]; p.Conversations.New+p.Conversations.Offline != want {
		t.Fatalf("conversations counted %+v, want %d (ghost's must not count)", p.Conversations, want)
	}
}

// TestLoaderChecksStaff: events naming staff ids the access store does
// not know (as actor, assignee or transfer target) are dead-lettered with
// the reason; a staff member's events stay valid after the account is
// deleted, also on replay.
func TestLoaderChecksStaff(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	s := newSQLiteStore(t)
	staff := &mutableStaff{ids: map[string]bool{"a1": true, "a2": true}}
	runLoader(t, loaderWith(t, b, s, staff, nil))
	now := time.Now().Add(-time.Hour)
	mk := func(typ ingest.Type, conv string, actor ingest.Actor, at time.Duration, p any) ingest.Event {
		e, err := ingest.New(typ, "s1", conv, actor, now.Add(at), p)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	visitor := ingest.Actor{Role: ingest.RoleVisitor, ID: "v1"}
	router := ingest.Actor{Role: ingest.RoleSystem, ID: "router"}
	good := append(testSites(t, now.Add(-time.Hour))[:1],
		mk(ingest.ConversationStarted, "k1", visitor, 0, ingest.ConversationStartedPayload{Channel: "widget", VisitorID: "v1"}),
		mk(ingest.MessageSent, "k1", visitor, time.Second, ingest.MessageSentPayload{MessageID: "m1", Kind: "text", Text: "hi"}),
		mk(ingest.ConversationAssigned, "k1", router, 2*time.Second, ingest.ConversationAssignedPayload{AgentID: "a1", Reason: "auto"}),
		mk(ingest.MessageSent, "k1", ingest.Actor{Role: ingest.RoleAgent, ID: "a1"}, 3*time.Second, ingest.MessageSentPayload{MessageID: "m2", Kind: "text", Text: "hello"}))
	forged := []ingest.Event{
		mk(ingest.ConversationAssigned, "k1", router, 4*time.Second, ingest.ConversationAssignedPayload{AgentID: "intruder", Reason: "auto"}),
		mk(ingest.MessageSent, "k1", ingest.Actor{Role: ingest.RoleAgent, ID: "ghost-agent"}, 5*time.Second, ingest.MessageSentPayload{MessageID: "m3", Kind: "text", Text: "x"}),
		mk(ingest.ConversationTransferred, "k1", ingest.Actor{Role: ingest.RoleAgent, ID: "a1"}, 6*time.Second, ingest.ConversationTransferredPayload{FromAgentID: "a1", ToAgentID: "nobody"}),
		mk(ingest.ModerationDecision, "k1", ingest.Actor{Role: ingest.RoleModerator, ID: "fake-mod"}, 7*time.Second, ingest.ModerationDecisionPayload{ItemID: "i", Decision: "approve"}),
	}
	b.publish(t, append(append([]ingest.Event{}, good...), forged...))
	assertExactlyOnce(t, s, good)
	reasons := deadLetters(t, b, len(forged))
	for i, want := range []string{`assigned agent_id "intruder"`, `actor agent "ghost-agent"`, `to_agent_id "nobody"`, `actor moderator "fake-mod"`} {
		if r := reasons[forged[i].ID]; !strings.Contains(r, want) || !strings.Contains(r, "is not a Parley staff account") {
			t.Errorf("dead letter of %s: %q, want it to name %s", forged[i].Type, r, want)
		}
	}

	// a1 leaves the company: their earlier verification stands.
	staff.remove("a1")
	late := mk(ingest.MessageSent, "k1", ingest.Actor{Role: ingest.RoleAgent, ID: "a1"}, 8*time.Second, ingest.MessageSentPayload{MessageID: "m4", Kind: "text", Text: "bye"})
	b.publish(t, []ingest.Event{late})
	assertExactlyOnce(t, s, append(good, late))
	// A replay into a fresh store with the same verified ids keeps them too.
	ctx := context.Background()
	seen, err := s.StaffSeen(ctx)
	if err != nil || fmt.Sprint(seen) != "[a1]" {
		t.Fatalf("verified staff = %v, %v", seen, err)
	}
}

// TestLoaderRecomputesWhenHoursChange: when a site's business hours or
// targets change, the loader recomputes that site's facts (business-hours
// durations, in-hours flags, late and SLA); the same state republished by
// a starting chat node recomputes nothing.
func TestLoaderRecomputesWhenHoursChange(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	s := newSQLiteStore(t)
	l := loaderWith(t, b, s, testStaff(), nil)
	runLoader(t, l)
	ctx := context.Background()
	// Monday 2024-04-01, 10:00–10:05 Berlin (08:00 UTC): the visitor waits 5 minutes.
	mon := time.Date(2024, 4, 1, 8, 0, 0, 0, time.UTC)
	mk := func(typ ingest.Type, actor ingest.Actor, at time.Duration, p any) ingest.Event {
		e, err := ingest.New(typ, "s1", "r1", actor, mon.Add(at), p)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	visitor := ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}
	open := ingest.SiteUpdatedPayload{Name: "Shop", Timezone: "Europe/Berlin", Weekly: weekly("09:00", "17:00", 1, 2, 3, 4, 5), FirstResponseTargetSeconds: 600}
	events := []ingest.Event{
		siteEvent(t, "s1", mon.Add(-48*time.Hour), open),
		mk(ingest.ConversationStarted, visitor, 0, ingest.ConversationStartedPayload{Channel: "widget", VisitorID: "v"}),
		mk(ingest.MessageSent, visitor, 0, ingest.MessageSentPayload{MessageID: "m1", Kind: "text", Text: "hi"}),
		mk(ingest.ConversationAssigned, ingest.Actor{Role: ingest.RoleSystem, ID: "router"}, time.Minute, ingest.ConversationAssignedPayload{AgentID: "a1"}),
		mk(ingest.MessageSent, ingest.Actor{Role: ingest.RoleAgent, ID: "a1"}, 5*time.Minute, ingest.MessageSentPayload{MessageID: "m2", Kind: "text", Text: "hello"}),
	}
	b.publish(t, events)
	q := Query{From: mon.Add(-time.Hour), To: mon.Add(time.Hour), Clock: ClockBusiness, Now: mon.Add(2 * time.Hour)}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	point := func() Point {
		r, err := s.Report(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return r.Series[0].Points[0]
	}
	waitFor(t, 20*time.Second, "first response loaded", func() (bool, error) { return point().FirstResponse.Count == 1, nil })
	if p := point(); p.FirstResponse.MedianMs != 300000 || p.Conversations.Late != 0 || p.SLA.FirstResponse.Met != 1 {
		t.Fatalf("before the change: %+v %+v", p.FirstResponse, p.SLA)
	}
	// The site now opens at 10:02 and wants an answer within 2 minutes:
	// 3 minutes of business time, late.
	changed := open
	changed.Weekly, changed.FirstResponseTargetSeconds = weekly("10:02", "17:00", 1, 2, 3, 4, 5), 120
	b.publish(t, []ingest.Event{siteEvent(t, "s1", mon.Add(time.Hour), changed)})
	waitFor(t, 20*time.Second, "facts recomputed with the new hours", func() (bool, error) {
		p := point()
		return p.FirstResponse.MedianMs == 180000 && p.Conversations.Late == 1 && p.SLA.FirstResponse.Breached == 1, nil
	})
	ps, err := s.SiteProfiles(ctx)
	if err != nil || len(ps) != 1 {
		t.Fatal(ps, err)
	}
	rev := ps[0].Rev
	waitFor(t, 10*time.Second, "facts revision recorded", func() (bool, error) {
		ps, err := s.SiteProfiles(ctx)
		return err == nil && ps[0].FactsRev == rev, err
	})
	// A chat node restarts and republishes the same state (renamed, even):
	// same revision, nothing to recompute.
	again := changed
	again.Name = "Shop (EU)"
	b.publish(t, []ingest.Event{siteEvent(t, "s1", mon.Add(2*time.Hour), again)})
	waitFor(t, 10*time.Second, "the republished profile stored", func() (bool, error) {
		ps, err := s.SiteProfiles(ctx)
		return err == nil && ps[0].State.Name == "Shop (EU)", err
	})
	if ps, _ := s.SiteProfiles(ctx); ps[0].Rev != rev || ps[0].FactsRev != rev {
		t.Fatalf("republishing the same hours changed the revision: %+v (was %d)", ps[0], rev)
	}
}

// TestLoaderClickHouseHangs freezes a private ClickHouse (SIGSTOP) while
// events arrive: within seconds the loader reports a stalled batch and
// then pauses (the insert deadline), readiness answers within its own
// deadline, the lag read from the broker grows and freshness ages; after
// SIGCONT everything loads once.
func TestLoaderClickHouseHangs(t *testing.T) {
	t.Parallel()
	pc := chtest.Start(t)
	ctx := context.Background()
	s, err := OpenClickHouse(ctx, ClickHouseConfig{Addr: pc.Addr, Database: "hang", DialTimeout: 5 * time.Second, ReadTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := startBroker(t)
	l := loaderWith(t, b, s, testStaff(), func(c *LoaderConfig) {
		c.StoreTimeout, c.StallAfter = 3*time.Second, time.Second
	})
	runLoader(t, l)
	g := newGenerator(31)
	// Conversations well in the past (the generator's inactivity closes
	// come a day later), so that freshness is the age of the newest one.
	first := append(testSites(t, time.Now().Add(-50*time.Hour)), g.events(20, time.Now().Add(-40*time.Hour), time.Hour)...)
	b.publish(t, first)
	assertExactlyOnce(t, s, first)
	freshBefore := l.Status().FreshnessMs

	pc.Signal(t, "STOP")
	second := g.events(50, time.Now().Add(-38*time.Hour), time.Hour)
	b.publish(t, second)
	start := time.Now()
	waitFor(t, 20*time.Second, "a stalled batch reported", func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		err := l.Ready(rctx)
		return err != nil, nil
	})
	// Probes answer within their own deadline whatever the store does.
	for i := 0; i < 3; i++ {
		rctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
		t0 := time.Now()
		err := l.Ready(rctx)
		cancel()
		if err == nil || time.Since(t0) > 1500*time.Millisecond {
			t.Fatalf("Ready during the hang = %v after %s", err, time.Since(t0))
		}
	}
	waitFor(t, 30*time.Second, "loader paused by the insert deadline", func() (bool, error) { return l.Status().Paused, nil })
	st := l.Status()
	if !strings.Contains(st.LastError, "did not finish the batch within") {
		t.Errorf("last error %q does not say the store timed out", st.LastError)
	}
	waitFor(t, 20*time.Second, "lag from the broker's end offsets", func() (bool, error) { return l.Status().Lag >= int64(len(second)), nil })
	if f := l.Status().FreshnessMs; f < freshBefore+time.Since(start).Milliseconds()-500 {
		t.Errorf("freshness %d ms did not age during the hang (was %d ms, %s ago)", f, freshBefore, time.Since(start))
	}
	pc.Signal(t, "CONT")
	assertExactlyOnce(t, s, append(first, second...))
	waitFor(t, 30*time.Second, "loader ready again", func() (bool, error) {
		err := l.Ready(ctx)
		return err == nil, err
	})
	waitFor(t, 20*time.Second, "lag back to 0", func() (bool, error) { return l.Status().Lag == 0, nil })
}
