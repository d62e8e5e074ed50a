package main

// The chaos properties with real processes: visitors chat without pause
// through the gateway while the chat node is stopped with SIGTERM and
// later killed with SIGKILL, and restarted each time. Every acknowledged
// message must be stored once and published: no message lost, none
// stored twice, and no event published twice (the relay looks on Kafka
// for what it may have published before the kill).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
)

// chaosVisitor sends numbered messages one after another and resends the
// unacknowledged one (same client id) after every reconnect, as the widget does.
type chaosVisitor struct {
	base, origin, siteKey string
	token, id             string
	mu                    sync.Mutex
	acked                 map[string]string // client id → message id
	resent                int
	lastErr               error
}

func (v *chaosVisitor) ackedCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.acked)
}

func (v *chaosVisitor) session() error {
	body, _ := json.Marshal(map[string]string{"site_key": v.siteKey, "token": v.token})
	req, _ := http.NewRequest("POST", v.base+"/api/chat/visitor/session", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", v.origin)
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("session: %d", res.StatusCode)
	}
	var s struct {
		Token     string `json:"token"`
		VisitorID string `json:"visitor_id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return err
	}
	if v.id != "" && s.VisitorID != v.id {
		return fmt.Errorf("visitor changed from %s to %s", v.id, s.VisitorID)
	}
	v.token, v.id = s.Token, s.VisitorID
	return nil
}

// run chats until ctx ends, reconnecting whenever the node goes away.
func (v *chaosVisitor) run(ctx context.Context, n int) {
	next := 0
	for ctx.Err() == nil {
		if err := v.session(); err != nil {
			v.lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		conn, _, err := fws.DefaultDialer.DialContext(ctx, wsURL(v.base, "/ws/visitor?token="+url.QueryEscape(v.token)), http.Header{"Origin": {v.origin}})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			id := fmt.Sprintf("v%d-%d", n, next)
			if err := conn.WriteJSON(map[string]any{"type": "send", "client_id": id, "text": "chaos " + id}); err != nil {
				v.resent++
				break
			}
			msgID, err := awaitAck(conn, id)
			if errors.Is(err, errRetryLater) {
				time.Sleep(time.Second)
				continue // the same id again
			}
			if err != nil {
				v.resent++ // the same id goes again on the next connection
				v.lastErr = err
				break
			}
			v.mu.Lock()
			v.acked[id] = msgID
			v.mu.Unlock()
			next++
			time.Sleep(250 * time.Millisecond) // under the 5 messages/s a visitor may send
		}
		conn.Close()
	}
}

// errRetryLater is a refusal to resend on the same connection.
var errRetryLater = errors.New("rate limited")

func awaitAck(conn *fws.Conn, id string) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f map[string]any
		if err := conn.ReadJSON(&f); err != nil {
			return "", err
		}
		// A message the flood filter blocks is stored and published too.
		if (f["type"] == "ack" || f["type"] == "blocked") && f["client_id"] == id {
			m, _ := f["message_id"].(string)
			return m, nil
		}
		if f["type"] == "error" {
			if f["code"] == "rate_limited" {
				return "", errRetryLater
			}
			return "", fmt.Errorf("error frame %v", f)
		}
	}
}

// topicEvents reads every message.sent event of the chat topic.
func topicEvents(t *testing.T, brokers string, partitions int) []ingest.Event {
	t.Helper()
	var out []ingest.Event
	for p := 0; p < partitions; p++ {
		conn, err := kafka.DialLeader(context.Background(), "tcp", brokers, ingest.TopicChat, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: ingest.TopicChat, Partition: p, MaxBytes: 16 << 20})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("read partition %d: %v", p, err)
			}
			ev, err := ingest.Decode(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == ingest.MessageSent {
				out = append(out, ev)
			}
			if m.Offset >= last-1 {
				break
			}
		}
		cancel()
		r.Close()
	}
	return out
}

func TestChaosStopAndKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startCluster(t)
	c.start("dash", "dashboard", "dashboard")
	chat := c.start("chat1", "chat", "chat")
	p := c.asE2E()

	const visitors = 10
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	vs := make([]*chaosVisitor, visitors)
	for i := range vs {
		vs[i] = &chaosVisitor{base: c.gateway, origin: c.gateway, siteKey: p.site.Key, acked: map[string]string{}}
		wg.Add(1)
		go func(i int) { defer wg.Done(); vs[i].run(ctx, i) }(i)
	}
	ackedSoFar := func() int {
		n := 0
		for _, v := range vs {
			n += v.ackedCount()
		}
		return n
	}
	waitLoad := func(what string, more int) {
		start := ackedSoFar()
		waitUntil(t, 60*time.Second, what, func() bool { return ackedSoFar() >= start+more })
	}
	waitLoad("load before the SIGTERM", 100)
	chat.stop(t)
	chat = c.start("chat1", "chat", "chat")
	waitLoad("load after the SIGTERM", 100)
	chat.kill(t)
	chat = c.start("chat1", "chat", "chat")
	waitLoad("load after the SIGKILL", 100)
	stop()
	wg.Wait()

	acked := map[string]string{}
	resent := 0
	for _, v := range vs {
		resent += v.resent
		for id, m := range v.acked {
			acked[v.id+"/"+id] = m
		}
	}
	// Every acknowledged message reaches the topic exactly once as a
	// message (one message id per client id), and no event id twice.
	var evs []ingest.Event
	byClient := map[string]map[string]bool{}
	byEvent := map[string]int{}
	waitUntil(t, 60*time.Second, "every acked message on the topic", func() bool {
		evs = topicEvents(t, c.brokers, 4)
		clear(byClient)
		clear(byEvent)
		for _, ev := range evs {
			var pl ingest.MessageSentPayload
			if err := ev.Into(&pl); err != nil {
				t.Fatal(err)
			}
			k := ev.Actor.ID + "/" + pl.ClientMessageID
			if byClient[k] == nil {
				byClient[k] = map[string]bool{}
			}
			byClient[k][pl.MessageID] = true
			byEvent[ev.ID]++
		}
		for k := range acked {
			if len(byClient[k]) == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, n := range byEvent {
		if n > 1 {
			dups += n - 1
		}
	}
	for k, ms := range byClient {
		if len(ms) != 1 {
			t.Errorf("client id %s was stored as %d messages", k, len(ms))
		}
		if m, ok := acked[k]; ok && !ms[m] {
			t.Errorf("client id %s acked as %s but published as %v", k, m, ms)
		}
	}
	t.Logf("%d messages acked by %d visitors across a SIGTERM and a SIGKILL (%d resends after a reconnect); %d message.sent events, %d published twice",
		len(acked), visitors, resent, len(evs), dups)
	if dups != 0 {
		t.Errorf("%d events were published twice", dups)
	}
}
