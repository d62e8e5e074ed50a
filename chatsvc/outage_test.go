package chatsvc

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestBrokerOutage stops the broker mid-conversation: chat goes on with
// acks; a new broker on the same data dir and port then receives every
// missed event exactly once.
func TestBrokerOutage(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Limits.VisitorMsgRate, c.Limits.VisitorMsgBurst = 1000, 1000 })
		grace := e.staff("Grace", access.Agent)
		agent := grace.socket()
		tok, _ := e.visitorSession("")
		vis := e.visitorSocket(tok)

		vis.send(map[string]any{"type": "send", "client_id": "before", "text": "before the outage"})
		conv := vis.expect("ack", byClient("before")).str("conversation_id")
		agent.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == grace.user.ID })
		poll(t, "the outbox to drain before the outage", 20*time.Second, func() bool {
			n, err := e.svc.OutboxBacklog(context.Background())
			return err == nil && n == 0
		})

		_, portStr, _ := net.SplitHostPort(e.brokers[0])
		port, _ := strconv.Atoi(portStr)
		if err := e.broker.Close(); err != nil {
			t.Fatalf("stop broker: %v", err)
		}

		// With Kafka gone, visitors and agents keep chatting, each message acked fast.
		const rounds = 20
		for i := 0; i < rounds; i++ {
			start := time.Now()
			id := fmt.Sprintf("v-%d", i)
			vis.send(map[string]any{"type": "send", "client_id": id, "conversation_id": conv, "text": "visitor " + id})
			vis.expect("ack", byClient(id))
			aid := fmt.Sprintf("a-%d", i)
			agent.send(map[string]any{"type": "send", "client_id": aid, "conversation_id": conv, "text": "agent " + aid})
			agent.expect("ack", byClient(aid))
			vis.expect("message", func(f frame) bool { return f.obj("message").str("client_id") == aid })
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("round %d took %s with the broker down: chat is blocked by Kafka", i, d)
			}
		}
		vis.send(map[string]any{"type": "read", "ref": "r", "conversation_id": conv, "up_to_seq": 3})
		vis.expect("ok", byRef("r"))
		grace.call("POST", "/api/chat/conversations/"+conv+"/status", map[string]string{"status": "resolved"}, 200, nil)
		vis.expect("conversation", func(f frame) bool { return f.obj("conversation").str("status") == StatusResolved })
		backlog, err := e.svc.OutboxBacklog(context.Background())
		if err != nil || backlog < 2*rounds {
			t.Fatalf("outbox backlog during the outage = %d (%v), want ≥ %d", backlog, err, 2*rounds)
		}

		// A new broker on the same directory and port.
		nb, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: filepath.Join(e.dir, "kafka"), Port: port})
		if err != nil {
			t.Fatalf("restart broker on port %d: %v", port, err)
		}
		e.broker = nb
		poll(t, "the outbox to drain after the broker returned", 60*time.Second, func() bool {
			n, err := e.svc.OutboxBacklog(context.Background())
			return err == nil && n == 0
		})

		// Every event is on Kafka exactly once: every acked message's
		// message.sent, nothing twice.
		log := readTopic(t, e.brokers, ingest.TopicChat, 2)
		log.waitFor(t, "every acked message's event", func(evs []ingest.Event) bool {
			sent := 0
			for _, ev := range evs {
				if ev.Type == ingest.MessageSent {
					sent++
				}
			}
			return sent >= 1+2*rounds
		})
		time.Sleep(300 * time.Millisecond) // let any duplicate arrive too before counting
		log.mu.Lock()
		defer log.mu.Unlock()
		sent := 0
		for _, ev := range log.events {
			if log.dups[ev.ID] != 1 {
				t.Errorf("event %s (%s) published %d times", ev.ID, ev.Type, log.dups[ev.ID])
			}
			if ev.Type == ingest.MessageSent {
				sent++
			}
		}
		if sent != 1+2*rounds {
			t.Errorf("message.sent events = %d, want %d", sent, 1+2*rounds)
		}
	})
}
