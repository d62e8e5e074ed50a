package moderation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/ingest/ingesttest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// pipeline is a Service running its workers and relay on the embedded
// broker, with the API served over HTTP.
type pipeline struct {
	env      *apiEnv
	producer *ingest.Producer
	reader   *kafka.Reader // parley.moderation.v1, as a chat node reads it
	stop     func()        // stops Run and checks it returned cleanly
}

func startPipeline(t *testing.T, ctx context.Context, backend string) *pipeline {
	t.Helper()
	broker := ingesttest.Broker(t, 3)
	producer := ingesttest.Producer(t, broker.Addrs())

	env := newAPIEnv(t, backend, Config{Producer: producer, Brokers: broker.Addrs(), BatchWait: 5 * time.Millisecond, RelayInterval: 50 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- env.svc.Run(runCtx) }()
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: broker.Addrs(), GroupID: "e2e-chat", Topic: ingest.TopicModeration, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
	t.Cleanup(func() { reader.Close() })
	stopped := false
	stop := func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not stop")
		}
	}
	t.Cleanup(stop)
	return &pipeline{env: env, producer: producer, reader: reader, stop: stop}
}

// waitForItem waits until the site's open queue holds exactly the item.
func (p *pipeline) waitForItem(t *testing.T, mod *client, site, itemID string) Item {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page ItemPage
		if code := mod.do("GET", "/api/moderation/items?site_id="+site, nil, &page); code != 200 {
			t.Fatalf("list: %d", code)
		}
		if page.Total == 1 && page.Items[0].ID == itemID {
			return page.Items[0]
		}
		if page.Total > 1 {
			t.Fatalf("%d items, want 1", page.Total)
		}
		if time.Now().After(deadline) {
			t.Fatal("message never reached the review queue")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// next reads the next moderation event, failing after 20 s.
func (p *pipeline) next(t *testing.T, ctx context.Context, what string) (kafka.Message, ingest.Event) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	m, err := p.reader.FetchMessage(rctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no %s on Kafka", what)
	}
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ingest.Decode(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	return m, ev
}

// TestEndToEndAbuseIsQueuedRemovedAndDecisionPublished runs the workers
// on the embedded broker: a visitor's abusive message.sent is consumed,
// judged and queued; its verdict reaches Kafka through the outbox; a
// moderator signed in over HTTP claims and removes it; the
// moderation.decision the chat service applies arrives on Kafka. The same
// message published twice yields one item and one verdict; the clean
// message none.
func TestEndToEndAbuseIsQueuedRemovedAndDecisionPublished(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		p := startPipeline(t, ctx, backend)

		abusive := chatMessage(t, "site-1", "conv-9", ingest.RoleVisitor, "visitor-9", 4, "you are a worthless piece of shit", time.Now())
		clean := chatMessage(t, "site-1", "conv-9", ingest.RoleVisitor, "visitor-9", 5, "where is my order?", time.Now())
		if err := p.producer.Publish(ctx, abusive.Event, clean.Event, abusive.Event); err != nil { // the abusive one twice
			t.Fatal(err)
		}

		mod := p.env.login(t, "mod1@example.com")
		itemID := derivedID(abusive.Event.ID, "item")
		if it := p.waitForItem(t, mod, "site-1", itemID); it.Action != ActionBlock || !slicesContain(it.Categories, CatAbuse) {
			t.Fatalf("item %+v", it)
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
		for decision == nil || verdicts[abusive.Event.ID] == 0 {
			m, ev := p.next(t, ctx, "decision")
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
		if verdicts[clean.Event.ID] != 0 {
			t.Fatalf("the allowed message got %d verdicts, want none", verdicts[clean.Event.ID])
		}
		p.stop()
		if n, _, err := p.env.svc.store.OutboxBacklog(context.Background()); err != nil || n != 0 {
			t.Fatalf("%d outbox rows unsent after stop (%v)", n, err)
		}
	})
}

// A ban lifted over the API reaches Kafka as an unban decision after the
// ban, on the same key, so a chat node drops the ban it holds.
func TestEndToEndLiftedBanIsPublishedAfterTheBan(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		p := startPipeline(t, ctx, backend)

		abusive := chatMessage(t, "site-1", "conv-7", ingest.RoleVisitor, "visitor-7", 1, "I will kill you", time.Now())
		if err := p.producer.Publish(ctx, abusive.Event); err != nil {
			t.Fatal(err)
		}
		mod := p.env.login(t, "mod1@example.com")
		itemID := derivedID(abusive.Event.ID, "item")
		p.waitForItem(t, mod, "site-1", itemID)
		if code := mod.do("POST", "/api/moderation/items/"+itemID+"/ban", map[string]string{"reason": "threat", "duration": "24h"}, nil); code != 200 {
			t.Fatalf("ban: %d", code)
		}
		if code := mod.do("POST", "/api/moderation/bans/site-1/visitor-7/lift", map[string]string{"reason": "appeal accepted"}, nil); code != 204 {
			t.Fatalf("lift: %d", code)
		}
		var decisions []string
		for len(decisions) < 2 {
			m, ev := p.next(t, ctx, "ban and unban decision")
			if ev.Type != ingest.ModerationDecision {
				continue
			}
			var d ingest.ModerationDecisionPayload
			if err := ev.Into(&d); err != nil {
				t.Fatal(err)
			}
			if string(m.Key) != "conv-7" || d.VisitorID != "visitor-7" || ev.SiteID != "site-1" {
				t.Fatalf("decision keyed %q: %+v on %s", m.Key, d, ev.SiteID)
			}
			decisions = append(decisions, d.Decision)
		}
		if decisions[0] != ingest.DecisionBan || decisions[1] != ingest.DecisionUnban {
			t.Fatalf("decisions on Kafka %v, want ban then unban", decisions)
		}
	})
}
