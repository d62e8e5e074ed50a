package moderation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// newTestService builds a Service on a fresh store of the backend,
// without Kafka.
func newTestService(t testing.TB, backend string) *Service {
	t.Helper()
	return newServiceOn(t, openStore(t, backend), Config{})
}

func newServiceOn(t testing.TB, store Store, cfg Config) *Service {
	t.Helper()
	cfg.Store = store
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	s, err := NewService(context.Background(), cfg)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	return s
}

// chatMessage builds a message.sent record as chatsvc would publish it.
func chatMessage(t testing.TB, site, conv string, role ingest.Role, actor string, seq int64, text string, at time.Time) ingest.Record {
	t.Helper()
	e, err := ingest.New(ingest.MessageSent, site, conv, ingest.Actor{Role: role, ID: actor}, at, ingest.MessageSentPayload{
		MessageID: fmt.Sprintf("%s-m%d", conv, seq), Seq: seq, Kind: ingest.KindText, Text: text,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ingest.Record{Event: e, Topic: ingest.TopicChat}
}

// openItems returns the open review-queue items.
func openItems(t testing.TB, s Store) []Item {
	t.Helper()
	page, err := s.Items(context.Background(), ItemFilter{Status: StatusOpen, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func TestWorkerQueuesJudgesOnceAndKeepsContext(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := newTestService(t, backend)
		ctx := context.Background()
		now := time.Now()
		batch := []ingest.Record{
			chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "Hi, my parcel is late", now),
			chatMessage(t, "site-1", "c1", ingest.RoleAgent, "a1", 2, "Sorry to hear that, let me check", now),
			chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 3, "you are a fucking idiot", now),
		}
		for range 2 { // the same batch again, as after a crash before the commit
			rejects, err := s.handle(ctx, batch)
			if err != nil || len(rejects) != 0 {
				t.Fatalf("handle: %v %v", rejects, err)
			}
		}
		if items := openItems(t, s.store); len(items) != 1 {
			t.Fatalf("%d items, want 1", len(items))
		}
		verdicts := eventsOf(pendingEvents(t, s.store), ingest.ModerationVerdict)
		if len(verdicts) != 1 {
			t.Fatalf("%d verdicts in the outbox, want 1 (the abusive message; allowed ones get none)", len(verdicts))
		}
		ev := verdicts[0]
		if ev.ID != derivedID(batch[2].Event.ID, "verdict") {
			t.Fatalf("verdict id %s is not derived from the message event id", ev.ID)
		}
		it, err := s.store.Item(ctx, derivedID(batch[2].Event.ID, "item"))
		if err != nil {
			t.Fatal(err)
		}
		if it.Action != ActionBlock || !slicesContain(it.Categories, CatAbuse) || it.VisitorID != "v1" || it.Status != StatusOpen {
			t.Fatalf("item %+v", it)
		}
		conv, err := s.store.Context(ctx, "site-1", "c1", it.MessageSeq, 10, 5)
		if err != nil || len(conv) != 3 || conv[1].Role != "agent" {
			t.Fatalf("context %+v %v", conv, err)
		}
		// a verdict event carries the item
		var vp ingest.ModerationVerdictPayload
		if err := ev.Into(&vp); err != nil || vp.ItemID != it.ID || vp.Stage != "worker" || vp.MessageEventID != batch[2].Event.ID {
			t.Fatalf("verdict %+v %v", vp, err)
		}
	})
}

func TestWorkerRejectsBadPayloadAndGoesOn(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := newTestService(t, backend)
		good := chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "kill yourself", time.Now())
		bad := chatMessage(t, "site-1", "c2", ingest.RoleVisitor, "v2", 1, "x", time.Now())
		bad.Event.Payload = []byte(`{"message_id": 5}`)
		rejects, err := s.handle(context.Background(), []ingest.Record{bad, good})
		if err != nil || len(rejects) != 1 || rejects[0].Record.Event.ID != bad.Event.ID {
			t.Fatalf("rejects %v, err %v", rejects, err)
		}
		if items := openItems(t, s.store); len(items) != 1 {
			t.Fatalf("%d items, want the good message queued", len(items))
		}
	})
}

