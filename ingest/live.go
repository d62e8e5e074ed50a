package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// TopicLive carries what chat nodes tell each other live: frames for
// sockets on other nodes, typing and receipts, presence, and commands that
// must reach every node. It is not part of the event contract: nothing is
// durable there (an hour's retention) and no consumer group reads it;
// every node reads every partition from where it joined.
const TopicLive = "parley.live.v1"

// LiveTopic is the spec Parley creates for TopicLive.
func LiveTopic(partitions int) TopicSpec {
	return TopicSpec{Name: TopicLive, Partitions: partitions, Retention: time.Hour}
}

// LiveBusConfig configures a LiveBus.
type LiveBusConfig struct {
	Brokers []string
	// Node names this process; a node does not receive its own messages.
	Node       string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// LiveBus broadcasts small messages between the nodes of one deployment
// over TopicLive, as fast as Kafka allows (1 ms batches, one
// acknowledgement) and at most once: a message published while a node is
// down or restarting is not delivered to it. Callers that need more keep
// the state durable elsewhere (the stores) and use the bus only to tell.
type LiveBus struct {
	cfg LiveBusConfig
	w   *kafka.Writer
	log *slog.Logger

	sent, received, failed prometheus.Counter
	latency                prometheus.Histogram
}

// NewLiveBus builds a bus; Subscribe starts reading.
func NewLiveBus(cfg LiveBusConfig) (*LiveBus, error) {
	if len(cfg.Brokers) == 0 || cfg.Node == "" {
		return nil, errors.New("live bus needs brokers and a node name")
	}
	// Two processes given one node name still hear each other.
	cfg.Node += "#" + NewID()[24:]
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &LiveBus{cfg: cfg, log: cfg.Logger.With("bus", TopicLive),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_live_sent_total", Help: "Messages this node published on the live bus."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_live_received_total",
			Help: "Messages from other nodes this node read from the live bus."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_live_send_failures_total",
			Help: "Live bus publishes Kafka did not take (the message is not delivered)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_live_latency_seconds",
			Help: "Time from publish on another node to receipt on this one.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if reg := cfg.Registerer; reg != nil {
		registerOrReuse(reg, b.sent, &b.sent)
		registerOrReuse(reg, b.received, &b.received)
		registerOrReuse(reg, b.failed, &b.failed)
		registerOrReuse(reg, b.latency, &b.latency)
	}
	b.w = &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...), Topic: TopicLive, Balancer: &kafka.Hash{},
		// BatchSize 100 rather than more: kafka-go allocates room for a
		// whole batch with each one it starts (see ProducerConfig.BatchSize),
		// and a millisecond's batch holds a few frames.
		RequiredAcks: kafka.RequireOne, BatchTimeout: time.Millisecond, BatchSize: 100, BatchBytes: maxRequestBytes,
		Async: true, MaxAttempts: 3,
		Completion: func(msgs []kafka.Message, err error) {
			if err != nil {
				b.failed.Add(float64(len(msgs)))
				b.log.Warn("live bus publish failed", "messages", len(msgs), "err", err)
			}
		},
	}
	return b, nil
}

// Publish sends value to every other node; key keeps one subject's
// messages in order (a conversation id, say). It does not wait for Kafka.
func (b *LiveBus) Publish(ctx context.Context, key string, value []byte) error {
	err := b.w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: value, Headers: []kafka.Header{
		{Key: "node", Value: []byte(b.cfg.Node)},
		{Key: "at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	}})
	if err != nil {
		b.failed.Inc()
		return fmt.Errorf("live bus: %w", err)
	}
	b.sent.Inc()
	return nil
}

// Subscribe calls handle with every message other nodes publish from now
// until ctx ends. It reads each partition from its end at the time of the
// call and returns once positioned; done is closed when every reader has
// stopped after ctx ended.
func (b *LiveBus) Subscribe(ctx context.Context, handle func(value []byte)) (done <-chan struct{}, err error) {
	parts, err := kafka.LookupPartitions(ctx, "tcp", b.cfg.Brokers[0], TopicLive)
	if err != nil {
		return nil, fmt.Errorf("live bus: partitions of %s: %w", TopicLive, err)
	}
	// The end of each partition now, explicitly: a reader told "the last
	// offset" resolves it at its first fetch and would skip what was
	// published in between.
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[TopicLive] = append(req.Topics[TopicLive], kafka.LastOffsetOf(p.ID))
	}
	client := &kafka.Client{Addr: kafka.TCP(b.cfg.Brokers...), Timeout: 10 * time.Second}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("live bus: end offsets of %s: %w", TopicLive, err)
	}
	ends := map[int]int64{}
	for _, po := range res.Topics[TopicLive] {
		if po.Error != nil {
			return nil, fmt.Errorf("live bus: end offset of partition %d: %w", po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: b.cfg.Brokers, Topic: TopicLive, Partition: p.ID,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond,
		})
		if err := r.SetOffset(ends[p.ID]); err != nil {
			r.Close()
			return nil, fmt.Errorf("live bus: position partition %d: %w", p.ID, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			b.read(ctx, r, handle)
		}()
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	return stopped, nil
}

func (b *LiveBus) read(ctx context.Context, r *kafka.Reader, handle func([]byte)) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("live bus read failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		var node string
		var at time.Time
		for _, h := range m.Headers {
			switch h.Key {
			case "node":
				node = string(h.Value)
			case "at":
				at, _ = time.Parse(time.RFC3339Nano, string(h.Value))
			}
		}
		if node == b.cfg.Node {
			continue
		}
		if !at.IsZero() {
			b.latency.Observe(time.Since(at).Seconds())
		}
		b.received.Inc()
		handle(m.Value)
	}
}

// Close flushes pending publishes.
func (b *LiveBus) Close() error { return b.w.Close() }
