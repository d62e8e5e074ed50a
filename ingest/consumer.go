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

// Record is one decoded event with where it came from.
type Record struct {
	Event     Event
	Topic     string
	Partition int
	Offset    int64
}

// Reject is an event a handler cannot use; it goes to the dead-letter
// topic with the reason and the rest of the batch is committed.
type Reject struct {
	Record Record
	Reason string
}

// Handler makes a batch's effect durable. Returning an error retries the
// whole batch (with backoff) without committing; handlers must therefore be
// idempotent by event id. Rejected records are dead-lettered.
type Handler func(ctx context.Context, batch []Record) ([]Reject, error)

// ConsumerConfig configures a Consumer; zero values take the defaults.
type ConsumerConfig struct {
	Brokers []string
	GroupID string
	Topics  []string
	// BatchSize caps the records handed to the handler at once.
	BatchSize int
	// BatchWait is how long to keep filling a batch after its first record.
	BatchWait time.Duration
	// FetchMinBytes lets the broker hold a fetch (for up to about 190 ms)
	// until that much is ready, for consumers that can wait: fewer, larger
	// fetches instead of one for every few records, on every partition.
	// Zero: answer as soon as one record is ready.
	FetchMinBytes int
	// DeadLetter publishes poison events; required.
	DeadLetter *Producer
	// LagEvery is how often Run reads the group's lag from the broker
	// (GroupLag); default 5 s.
	LagEvery   time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// PatientFetch is the FetchMinBytes of consumers whose effect may wait a
// fifth of a second (notifications, webhooks): at 1,000 msg/s each of
// their fetches then carries about 30 KiB per partition instead of one or
// two records, which spares the broker, the client and the handler's
// transactions most of their per-fetch work.
const PatientFetch = 64 << 10

// Consumer runs a Handler over a consumer group and commits offsets only
// after the handler's effect is durable.
type Consumer struct {
	cfg    ConsumerConfig
	reader *kafka.Reader
	log    *slog.Logger

	consumed     *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	batchSeconds *prometheus.HistogramVec
	lagGauge     *prometheus.GaugeVec
	retries      *prometheus.CounterVec

	mu  sync.Mutex
	lag int64 // records the group has not committed, as GroupLag last read it
}

// NewConsumer validates cfg and builds a consumer; it joins the group when Run starts.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("consumer: no brokers")
	}
	if cfg.GroupID == "" {
		return nil, errors.New("consumer: empty group id")
	}
	if len(cfg.Topics) == 0 {
		return nil, errors.New("consumer: no topics")
	}
	if cfg.DeadLetter == nil {
		return nil, errors.New("consumer: no dead-letter producer")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 100 * time.Millisecond
	}
	if cfg.LagEvery <= 0 {
		cfg.LagEvery = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Consumer{
		cfg: cfg,
		log: cfg.Logger.With("group", cfg.GroupID),
		reader: kafka.NewReader(kafka.ReaderConfig{
			Brokers:        cfg.Brokers,
			GroupID:        cfg.GroupID,
			GroupTopics:    cfg.Topics,
			MinBytes:       max(cfg.FetchMinBytes, 1),
			MaxBytes:       16 << 20,
			MaxWait:        250 * time.Millisecond,
			StartOffset:    kafka.FirstOffset,
			CommitInterval: 0, // synchronous commits: we commit only after the effect is durable
			QueueCapacity:  cfg.BatchSize,
			ReadBackoffMin: 50 * time.Millisecond,
			ReadBackoffMax: 500 * time.Millisecond,
		}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_events_consumed_total", Help: "Events handled and committed, by consumer group.",
		}, []string{"group"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_events_dead_lettered_total", Help: "Events sent to the dead-letter topic, by consumer group.",
		}, []string{"group"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "parley_consumer_batch_seconds", Help: "Time to handle and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"group"}),
		lagGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_consumer_lag", Help: "Records the consumer group has not committed yet (broker end offsets − committed offsets).",
		}, []string{"group"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_consumer_retries_total", Help: "Batches retried after a handler error.",
		}, []string{"group"}),
	}
	if r := cfg.Registerer; r != nil {
		registerOrReuse(r, c.consumed, &c.consumed)
		registerOrReuse(r, c.deadLettered, &c.deadLettered)
		registerOrReuse(r, c.batchSeconds, &c.batchSeconds)
		registerOrReuse(r, c.lagGauge, &c.lagGauge)
		registerOrReuse(r, c.retries, &c.retries)
	}
	return c, nil
}

// Lag returns the records the group has not committed yet, as last read
// from the broker (every LagEvery while Run runs).
func (c *Consumer) Lag() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lag
}

