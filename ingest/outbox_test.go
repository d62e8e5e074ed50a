package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
)

// memOutbox is an outbox table in memory, the relay's view of a store.
type memOutbox struct {
	mu   sync.Mutex
	recs []OutboxRecord
	sent map[int64]bool
	// claims counts concurrent claims (must stay ≤ 1).
	claiming, maxClaiming int
	published             int // claims that published something
}

func (o *memOutbox) ClaimOutbox(ctx context.Context, limit int, publish PublishFunc) (int, error) {
	o.mu.Lock()
	o.claiming++
	o.maxClaiming = max(o.maxClaiming, o.claiming)
	var batch []OutboxRecord
	for _, r := range o.recs {
		if !o.sent[r.Seq] && len(batch) < limit {
			batch = append(batch, r)
		}
	}
	o.mu.Unlock()
	defer func() { o.mu.Lock(); o.claiming--; o.mu.Unlock() }()
	if len(batch) == 0 {
		return 0, nil
	}
	acked, err := publish(ctx, batch)
	o.mu.Lock()
	o.published++
	for _, s := range acked {
		o.sent[s] = true
	}
	o.mu.Unlock()
	return len(batch), err
}

func (o *memOutbox) OutboxBacklog(context.Context) (int64, time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	var oldest time.Time
	for _, r := range o.recs {
		if !o.sent[r.Seq] {
			n++
			if oldest.IsZero() {
				oldest = r.CreatedAt
			}
		}
	}
	return n, oldest, nil
}

func (o *memOutbox) PurgeOutbox(context.Context, time.Time) error { return nil }

func (o *memOutbox) add(t *testing.T, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 0; i < n; i++ {
		seq := int64(len(o.recs) + 1)
		e := mustEvent(t, MessageSent, fmt.Sprintf("c%d", seq%7), MessageSentPayload{MessageID: fmt.Sprint(seq), Seq: seq, Kind: KindText})
		r, err := NewOutboxRecord(e)
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = seq
		o.recs = append(o.recs, r)
	}
}

// runRelay builds a relay and runs it until the test ends.
func runRelay(t *testing.T, cfg RelayConfig) *Relay {
	t.Helper()
	relay, err := NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(ctx, time.Second) }()
	t.Cleanup(func() { stop(); <-done })
	return relay
}

// A lingering relay publishes the commits of a few milliseconds in one
// pass instead of one pass per wake.
func TestRelayLingersForMoreCommits(t *testing.T) {
	_, producer := topicsAndProducer(t)
	out := &memOutbox{sent: map[int64]bool{}}
	relay := runRelay(t, RelayConfig{Store: "test", Outbox: out, Producer: producer, Poll: time.Hour, Linger: 80 * time.Millisecond})
	for range 5 { // five commits 5 ms apart, each waking the relay
		out.add(t, 1)
		relay.Wake()
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "the five records published", func() bool {
		n, _, _ := out.OutboxBacklog(context.Background())
		return n == 0
	})
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.published > 2 {
		t.Fatalf("five commits 5 ms apart took %d publishing passes; a relay lingering 80 ms takes them in one", out.published)
	}
}

// slowOutbox is a store whose claims take a while, as a busy store's do.
type slowOutbox struct {
	*memOutbox
	pass time.Duration
}

func (o slowOutbox) ClaimOutbox(ctx context.Context, limit int, publish PublishFunc) (int, error) {
	time.Sleep(o.pass)
	return o.memOutbox.ClaimOutbox(ctx, limit, publish)
}

