package moderation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
)

// TestEndToEndAbuseIsQueuedRemovedAndDecisionPublished runs the workers
// on the embedded broker: a visitor's abusive message.sent is consumed,
// judged and queued; its verdict reaches Kafka through the outbox; a
// moderator signed in over HTTP claims and removes it; the
// moderation.decision the chat service applies arrives on Kafka. The same
// message published twice yields one item and one verdict.
func TestEndToEndAbuseIsQueuedRemovedAndDecisionPublished(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	broker, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	if err := ingest.EnsureTopics(ctx, broker.Addrs(), ingest.DefaultTopics(3, 0)); err != nil {
		t.Fatal(err)
	}
	producer := ingest.NewProducer(ingest.ProducerConfig{Brokers: broker.Addrs()})
	defer producer.Close()

	env := newAPIEnv(t, Config{Producer: producer, Brokers: broker.Addrs(), BatchWait: 5 * time.Millisecond, RelayInterval: 50 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- env.svc.Run(runCtx) }()

	// moderation events as the chat service would read them
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: broker.Addrs(), GroupID: "e2e-chat", Topic: ingest.TopicModeration, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
	defer reader.Close()

	abusive := chatMessage(t, "site-1", "conv-9", ingest.RoleVisitor, "visitor-9", 4, "you are a worthless piece of shit", time.Now())
	clean := chatMessage(t, "site-1", "conv-9", ingest.RoleVisitor, "visitor-9", 5, "where is my order?", time.Now())
	if err := producer.Publish(ctx, abusive.Event, clean.Event, abusive.Event); err != nil { // the abusive one twice
		t.Fatal(err)
	}

	mod := env.login(t, "mod1@example.com")
	itemID := derivedID(abusive.Event.ID, "item")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page ItemPage
		if code := mod.do("GET", "/api/moderation/items?site_id=site-1", nil, &page); code != 200 {
			t.Fatalf("list: %d", code)
		}
		if page.Total == 1 && page.Items[0].ID == itemID {
			if page.Items[0].Action != ActionBlock || !slicesContain(page.Items[0].Categories, CatAbuse) {
				t.Fatalf("item %+v", page.Items[0])
			}
			break
		}
		if page.Total > 1 {
			t.Fatalf("%d items, want 1", page.Total)
		}
		if time.Now().After(deadline) {
			t.Fatal("abusive message never reached the review queue")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var it Item
	if code := mod.do("POST", "/api/moderation/items/"+itemID+"/claim", nil, &it); code != 200 {
		t.Fatalf("claim: %d", code)
	}
	if code := mod.do("POST", "/api/moderation/items/"+itemID+"/remove", map[string]string{"reason": "abuse towards the agent"}, &it); code != 200 || it.Status != StatusRemoved {
		t.Fatalf("remove: %d %+v", code, it)
	}

	verdicts := map[string]int{} // message event id → verdicts seen
	var decision *ingest.ModerationDecisionPayload
	for decision == nil || verdicts[clean.Event.ID] == 0 {
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := reader.FetchMessage(rctx)
		rcancel()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("no decision on Kafka (verdicts %v)", verdicts)
		}
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ingest.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != "conv-9" || ev.ConversationID != "conv-9" {
			t.Fatalf("event keyed %q for conversation %q", m.Key, ev.ConversationID)
		}
		switch ev.Type {
		case ingest.ModerationVerdict:
			var v ingest.ModerationVerdictPayload
			ev.Into(&v)
			verdicts[v.MessageEventID]++
			if v.MessageEventID == abusive.Event.ID && (v.Action != ActionBlock || v.ItemID != itemID) {
				t.Fatalf("verdict %+v", v)
			}
		case ingest.ModerationDecision:
			var d ingest.ModerationDecisionPayload
			ev.Into(&d)
			decision = &d
		}
	}
	if decision.Decision != ingest.DecisionRemove || decision.ItemID != itemID || decision.MessageID != "conv-9-m4" || decision.Reason != "abuse towards the agent" {
		t.Fatalf("decision %+v", decision)
	}
	if verdicts[abusive.Event.ID] != 1 {
		t.Fatalf("abusive message got %d verdicts, want exactly 1", verdicts[abusive.Event.ID])
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop")
	}
	if n := count(t, env.svc.db, `SELECT COUNT(*) FROM mod_outbox WHERE sent_at IS NULL`); n != 0 {
		t.Fatalf("%d outbox rows unsent after stop", n)
	}
}