// watchLag reads the group's lag from the broker every LagEvery until ctx
// ends. A failed read keeps the last value (the broker being down shows
// elsewhere) and is logged at debug level.
func (c *Consumer) watchLag(ctx context.Context) {
	tick := time.NewTicker(c.cfg.LagEvery)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.LagEvery)
		lag, err := GroupLag(rctx, c.cfg.Brokers, c.cfg.GroupID, c.cfg.Topics)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.lag = lag
			c.mu.Unlock()
			c.lagGauge.WithLabelValues(c.cfg.GroupID).Set(float64(lag))
		} else if ctx.Err() == nil {
			c.log.Debug("read consumer lag", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Run consumes until ctx is cancelled, then finishes the batch in hand,
// commits it, leaves the group and returns nil. Any other return is a
// failure to talk to the broker that outlived the reader's own retries.
//
// The next batch is fetched and decoded while the handler works on the
// current one, so decoding overlaps the handler's I/O; offsets are still
// committed one batch at a time, in order, after the handler returned. A
// batch fetched ahead when Run stops is not committed and is read again
// by the next consumer.
func (c *Consumer) Run(ctx context.Context, handle Handler) error {
	defer c.reader.Close()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); c.watchLag(lagCtx) }()
	defer func() { stopLag(); <-lagDone }()
	fetchCtx, stopFetching := context.WithCancel(ctx)
	ahead := make(chan decodedBatch, 1)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(ahead)
		for {
			msgs, err := c.fetchBatch(fetchCtx)
			if len(msgs) == 0 {
				if err != nil && fetchCtx.Err() == nil {
					fetchErr <- fmt.Errorf("consumer %s: fetch: %w", c.cfg.GroupID, err)
					return
				}
				if fetchCtx.Err() != nil {
					return
				}
				continue
			}
			select {
			case ahead <- c.decode(msgs):
			case <-fetchCtx.Done():
				return
			}
		}
	}()
	defer func() {
		stopFetching()
		for range ahead { // let the fetcher exit before the reader closes
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-fetchErr:
			return err
		case b, ok := <-ahead:
			if !ok {
				select {
				case err := <-fetchErr:
					return err
				default:
					return nil
				}
			}
			// The batch in hand is finished even when stopping, so that its
			// offsets are committed and nothing is handled twice needlessly.
			if err := c.process(context.WithoutCancel(ctx), ctx, b, handle); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// decodedBatch is one fetched batch, decoded, with its poison apart.
type decodedBatch struct {
	msgs          []kafka.Message
	records       []Record
	poison        []kafka.Message
	poisonReasons []string
}

func (c *Consumer) decode(msgs []kafka.Message) decodedBatch {
	b := decodedBatch{msgs: msgs, records: make([]Record, 0, len(msgs))}
	for _, m := range msgs {
		e, err := recentDecodes.decode(m.Value)
		if err != nil {
			b.poison = append(b.poison, m)
			b.poisonReasons = append(b.poisonReasons, err.Error())
			continue
		}
		b.records = append(b.records, Record{Event: e, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
	}
	return b
}

// fetchBatch blocks for the first message, then gathers more for up to
// BatchWait or until BatchSize.
func (c *Consumer) fetchBatch(ctx context.Context) ([]kafka.Message, error) {
	first, err := c.reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []kafka.Message{first}
	fill, cancel := context.WithTimeout(ctx, c.cfg.BatchWait)
	defer cancel()
	for len(msgs) < c.cfg.BatchSize {
		m, err := c.reader.FetchMessage(fill)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// process hands a decoded batch to the handler until it succeeds,
// dead-letters the poison and commits. work outlives stop so the batch in
// hand completes; stop ends the retry loop.
func (c *Consumer) process(work, stop context.Context, b decodedBatch, handle Handler) error {
	start := time.Now()
	msgs, records, poison, poisonReasons := b.msgs, b.records, b.poison, b.poisonReasons
	var rejects []Reject
	if len(records) > 0 {
		backoff := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			var err error
			rejects, err = handle(work, records)
			if err == nil {
				break
			}
			c.retries.WithLabelValues(c.cfg.GroupID).Inc()
			c.log.Warn("batch failed; retrying without committing", "records", len(records), "attempt", attempt, "err", err)
			select {
			case <-stop.Done():
				return fmt.Errorf("consumer %s: stopped while retrying: %w", c.cfg.GroupID, err)
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
	for i, m := range poison {
		if err := c.deadLetter(work, m, poisonReasons[i]); err != nil {
			return err
		}
	}
	for _, r := range rejects {
		m := msgs[0]
		for _, candidate := range msgs {
			if candidate.Partition == r.Record.Partition && candidate.Offset == r.Record.Offset && candidate.Topic == r.Record.Topic {
				m = candidate
			}
		}
		if err := c.deadLetter(work, m, r.Reason); err != nil {
			return err
		}
	}
	if err := c.commit(work, stop, msgs); err != nil {
		return err
	}
	c.consumed.WithLabelValues(c.cfg.GroupID).Add(float64(len(records) - len(rejects)))
	c.batchSeconds.WithLabelValues(c.cfg.GroupID).Observe(time.Since(start).Seconds())
	return nil
}

func (c *Consumer) commit(work, stop context.Context, msgs []kafka.Message) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.reader.CommitMessages(work, msgs...)
		if err == nil {
			return nil
		}
		c.log.Warn("commit failed; retrying", "err", err)
		select {
		case <-stop.Done():
			return fmt.Errorf("consumer %s: commit: %w", c.cfg.GroupID, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Consumer) deadLetter(ctx context.Context, m kafka.Message, reason string) error {
	c.log.Warn("dead-lettering event", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "reason", reason)
	dl, err := NewDeadLetter(m, c.cfg.GroupID, reason)
	if err != nil {
		return err
	}
	if err := c.cfg.DeadLetter.publishRaw(ctx, []kafka.Message{dl}); err != nil {
		return fmt.Errorf("dead-letter %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	c.deadLettered.WithLabelValues(c.cfg.GroupID).Inc()
	return nil
}
