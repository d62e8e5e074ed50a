package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func startBroker(t *testing.T, dir string) *EmbeddedBroker {
	t.Helper()
	b, err := StartEmbedded(EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	return b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collector records what a consumer handled, as a durable sink would.
type collector struct {
	mu      sync.Mutex
	seen    map[string]bool    // event id → handled (the idempotent effect)
	order   map[string][]int64 // conversation → seqs in handling order, per run
	handled int
}

func newCollector() *collector {
	return &collector{seen: map[string]bool{}, order: map[string][]int64{}}
}

func (c *collector) add(batch []Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range batch {
		var p MessageSentPayload
		_ = r.Event.Into(&p)
		c.order[r.Event.ConversationID] = append(c.order[r.Event.ConversationID], p.Seq)
		c.seen[r.Event.ID] = true
		c.handled++
	}
}

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// checkOrder verifies that within one consumer run every conversation's
// sequence numbers arrive strictly increasing.
func (c *collector) checkOrder(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conv, seqs := range c.order {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("conversation %s out of order at %d: %v", conv, i, seqs[max(0, i-3):min(len(seqs), i+3)])
			}
		}
	}
}

func TestTenThousandEventsSurviveConsumerKillAndBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	broker := startBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := broker.Addrs()
	if err := EnsureTopics(ctx, brokers, DefaultTopics(4, 24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Creating the topics twice is success, as at every restart.
	if err := EnsureTopics(ctx, brokers, DefaultTopics(4, 24*time.Hour)); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}

	const total, conversations = 10000, 50
	producer := NewProducer(ProducerConfig{Brokers: brokers})
	var sent []Event
	seq := map[string]int64{}
	for i := 0; i < total; i++ {
		conv := fmt.Sprintf("conv-%02d", i%conversations)
		seq[conv]++
		sent = append(sent, mustEvent(t, MessageSent, conv, MessageSentPayload{MessageID: fmt.Sprint(i), Seq: seq[conv], Kind: KindText, Text: "hi"}))
	}
	for i := 0; i < total; i += 500 {
		if err := producer.Publish(ctx, sent[i:i+500]...); err != nil {
			t.Fatalf("publish batch at %d: %v", i, err)
		}
	}

	// First consumer: crashes after about 3000 events, between its effect
	// and its commit (the handler errs and the run is cancelled).
	first := newCollector()
	runCtx, kill := context.WithCancel(ctx)
	c1, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: "g", Topics: []string{TopicChat}, BatchSize: 250, DeadLetter: producer})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- c1.Run(runCtx, func(_ context.Context, b []Record) ([]Reject, error) {
			first.add(b)
			if first.unique() >= 3000 {
				kill()
				return nil, errors.New("simulated crash before commit")
			}
			return nil, nil
		})
	}()
	if err := <-done; err != nil {
		t.Fatalf("first consumer: %v", err)
	}
	first.checkOrder(t)
	if n := first.unique(); n < 3000 || n >= total {
		t.Fatalf("first consumer handled %d events before the crash", n)
	}

	// Second consumer in the same group picks up from the last commit.
	second := newCollector()
	runCtx2, stop2 := context.WithCancel(ctx)
	c2, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: "g", Topics: []string{TopicChat}, BatchSize: 500, DeadLetter: producer})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- c2.Run(runCtx2, func(_ context.Context, b []Record) ([]Reject, error) { second.add(b); return nil, nil })
	}()
	union := func() int {
		first.mu.Lock()
		second.mu.Lock()
		defer first.mu.Unlock()
		defer second.mu.Unlock()
		all := map[string]bool{}
		for id := range first.seen {
			all[id] = true
		}
		for id := range second.seen {
			all[id] = true
		}
		return len(all)
	}
	waitFor(t, time.Minute, "all 10,000 events across both consumers", func() bool { return union() == total })
	waitFor(t, 10*time.Second, "second consumer's lag to reach 0", func() bool { return c2.Lag() == 0 })
	stop2()
	if err := <-done; err != nil {
		t.Fatalf("second consumer: %v", err)
	}
	second.checkOrder(t)
	if second.handled >= total {
		t.Fatalf("second consumer re-read from the start (%d events): the first run's commits were lost", second.handled)
	}
	if err := producer.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart the broker from its data directory: events and the group's
	// offsets are still there.
	if err := broker.Close(); err != nil {
		t.Fatal(err)
	}
	broker = startBroker(t, dir)
	defer broker.Close()
	brokers = broker.Addrs()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	var committed int64
	waitFor(t, 30*time.Second, "committed offsets after restart", func() bool {
		res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "g", Topics: map[string][]int{TopicChat: {0, 1, 2, 3}}})
		if err != nil {
			return false
		}
		committed = 0
		for _, p := range res.Topics[TopicChat] {
			committed += p.CommittedOffset
		}
		return committed == total
	})
	// A new group reads every event again from the restarted broker.
	replay := newCollector()
	producer = NewProducer(ProducerConfig{Brokers: brokers})
	defer producer.Close()
	c3, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: "replay", Topics: []string{TopicChat}, BatchSize: 1000, DeadLetter: producer})
	if err != nil {
		t.Fatal(err)
	}
	runCtx3, stop3 := context.WithCancel(ctx)
	go func() {
		done <- c3.Run(runCtx3, func(_ context.Context, b []Record) ([]Reject, error) { replay.add(b); return nil, nil })
	}()
	waitFor(t, time.Minute, "all events from the restarted broker", func() bool { return replay.unique() == total })
	stop3()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	replay.checkOrder(t)
}

