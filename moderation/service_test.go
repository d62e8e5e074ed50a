package moderation

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sqlstore.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newTestService builds a Service on a fresh moderation.db, without Kafka.
func newTestService(t testing.TB) *Service {
	t.Helper()
	return newServiceOn(t, openDB(t, filepath.Join(t.TempDir(), "moderation.db")), Config{})
}

func newServiceOn(t testing.TB, db *sql.DB, cfg Config) *Service {
	t.Helper()
	cfg.DB = db
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

func count(t testing.TB, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestWorkerQueuesJudgesOnceAndKeepsContext(t *testing.T) {
	s := newTestService(t)
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
	if n := count(t, s.db, `SELECT COUNT(*) FROM mod_items`); n != 1 {
		t.Fatalf("%d items, want 1", n)
	}
	if n := count(t, s.db, `SELECT COUNT(*) FROM mod_outbox WHERE event_type = 'moderation.verdict'`); n != 2 {
		t.Fatalf("%d verdicts in the outbox, want 2 (one per visitor message)", n)
	}
	if n := count(t, s.db, `SELECT COUNT(*) FROM mod_outbox WHERE event_id = ?`, derivedID(batch[2].Event.ID, "verdict")); n != 1 {
		t.Fatalf("verdict id is not derived from the message event id")
	}
	it, err := getItem(ctx, s.db, derivedID(batch[2].Event.ID, "item"))
	if err != nil {
		t.Fatal(err)
	}
	if it.Action != ActionBlock || !slicesContain(it.Categories, CatAbuse) || it.VisitorID != "v1" || it.Status != StatusOpen {
		t.Fatalf("item %+v", it)
	}
	conv, err := contextAround(ctx, s.db, "site-1", "c1", it.MessageSeq, 10, 5)
	if err != nil || len(conv) != 3 || conv[1].Role != "agent" {
		t.Fatalf("context %+v %v", conv, err)
	}
	// a verdict event decodes and carries the item
	var raw []byte
	if err := s.db.QueryRow(`SELECT value FROM mod_outbox WHERE event_id = ?`, derivedID(batch[2].Event.ID, "verdict")).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	ev, err := ingest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	var vp ingest.ModerationVerdictPayload
	if err := ev.Into(&vp); err != nil || vp.ItemID != it.ID || vp.Stage != "worker" || vp.MessageEventID != batch[2].Event.ID {
		t.Fatalf("verdict %+v %v", vp, err)
	}
}

func TestWorkerRejectsBadPayloadAndGoesOn(t *testing.T) {
	s := newTestService(t)
	good := chatMessage(t, "site-1", "c1", ingest.RoleVisitor, "v1", 1, "kill yourself", time.Now())
	bad := chatMessage(t, "site-1", "c2", ingest.RoleVisitor, "v2", 1, "x", time.Now())
	bad.Event.Payload = []byte(`{"message_id": 5}`)
	rejects, err := s.handle(context.Background(), []ingest.Record{bad, good})
	if err != nil || len(rejects) != 1 || rejects[0].Record.Event.ID != bad.Event.ID {
		t.Fatalf("rejects %v, err %v", rejects, err)
	}
	if n := count(t, s.db, `SELECT COUNT(*) FROM mod_items`); n != 1 {
		t.Fatalf("%d items, want the good message queued", n)
	}
}

func TestFloodStateSurvivesWorkerRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moderation.db")
	db := openDB(t, path)
	s := newServiceOn(t, db, Config{})
	ctx := context.Background()
	at := time.Now()
	for i := int64(1); i <= 2; i++ {
		if _, err := s.handle(ctx, []ingest.Record{chatMessage(t, "s", "c", ingest.RoleVisitor, "v", i, "BUY NOW visit my shop", at.Add(time.Duration(i)*time.Second))}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s = newServiceOn(t, openDB(t, path), Config{}) // a restarted worker
	third := chatMessage(t, "s", "c", ingest.RoleVisitor, "v", 3, "buy now!!! visit my shop 3", at.Add(3*time.Second))
	if _, err := s.handle(ctx, []ingest.Record{third}); err != nil {
		t.Fatal(err)
	}
	it, err := getItem(ctx, s.db, derivedID(third.Event.ID, "item"))
	if err != nil {
		t.Fatalf("third near-identical message not queued: %v", err)
	}
	if !slicesContain(it.Categories, CatFlood) || it.Action != ActionBlock {
		t.Fatalf("item %+v", it)
	}
	// outside the window the same text is fine again
	later := chatMessage(t, "s", "c", ingest.RoleVisitor, "v", 4, "buy now visit my shop", at.Add(5*time.Minute))
	if _, err := s.handle(ctx, []ingest.Record{later}); err != nil {
		t.Fatal(err)
	}
	if _, err := getItem(ctx, s.db, derivedID(later.Event.ID, "item")); err == nil {
		t.Fatal("message outside the flood window was queued")
	}
}

func TestInlineCheckUsesSitePolicyAndFlood(t *testing.T) {
	s := newTestService(t)
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
	s := newTestService(t)
	r := chatMessage(t, "s", "c", ingest.RoleVisitor, "v", 1, "hello again", time.Now())
	var p ingest.MessageSentPayload
	r.Event.Into(&p)
	p.Blocked = true
	r.Event.Payload, _ = json.Marshal(p)
	if _, err := s.handle(context.Background(), []ingest.Record{r}); err != nil {
		t.Fatal(err)
	}
	it, err := getItem(context.Background(), s.db, derivedID(r.Event.ID, "item"))
	if err != nil {
		t.Fatalf("inline-blocked message not queued: %v", err)
	}
	if it.Action != ActionBlock || !slicesContain(it.Categories, CatInlineBlock) {
		t.Fatalf("item %+v", it)
	}
}
