package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Producer publishes events to their topics, keyed by conversation id so
// that one conversation stays in order on one partition. Publish returns
// only once every broker replica acknowledged (RequiredAcks = all).
type Producer struct {
	w         *kafka.Writer
	published *prometheus.CounterVec
	failures  prometheus.Counter
}

// ProducerConfig tunes a Producer; zero values take the defaults.
type ProducerConfig struct {
	Brokers []string
	// BatchTimeout bounds how long a partial batch waits; kafka-go's 1 s
	// default would add a second to every synchronous publish.
	BatchTimeout time.Duration
	// BatchSize caps the messages of one produce request per partition
	// (default 100, kafka-go's own). kafka-go allocates room for that many
	// messages with every batch it starts, so a cap of 1,000 cost the relay
	// 150 KB per partition per pass — 45% of the server's allocations at
	// 1,000 msg/s — however few records the pass carried.
	BatchSize  int
	Registerer prometheus.Registerer
}

// maxRequestBytes caps the messages of one produce request per partition.
// Kafka refuses a request above its message.max.bytes (1,048,588 by
// default, the embedded broker's too) as a whole; kafka-go counts only the
// messages, so the cap leaves room for the batch's own framing. A
// conversation's burst all goes to one partition, so this is reached by
// one busy conversation, or by a relay catching up on one partition.
const maxRequestBytes = 1_000_000

// NewProducer builds a producer. It does not dial until the first Publish.
func NewProducer(cfg ProducerConfig) *Producer {
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 2 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	p := &Producer{
		w: &kafka.Writer{
			Addr:            kafka.TCP(cfg.Brokers...),
			Balancer:        &kafka.Hash{},
			RequiredAcks:    kafka.RequireAll,
			BatchTimeout:    cfg.BatchTimeout,
			BatchSize:       cfg.BatchSize,
			BatchBytes:      maxRequestBytes,
			MaxAttempts:     5,
			WriteBackoffMin: 50 * time.Millisecond,
			WriteBackoffMax: 500 * time.Millisecond,
		},
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_events_published_total", Help: "Events acknowledged by Kafka, by topic.",
		}, []string{"topic"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_publish_failures_total", Help: "Publish calls that failed after retries.",
		}),
	}
	if cfg.Registerer != nil {
		registerOrReuse(cfg.Registerer, p.published, &p.published)
		registerOrReuse(cfg.Registerer, p.failures, &p.failures)
	}
	return p
}

// Publish writes events and waits for their acknowledgement.
func (p *Producer) Publish(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		b, err := e.Encode()
		if err != nil {
			return err
		}
		msgs[i] = kafka.Message{
			Topic: TopicFor(e.Type),
			Key:   []byte(e.ConversationID),
			Value: b,
			Headers: []kafka.Header{
				{Key: "type", Value: []byte(e.Type)},
				{Key: "id", Value: []byte(e.ID)},
			},
		}
	}
	return p.publishRaw(ctx, msgs)
}

// publishRaw writes already-encoded messages (the outbox relay and the
// dead-letter path) and waits for their acknowledgement.
func (p *Producer) publishRaw(ctx context.Context, msgs []kafka.Message) error {
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		p.failures.Inc()
		return fmt.Errorf("publish %d messages: %w", len(msgs), err)
	}
	for _, m := range msgs {
		p.published.WithLabelValues(m.Topic).Inc()
	}
	return nil
}

// Close flushes pending writes and closes connections.
func (p *Producer) Close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	return nil
}

// registerOrReuse registers c, or when an identical collector is already
// registered (two components in one process), points dst at that one.
func registerOrReuse[C prometheus.Collector](r prometheus.Registerer, c C, dst *C) {
	if err := r.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				*dst = existing
			}
		}
	}
}