func TestPoisonEventsGoToDeadLetterAndConsumerGoesOn(t *testing.T) {
	broker := startBroker(t, t.TempDir())
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := broker.Addrs()
	if err := EnsureTopics(ctx, brokers, DefaultTopics(1, 0)); err != nil {
		t.Fatal(err)
	}
	producer := NewProducer(ProducerConfig{Brokers: brokers})
	defer producer.Close()

	before := mustEvent(t, MessageSent, "c", MessageSentPayload{MessageID: "1", Seq: 1, Kind: KindText})
	after := mustEvent(t, MessageSent, "c", MessageSentPayload{MessageID: "2", Seq: 2, Kind: KindText})
	rejected := mustEvent(t, MessageSent, "c", MessageSentPayload{MessageID: "3", Seq: 3, Kind: KindText})
	future := mustEvent(t, MessageSent, "c", MessageSentPayload{MessageID: "x", Seq: 9, Kind: KindText})
	future.Version = 7
	futureRaw, _ := json.Marshal(future)
	if err := producer.Publish(ctx, before); err != nil {
		t.Fatal(err)
	}
	if err := producer.publishRaw(ctx, []kafka.Message{
		{Topic: TopicChat, Key: []byte("c"), Value: []byte(`{"id": "broken`)},
		{Topic: TopicChat, Key: []byte("c"), Value: futureRaw},
		{Topic: TopicChat, Key: []byte("c"), Value: []byte{0xff, 0xfe, '{'}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := producer.Publish(ctx, after, rejected); err != nil {
		t.Fatal(err)
	}

	got := newCollector()
	consumer, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: "dlq-test", Topics: []string{TopicChat}, DeadLetter: producer})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- consumer.Run(runCtx, func(_ context.Context, batch []Record) ([]Reject, error) {
			var rejects []Reject
			var keep []Record
			for _, r := range batch {
				if r.Event.ID == rejected.ID {
					rejects = append(rejects, Reject{Record: r, Reason: "handler cannot load message 3"})
					continue
				}
				keep = append(keep, r)
			}
			got.add(keep)
			return rejects, nil
		})
	}()
	waitFor(t, 30*time.Second, "both good events", func() bool { return got.unique() == 2 })

	dl := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: TopicDeadLetter, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer dl.Close()
	var reasons []DeadLetterRecord
	for len(reasons) < 4 {
		m, err := dl.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letters (have %d): %v", len(reasons), err)
		}
		var rec DeadLetterRecord
		if err := json.Unmarshal(m.Value, &rec); err != nil {
			t.Fatal(err)
		}
		reasons = append(reasons, rec)
	}
	want := []string{"invalid event: unexpected end of JSON input", "unknown event version: message.sent version 7", "invalid event: invalid character", "handler cannot load message 3"}
	for i, w := range want {
		found := false
		for _, r := range reasons {
			if len(r.Reason) >= len(w) && r.Reason[:len(w)] == w {
				found = true
				if r.Topic != TopicChat || r.Group != "dlq-test" {
					t.Errorf("dead letter %d lacks its origin: %+v", i, r)
				}
			}
		}
		if !found {
			t.Errorf("no dead letter with reason %q in %+v", w, reasons)
		}
	}
	for _, r := range reasons {
		if r.Offset == 3 && r.ValueBase64 == nil {
			t.Errorf("invalid UTF-8 value not kept as base64: %+v", r)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSecondBrokerOnSameDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	defer b.Close()
	_, err := StartEmbedded(EmbeddedConfig{Dir: dir})
	if !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second broker on %s: err = %v, want ErrDataDirLocked", dir, err)
	}
}

func BenchmarkPublishConsume(b *testing.B) {
	broker, err := StartEmbedded(EmbeddedConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	ctx := context.Background()
	if err := EnsureTopics(ctx, broker.Addrs(), DefaultTopics(4, 0)); err != nil {
		b.Fatal(err)
	}
	p := NewProducer(ProducerConfig{Brokers: broker.Addrs()})
	defer p.Close()
	batch := make([]Event, 1000)
	for i := range batch {
		batch[i] = mustEvent(b, MessageSent, fmt.Sprint(i%64), MessageSentPayload{MessageID: "m", Seq: int64(i), Kind: KindText, Text: "hello there"})
	}
	b.ResetTimer()
	for b.Loop() {
		if err := p.Publish(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}