// A relay that has fallen behind runs only full passes; its backlog and
// lag gauges must show it then, not only once it has caught up.
func TestRelayReportsItsBacklogWhileBehind(t *testing.T) {
	_, producer := topicsAndProducer(t)
	mem := &memOutbox{sent: map[int64]bool{}}
	mem.add(t, 4000)
	relay := runRelay(t, RelayConfig{Store: "test", Outbox: slowOutbox{mem, 20 * time.Millisecond}, Producer: producer, Batch: 100, Poll: time.Hour})
	gauge := func(g *prometheus.GaugeVec) float64 {
		var m dto.Metric
		if err := g.WithLabelValues("test").Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	waitFor(t, 10*time.Second, "the backlog gauge to show the records still waiting", func() bool {
		pending, _, _ := mem.OutboxBacklog(context.Background())
		if pending == 0 {
			t.Fatal("the relay caught up before its backlog gauge showed anything")
		}
		return gauge(relay.backlog) > 0 && gauge(relay.lag) > 0
	})
	waitFor(t, 30*time.Second, "the backlog gauge back to zero once caught up", func() bool {
		return gauge(relay.backlog) == 0 && gauge(relay.lag) == 0
	})
}

// A relay stopped in the middle of publishing (SIGTERM under load) must
// neither lose nor duplicate: the batch in flight completes and is marked,
// the final flush publishes the rest once.
func TestRelayStopsWithoutDuplicatesOrLoss(t *testing.T) {
	ctx := context.Background()
	brokers, producer := topicsAndProducer(t)
	out := &memOutbox{sent: map[int64]bool{}}
	relay, err := NewRelay(RelayConfig{Store: "test", Outbox: out, Producer: producer, Batch: 200, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const total = 6000
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(runCtx, 10*time.Second) }()
	for i := 0; i < total/500; i++ {
		out.add(t, 500)
		relay.Wake()
		if i == total/1000 {
			stop() // shutdown while batches are in flight
		}
	}
	<-done
	// What the first run's flush did not publish, a second start does.
	if err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := out.OutboxBacklog(ctx); n != 0 {
		t.Fatalf("%d records left unsent", n)
	}
	if out.maxClaiming > 1 {
		t.Fatalf("%d claims ran at once", out.maxClaiming)
	}
	counts, perKey := readChatTopic(t, brokers, 3)
	if len(counts) != total {
		t.Fatalf("%d distinct events on the topic, want %d", len(counts), total)
	}
	for id, n := range counts {
		if n != 1 {
			t.Fatalf("event %s published %d times", id, n)
		}
	}
	for key, seqs := range perKey {
		if !slices.IsSorted(seqs) {
			t.Fatalf("key %s out of order", key)
		}
	}
}

// A relay that died after Kafka acknowledged a batch and before marking
// it sent (SIGKILL) leaves records that are on Kafka but unsent; the next
// relay finds them there and publishes only the rest.
func TestRelayAfterACrashDoesNotPublishAgain(t *testing.T) {
	ctx := context.Background()
	brokers, producer := topicsAndProducer(t)
	out := &memOutbox{sent: map[int64]bool{}}
	out.add(t, 1500)
	// The crashed relay: Kafka took the first 700, none was marked sent.
	if _, err := producer.PublishOutbox(ctx, out.recs[:700]); err != nil {
		t.Fatal(err)
	}
	relay, err := NewRelay(RelayConfig{Store: "test", Outbox: out, Producer: producer, Batch: 500})
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := out.OutboxBacklog(ctx); n != 0 {
		t.Fatalf("%d records left unsent", n)
	}
	var found dto.Metric
	if err := relay.found.WithLabelValues("test").Write(&found); err != nil || found.GetCounter().GetValue() != 700 {
		t.Fatalf("parley_outbox_found_on_kafka_total = %v (%v), want 700", found.GetCounter().GetValue(), err)
	}
	// Later passes publish without looking: the relay knows where it stands.
	out.add(t, 100)
	if err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	counts, perKey := readChatTopic(t, brokers, 3)
	if len(counts) != 1600 {
		t.Fatalf("%d distinct events on the topic, want 1600", len(counts))
	}
	for id, n := range counts {
		if n != 1 {
			t.Fatalf("event %s published %d times", id, n)
		}
	}
	for key, seqs := range perKey {
		if !slices.IsSorted(seqs) {
			t.Fatalf("key %s out of order: %v", key, seqs)
		}
	}
}

// readChatTopic counts each event id on the chat topic and lists each
// conversation's message seqs in topic order.
func readChatTopic(t *testing.T, brokers []string, partitions int) (map[string]int, map[string][]int64) {
	t.Helper()
	ctx := context.Background()
	counts := map[string]int{}
	perKey := map[string][]int64{}
	for p := 0; p < partitions; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: TopicChat, Partition: p, MaxWait: 50 * time.Millisecond})
		hw, err := r.ReadLag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < hw; i++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e, err := Decode(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			var pl MessageSentPayload
			_ = e.Into(&pl)
			counts[e.ID]++
			perKey[e.ConversationID] = append(perKey[e.ConversationID], pl.Seq)
		}
		r.Close()
	}
	return counts, perKey
}

// topicsAndProducer starts an embedded broker with Parley's topics (3 partitions)
// and a producer on it, both closed when the test ends.
func topicsAndProducer(t *testing.T) ([]string, *Producer) {
	t.Helper()
	brokers := brokerWithTopics(t, 3)
	return brokers, producerOn(t, ProducerConfig{Brokers: brokers})
}

// brokerWithTopics starts an embedded broker with Parley's topics of the
// given partitions, closed when the test ends, and returns its addresses.
func brokerWithTopics(t *testing.T, partitions int) []string {
	t.Helper()
	broker := startBroker(t, t.TempDir())
	t.Cleanup(func() { broker.Close() })
	if err := EnsureTopics(context.Background(), broker.Addrs(), DefaultTopics(partitions, 0)); err != nil {
		t.Fatal(err)
	}
	return broker.Addrs()
}

// producerOn builds a producer closed when the test ends.
func producerOn(t *testing.T, cfg ProducerConfig) *Producer {
	t.Helper()
	producer := NewProducer(cfg)
	t.Cleanup(func() { producer.Close() })
	return producer
}