// A NUL character in a message (valid JSON, refused by PostgreSQL's
// TEXT) is stored, not retried for ever.
func TestWorkerStoresMessageWithNUL(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := newTestService(t, backend)
		r := chatMessage(t, "site-1", "c\x00", ingest.RoleVisitor, "v\x00", 1, "you idiot \x00 moron", time.Now())
		if _, err := s.handle(context.Background(), []ingest.Record{r}); err != nil {
			t.Fatal(err)
		}
		if items := openItems(t, s.store); len(items) != 1 || !slicesContain(items[0].Categories, CatAbuse) {
			t.Fatalf("items %+v", items)
		}
	})
}

func TestFloodStateSurvivesWorkerRestart(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		open := storeOpener(t, backend)
		s := newServiceOn(t, open(), Config{})
		ctx := context.Background()
		at := time.Now()
		for i := int64(1); i <= 2; i++ {
			if _, err := s.handle(ctx, []ingest.Record{chatMessage(t, "s", "c", ingest.RoleVisitor, "v", i, "WHERE IS my parcel", at.Add(time.Duration(i)*time.Second))}); err != nil {
				t.Fatal(err)
			}
		}
		s = newServiceOn(t, open(), Config{}) // a restarted worker
		third := chatMessage(t, "s", "c", ingest.RoleVisitor, "v", 3, "where is my parcel!!! 3", at.Add(3*time.Second))
		if _, err := s.handle(ctx, []ingest.Record{third}); err != nil {
			t.Fatal(err)
		}
		it, err := s.store.Item(ctx, derivedID(third.Event.ID, "item"))
		if err != nil {
			t.Fatalf("third near-identical message not queued: %v", err)
		}
		if !slicesContain(it.Categories, CatFlood) || it.Action != ActionBlock {
			t.Fatalf("item %+v", it)
		}
		// outside the window the same text is fine again
		later := chatMessage(t, "s", "c", ingest.RoleVisitor, "v", 4, "where is my parcel", at.Add(5*time.Minute))
		if _, err := s.handle(ctx, []ingest.Record{later}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.store.Item(ctx, derivedID(later.Event.ID, "item")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("message outside the flood window was queued: %v", err)
		}
	})
}

// Two workers handed the same messages at once (a rebalance, or two
// nodes) create one review item and one verdict per message.
func TestConcurrentWorkersJudgeEachMessageOnce(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		open := storeOpener(t, backend)
		workers := []*Service{newServiceOn(t, open(), Config{}), newServiceOn(t, open(), Config{})}
		ctx := context.Background()
		now := time.Now()
		var batch []ingest.Record
		for i := int64(1); i <= 20; i++ {
			text := "where is my order?"
			if i%2 == 0 {
				text = "you are a fucking idiot"
			}
			batch = append(batch, chatMessage(t, "site-1", fmt.Sprintf("c%d", i%3), ingest.RoleVisitor, fmt.Sprintf("v%d", i), i, text, now))
		}
		// the second worker sees the messages in the opposite order (the
		// batches of two partitions' rebalance need not agree)
		reversed := slices.Clone(batch)
		slices.Reverse(reversed)
		for round := range 3 {
			var wg sync.WaitGroup
			errs := make(chan error, len(workers))
			for i, w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b := batch
					if i == 1 {
						b = reversed
					}
					if _, err := w.handle(ctx, b); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if items := openItems(t, workers[0].store); len(items) != 10 {
			t.Fatalf("%d review items, want 10 (one per abusive message)", len(items))
		}
		verdicts := map[string]int{}
		for _, e := range eventsOf(pendingEvents(t, workers[1].store), ingest.ModerationVerdict) {
			var p ingest.ModerationVerdictPayload
			if err := e.Into(&p); err != nil {
				t.Fatal(err)
			}
			verdicts[p.MessageEventID]++
		}
		if len(verdicts) != len(batch)/2 {
			t.Fatalf("verdicts for %d messages, want %d (the abusive ones)", len(verdicts), len(batch)/2)
		}
		for id, n := range verdicts {
			if n != 1 {
				t.Fatalf("message %s got %d verdicts", id, n)
			}
		}
	})
}

