package chatsvc

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// holdWriter parks the writer goroutine inside an operation until the
// returned release is called, so that what is submitted meanwhile lands
// in one group-commit batch.
func holdWriter(t *testing.T, e *env) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	go e.svc.writer.do(context.Background(), func(*wtx) error {
		close(entered)
		<-gate
		return nil
	})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not take the holding operation")
	}
	return func() { close(gate) }
}

// A resent client id is acknowledged as the original whether it comes back
// in a later batch, twice in one batch, or with a conversation it would now
// be refused for; the batch it arrives in loses nothing and stores nothing twice.
func TestResentClientIDsAreCaughtInAndAcrossBatches(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		tok, visitorID := e.visitorSession("")
		vis := e.visitorSocket(tok)
		otherTok, otherID := e.visitorSession("")
		other := e.visitorSocket(otherTok)

		vis.send(map[string]any{"type": "send", "ref": "a", "client_id": "r-1", "text": "first"})
		first := vis.expect("ack", byRef("a"))
		conv := first.str("conversation_id")

		release := holdWriter(t, e)
		vis.send(map[string]any{"type": "send", "ref": "b", "client_id": "r-2", "text": "second"})
		other.send(map[string]any{"type": "send", "ref": "o", "client_id": "o-1", "text": "bystander"})
		vis.send(map[string]any{"type": "send", "ref": "c", "client_id": "r-1", "text": "first"})
		vis.send(map[string]any{"type": "send", "ref": "d", "client_id": "r-2", "text": "second"})
		poll(t, "four sends queued behind the held writer", 10*time.Second, func() bool { return len(e.svc.writer.ops) == 4 })
		release()

		second := vis.expect("ack", byRef("b"))
		if second["duplicate"] != false || second.num("seq") != first.num("seq")+1 {
			t.Fatalf("new message r-2 ack = %v (first %v)", second, first)
		}
		again := vis.expect("ack", byRef("c"))
		if again["duplicate"] != true || again.str("message_id") != first.str("message_id") || again.num("seq") != first.num("seq") {
			t.Fatalf("resent r-1 ack = %v, original %v", again, first)
		}
		twice := vis.expect("ack", byRef("d"))
		if twice["duplicate"] != true || twice.str("message_id") != second.str("message_id") {
			t.Fatalf("r-2 sent twice in one batch: ack = %v, original %v", twice, second)
		}
		o := other.expect("ack", byRef("o"))
		if o["duplicate"] != false || o.str("conversation_id") == conv {
			t.Fatalf("bystander ack = %v", o)
		}
		otherConv := o.str("conversation_id")
		if n := counterValue(t, e.svc.metrics.resendRedos); n < 1 {
			t.Fatalf("resend redos = %v, want at least 1", n)
		}

		// The author is now looked up first; a resend with a conversation the
		// visitor cannot write to still gets the original ack, not a refusal.
		vis.send(map[string]any{"type": "send", "ref": "e", "client_id": "r-2", "conversation_id": "no-such-conversation", "text": "second"})
		if f := vis.expect("ack", byRef("e")); f["duplicate"] != true || f.str("message_id") != second.str("message_id") {
			t.Fatalf("resend with a foreign conversation: %v", f)
		}
		// So does a visitor that is not (yet) marked as resending.
		e.svc.writer.do(context.Background(), func(t *wtx) error { clear(t.w.resenders); return nil })
		other.send(map[string]any{"type": "send", "ref": "p", "client_id": "o-1", "conversation_id": conv, "text": "bystander"})
		if f := other.expect("ack", byRef("p")); f["duplicate"] != true {
			t.Fatalf("resend to someone else's conversation: %v", f)
		}

		// The batch's conversation update (status and assignee unchanged: the
		// lighter statement) stored the new last message.
		row, err := e.store.Conversation(context.Background(), conv)
		if err != nil {
			t.Fatal(err)
		}
		if row.LastSeq != second.num("seq") || row.LastPreview != "second" || row.Status != StatusOpen {
			t.Fatalf("conversation row after the batch: last_seq %d, preview %q, status %s", row.LastSeq, row.LastPreview, row.Status)
		}

		// Stored exactly once, each with exactly one message.sent event.
		stored := map[string]int{}
		for _, c := range []string{conv, otherConv} {
			msgs, err := e.store.MessagesAfter(context.Background(), c, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				stored[m.Author.ID]++
			}
		}
		log := readTopic(t, e.brokers, ingest.TopicChat, 2)
		events := func(evs []ingest.Event) map[string]int {
			n := map[string]int{}
			for _, ev := range evs {
				if ev.Type == ingest.MessageSent {
					n[ev.Actor.ID]++
				}
			}
			return n
		}
		evs := log.waitFor(t, "the message.sent events", func(evs []ingest.Event) bool {
			n := events(evs)
			return n[visitorID] >= 2 && n[otherID] >= 1
		})
		time.Sleep(300 * time.Millisecond) // let any extra event arrive too
		log.mu.Lock()
		evs = append(evs[:0], log.events...)
		log.mu.Unlock()
		for who, want := range map[string]int{visitorID: 2, otherID: 1} {
			if stored[who] != want {
				t.Fatalf("%s has %d stored messages, want %d", who, stored[who], want)
			}
			if n := events(evs)[who]; n != want {
				t.Fatalf("%s has %d message.sent events, want %d", who, n, want)
			}
		}
	})
}

// counterValue reads a counter; it may be called from any goroutine (a
// failed read fails the test without stopping it).
func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Errorf("read counter: %v", err)
		return 0
	}
	return m.GetCounter().GetValue()
}