// Moderators on different nodes deciding one item at once: one decision
// wins, the others get ErrConflict, and one decision event and audit row
// are written.
func TestConcurrentDecisionsOnOneItem(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		open := storeOpener(t, backend)
		nodes := []*Service{newServiceOn(t, open(), Config{}), newServiceOn(t, open(), Config{})}
		abusive := chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "you are an idiot", time.Now())
		if _, err := nodes[0].handle(ctx, []ingest.Record{abusive}); err != nil {
			t.Fatal(err)
		}
		itemID := derivedID(abusive.Event.ID, "item")
		const moderators = 8
		start := make(chan struct{})
		results := make(chan error, moderators)
		for i := range moderators {
			go func() {
				<-start
				_, err := nodes[i%2].Decide(ctx, itemID, testUser(fmt.Sprintf("m%d", i)), Decision{Decision: ingest.DecisionRemove, Reason: "abuse"})
				results <- err
			}()
		}
		close(start)
		won := 0
		for range moderators {
			switch err := <-results; {
			case err == nil:
				won++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("Decide: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d decisions won, want 1", won)
		}
		if n := len(eventsOf(pendingEvents(t, nodes[0].store), ingest.ModerationDecision)); n != 1 {
			t.Fatalf("%d decision events, want 1", n)
		}
		if a, err := nodes[1].store.Audit(ctx, AuditFilter{ItemID: itemID, Limit: 100}); err != nil || len(a) != 1 {
			t.Fatalf("audit %+v %v, want one row", a, err)
		}
	})
}

func TestInlineCheckUsesSitePolicyAndFlood(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := newTestService(t, backend)
		ctx := context.Background()
		if v := s.CheckInline(ctx, "site-1", "v1", "you are an idiot"); v.Action != ActionBlock {
			t.Fatalf("default policy: %+v", v)
		}
		if _, err := s.SavePolicy(ctx, "site-1", []byte(`{"actions": {"abuse": "flag"}, "flood": {"window_seconds": 60, "max_messages": 3, "max_repeats": 0}}`), testUser("m1")); err != nil {
			t.Fatal(err)
		}
		if v := s.CheckInline(ctx, "site-1", "v1", "you are an idiot"); v.Action != ActionFlag {
			t.Fatalf("saved policy not applied: %+v", v)
		}
		if v := s.CheckInline(ctx, "site-2", "v1", "you are an idiot"); v.Action != ActionBlock {
			t.Fatalf("other site changed: %+v", v)
		}
		var last Verdict
		for i := range 3 {
			last = s.CheckInline(ctx, "site-1", "v9", fmt.Sprintf("question number %d", i))
		}
		if last.Has(CatFlood) {
			t.Fatalf("third message is within the limit: %+v", last)
		}
		if v := s.CheckInline(ctx, "site-1", "v9", "and another"); !v.Has(CatFlood) || v.Action != ActionBlock {
			t.Fatalf("fourth message in the window: %+v", v)
		}
		if v := s.CheckInline(ctx, "site-1", "v10", "hello"); v.Has(CatFlood) {
			t.Fatalf("another visitor is flooded: %+v", v)
		}
	})
}

// A chat node runs only an InlineChecker on moderation's store: it sees a
// policy saved by the moderation node once its cached copy is older than
// PolicyTTL, and bans at once.
func TestInlineCheckerOnAChatNodeSeesPoliciesAndBans(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		open := storeOpener(t, backend)
		mod := newServiceOn(t, open(), Config{})
		chat, err := NewInlineChecker(open(), InlineConfig{PolicyTTL: 100 * time.Millisecond, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if err := chat.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		if v := chat.CheckInline(ctx, "site-1", "v1", "pineapples"); v.Action != ActionAllow {
			t.Fatalf("default policy: %+v", v)
		}
		saveAndAwaitBlock(t, mod, chat, "pineapple")

		abusive := chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "you are an idiot", time.Now())
		if _, err := mod.handle(ctx, []ingest.Record{abusive}); err != nil {
			t.Fatal(err)
		}
		if _, banned := chat.Banned(ctx, "site-1", "v1"); banned {
			t.Fatal("banned before any decision")
		}
		if _, err := mod.Decide(ctx, derivedID(abusive.Event.ID, "item"), testUser("m1"), Decision{Decision: ingest.DecisionBan, Reason: "abuse", BanFor: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if until, banned := chat.Banned(ctx, "site-1", "v1"); !banned || time.Until(until) < 59*time.Minute {
			t.Fatalf("Banned = %v %v", until, banned)
		}
		if err := mod.LiftBan(ctx, "site-1", "v1", testUser("m2"), "appeal accepted"); err != nil {
			t.Fatal(err)
		}
		if _, banned := chat.Banned(ctx, "site-1", "v1"); banned {
			t.Fatal("still banned after the ban was lifted")
		}
	})
}

func slicesContain(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestInlineBlockedMessageIsQueuedEvenIfWorkerAllowsIt(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := newTestService(t, backend)
		r := chatMessage(t, "s", "c", ingest.RoleVisitor, "v", 1, "hello again", time.Now())
		var p ingest.MessageSentPayload
		if err := r.Event.Into(&p); err != nil {
			t.Fatal(err)
		}
		p.Blocked = true
		r.Event.Payload, _ = json.Marshal(p)
		if _, err := s.handle(context.Background(), []ingest.Record{r}); err != nil {
			t.Fatal(err)
		}
		it, err := s.store.Item(context.Background(), derivedID(r.Event.ID, "item"))
		if err != nil {
			t.Fatalf("inline-blocked message not queued: %v", err)
		}
		if it.Action != ActionBlock || !slicesContain(it.Categories, CatInlineBlock) {
			t.Fatalf("item %+v", it)
		}
	})
}

// A cached site policy older than PolicyTTL is read again, but compiled
// again only when it changed; while one caller re-reads, the others go on
// with the cached engine instead of all compiling at once (which stalled
// every sender on the site each PolicyTTL).
func TestInlinePolicyRefreshCompilesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	open := storeOpener(t, "sqlite")
	mod := newServiceOn(t, open(), Config{})
	chat, err := NewInlineChecker(open(), InlineConfig{PolicyTTL: 20 * time.Millisecond, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.SavePolicy(ctx, "site-1", []byte(`{"block": {"custom": ["pineapple*"]}, "actions": {"custom": "block"}}`), testUser("m1")); err != nil {
		t.Fatal(err)
	}
	// expire ages the cached copy past PolicyTTL, marking it as being
	// refreshed by another caller or not.
	expire := func(refreshing bool) {
		chat.mu.Lock()
		ce := chat.engines["site-1"]
		ce.at, ce.refreshing = time.Time{}, refreshing
		chat.engines["site-1"] = ce
		chat.mu.Unlock()
	}
	first := chat.engineFor(ctx, "site-1")
	for i := 0; i < 3; i++ {
		expire(false)
		if e := chat.engineFor(ctx, "site-1"); e != first {
			t.Fatalf("re-read %d compiled the unchanged policy again", i+1)
		}
	}
	// While one caller refreshes, the others get the cached engine at once.
	expire(true)
	if e := chat.engineFor(ctx, "site-1"); e != first {
		t.Fatal("a caller during another's refresh did not get the cached engine")
	}
	expire(false)

	// A changed policy is compiled and applied.
	saveAndAwaitBlock(t, mod, chat, "mango")
	if chat.engineFor(ctx, "site-1") == first {
		t.Fatal("the changed policy runs on the old engine")
	}

	// Senders arriving together at a node that has not cached the
	// policy yet wait for one compile and share it.
	fresh, err := NewInlineChecker(open(), InlineConfig{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	engines := make([]*Engine, 8)
	var wg sync.WaitGroup
	for i := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			engines[i] = fresh.engineFor(ctx, "site-1")
		}()
	}
	wg.Wait()
	for i, e := range engines {
		if e != engines[0] {
			t.Fatalf("sender %d got an engine of its own compile, not the one all share", i)
		}
	}
}

// saveAndAwaitBlock saves a site-1 policy through mod that blocks words
// starting with word, and waits until chat's inline check blocks word+"s".
func saveAndAwaitBlock(t *testing.T, mod *Service, chat *InlineChecker, word string) {
	t.Helper()
	ctx := context.Background()
	doc := fmt.Sprintf(`{"block": {"custom": [%q]}, "actions": {"custom": "block"}}`, word+"*")
	if _, err := mod.SavePolicy(ctx, "site-1", []byte(doc), testUser("m1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for chat.CheckInline(ctx, "site-1", "v1", word+"s").Action != ActionBlock {
		if time.Now().After(deadline) {
			t.Fatalf("the chat node never applied the policy blocking %q", word)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
