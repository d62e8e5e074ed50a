package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// OutboxRecord is one encoded event waiting in a store's outbox table,
// written in the same transaction as the state change it reports.
type OutboxRecord struct {
	// Seq orders the outbox: the relay publishes in Seq order.
	Seq       int64
	EventID   string
	Type      Type
	Topic     string
	Key       string
	Value     []byte
	CreatedAt time.Time
}

// NewOutboxRecord encodes e for an outbox table.
func NewOutboxRecord(e Event) (OutboxRecord, error) {
	b, err := e.Encode()
	if err != nil {
		return OutboxRecord{}, err
	}
	return OutboxRecord{EventID: e.ID, Type: e.Type, Topic: TopicFor(e.Type), Key: e.ConversationID, Value: b, CreatedAt: e.OccurredAt.Time}, nil
}

// PublishFunc publishes claimed records and returns the Seq of each one
// Kafka acknowledged (all of them when err is nil).
type PublishFunc func(ctx context.Context, recs []OutboxRecord) (acked []int64, err error)

// Outbox is a store's outbox table as the relay sees it.
type Outbox interface {
	// ClaimOutbox hands the oldest unsent records, at most limit, to
	// publish and marks the acknowledged ones sent. At most one claim runs
	// at a time across every process sharing the store, so two nodes never
	// publish the same record concurrently and a key's events keep their
	// order. It returns how many records it claimed.
	ClaimOutbox(ctx context.Context, limit int, publish PublishFunc) (int, error)
	// OutboxBacklog counts unsent records and gives the oldest one's age.
	OutboxBacklog(ctx context.Context) (pending int64, oldest time.Time, err error)
	// PurgeOutbox deletes records sent before cutoff.
	PurgeOutbox(ctx context.Context, cutoff time.Time) error
}

// RelayConfig configures a Relay; zero values take the defaults.
type RelayConfig struct {
	// Store names the outbox in logs and metrics ("chat", "moderation").
	Store    string
	Outbox   Outbox
	Producer *Producer
	// Batch is the most records one publish carries (default 1000).
	Batch int
	// Poll is how often the relay looks without being woken (default 1 s);
	// it covers rows written by other processes sharing the store.
	Poll time.Duration
	// Linger is how long a woken relay waits before its pass, so that one
	// pass (a read, a publish and the write that marks the records sent)
	// carries the commits of those milliseconds rather than each commit's
	// few records: the marking write takes the store's write lock like
	// every commit does. Zero: pass at once.
	Linger time.Duration
	// KeepSent is how long sent records stay before purging (default 1 h).
	KeepSent   time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Relay publishes an outbox to Kafka in order and marks records sent only
// after Kafka acknowledged them (RequiredAcks = all). A crash in between
// leaves them unsent, so a relay's first pass, and the pass after a failed
// one, first looks on Kafka for the records it claimed and only marks
// those it finds. A record can still reach Kafka twice when another node
// takes over the claim of a node that died mid-publish; it keeps its event
// id and consumers deduplicate.
type Relay struct {
	cfg  RelayConfig
	log  *slog.Logger
	kick chan struct{}

	relayed  *prometheus.CounterVec
	found    *prometheus.CounterVec
	failures *prometheus.CounterVec
	backlog  *prometheus.GaugeVec
	lag      *prometheus.GaugeVec

	// backlogAt is when the backlog was last counted (unix nanoseconds):
	// under steady load a pass follows nearly every commit, and counting
	// after each one cost a query per commit.
	backlogAt atomic.Int64
	// unsure is set while a batch may sit on Kafka without being marked
	// sent: at start, after a failed pass, and while the last check found
	// records there.
	unsure atomic.Bool
}

// backlogEvery is how often a relay that keeps up recounts its backlog.
const backlogEvery = time.Second

// NewRelay builds a relay; Run starts it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Outbox == nil || cfg.Producer == nil {
		return nil, errors.New("outbox relay needs an outbox and a producer")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.KeepSent <= 0 {
		cfg.KeepSent = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Relay{
		cfg: cfg, log: cfg.Logger.With("outbox", cfg.Store), kick: make(chan struct{}, 1),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_outbox_relayed_total", Help: "Outbox events acknowledged by Kafka, by store.",
		}, []string{"store"}),
		found: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_outbox_found_on_kafka_total", Help: "Outbox events found already on Kafka after an interrupted publish and marked sent without publishing them again, by store.",
		}, []string{"store"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_outbox_relay_failures_total", Help: "Relay passes that failed and will be retried, by store.",
		}, []string{"store"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_outbox_backlog", Help: "Outbox events not yet acknowledged by Kafka, by store.",
		}, []string{"store"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_outbox_lag_seconds", Help: "Age of the oldest outbox event not yet acknowledged by Kafka, by store.",
		}, []string{"store"}),
	}
	r.unsure.Store(true)
	if reg := cfg.Registerer; reg != nil {
		registerOrReuse(reg, r.relayed, &r.relayed)
		registerOrReuse(reg, r.found, &r.found)
		registerOrReuse(reg, r.failures, &r.failures)
		registerOrReuse(reg, r.backlog, &r.backlog)
		registerOrReuse(reg, r.lag, &r.lag)
	}
	return r, nil
}

// Wake tells the relay that records were committed; it never blocks.
func (r *Relay) Wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// publishTimeout bounds one publish. A publish is never cancelled by the
// caller's shutdown: Kafka may take a batch whose caller has gone, and the
// records would then be published again by the next pass.
const publishTimeout = 30 * time.Second

// Run relays until ctx ends, then flushes what is left for up to flushFor
// with a fresh deadline. Kafka outages are retried with backoff; the
// records wait in the outbox meanwhile.
func (r *Relay) Run(ctx context.Context, flushFor time.Duration) {
	backoff := 100 * time.Millisecond
	poll := time.NewTimer(0)
	defer poll.Stop()
	purge := time.NewTicker(10 * time.Minute)
	defer purge.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-r.kick:
			if r.cfg.Linger > 0 {
				select {
				case <-ctx.Done():
					break loop
				case <-time.After(r.cfg.Linger):
				}
			}
		case <-poll.C:
		case now := <-purge.C:
			if err := r.cfg.Outbox.PurgeOutbox(ctx, now.Add(-r.cfg.KeepSent)); err != nil && ctx.Err() == nil {
				r.log.Warn("purge sent outbox records", "err", err)
			}
			continue
		}
		for ctx.Err() == nil {
			n, err := r.pass(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break loop
				}
				r.failures.WithLabelValues(r.cfg.Store).Inc()
				r.log.Warn("outbox relay failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-ctx.Done():
					break loop
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			if n < r.cfg.Batch {
				break
			}
		}
		poll.Reset(r.cfg.Poll)
	}
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushFor)
	defer cancel()
	if err := r.Flush(flushCtx); err != nil {
		r.log.Info("outbox left for the next start", "err", err)
	}
}

// Flush relays until the outbox is empty or ctx ends.
func (r *Relay) Flush(ctx context.Context) error {
	for {
		n, err := r.pass(ctx)
		if err != nil {
			return err
		}
		if n < r.cfg.Batch {
			return nil
		}
	}
}

// pass claims and publishes one batch; it returns how many were claimed.
func (r *Relay) pass(ctx context.Context) (int, error) {
	n, err := r.cfg.Outbox.ClaimOutbox(ctx, r.cfg.Batch, func(ctx context.Context, recs []OutboxRecord) ([]int64, error) {
		pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		defer cancel()
		var found []int64
		if r.unsure.Load() {
			var err error
			if found, recs, err = r.skipPublished(pubCtx, recs); err != nil {
				return nil, err
			}
			// The interrupted claim may have reached past this batch.
			r.unsure.Store(len(found) > 0)
		}
		acked, err := r.cfg.Producer.PublishOutbox(pubCtx, recs)
		r.relayed.WithLabelValues(r.cfg.Store).Add(float64(len(acked)))
		return append(found, acked...), err
	})
	if err != nil {
		r.unsure.Store(true)
		return n, fmt.Errorf("relay %s outbox: %w", r.cfg.Store, err)
	}
	r.noteBacklog(ctx, n)
	return n, nil
}

// skipPublished splits recs into the Seqs of those already on Kafka and
// the rest, still to publish.
func (r *Relay) skipPublished(ctx context.Context, recs []OutboxRecord) ([]int64, []OutboxRecord, error) {
	on, err := r.cfg.Producer.AlreadyPublished(ctx, recs, 2*r.cfg.Batch)
	if err != nil {
		return nil, nil, err
	}
	if len(on) == 0 {
		return nil, recs, nil
	}
	found := make([]int64, 0, len(on))
	rest := make([]OutboxRecord, 0, len(recs)-len(on))
	for _, rec := range recs {
		if on[rec.EventID] {
			found = append(found, rec.Seq)
		} else {
			rest = append(rest, rec)
		}
	}
	r.found.WithLabelValues(r.cfg.Store).Add(float64(len(found)))
	r.log.Info("outbox records found on Kafka after an interrupted publish; marked sent without publishing again", "records", len(found))
	return found, rest, nil
}

// noteBacklog updates the backlog gauges after a pass: at once when it
// claimed nothing, otherwise at most once per backlogEvery — also while
// every pass is full, which is when a relay that falls behind needs them.
func (r *Relay) noteBacklog(ctx context.Context, claimed int) {
	if claimed == 0 {
		r.backlog.WithLabelValues(r.cfg.Store).Set(0)
		r.lag.WithLabelValues(r.cfg.Store).Set(0)
		return
	}
	now := time.Now().UnixNano()
	if last := r.backlogAt.Load(); now-last < int64(backlogEvery) || !r.backlogAt.CompareAndSwap(last, now) {
		return
	}
	pending, oldest, err := r.cfg.Outbox.OutboxBacklog(ctx)
	if err != nil {
		return
	}
	r.backlog.WithLabelValues(r.cfg.Store).Set(float64(pending))
	if pending == 0 || oldest.IsZero() {
		r.lag.WithLabelValues(r.cfg.Store).Set(0)
		return
	}
	r.lag.WithLabelValues(r.cfg.Store).Set(time.Since(oldest).Seconds())
}

// PublishOutbox writes outbox records and returns the Seq of each one
// Kafka acknowledged. On a partial failure kafka-go names each message's
// fate, so the acknowledged ones are not published again.
func (p *Producer) PublishOutbox(ctx context.Context, recs []OutboxRecord) ([]int64, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{
			Topic: r.Topic, Key: []byte(r.Key), Value: r.Value,
			Headers: []kafka.Header{{Key: "type", Value: []byte(r.Type)}, {Key: "id", Value: []byte(r.EventID)}},
		}
	}
	err := p.publishRaw(ctx, msgs)
	acked := make([]int64, 0, len(recs))
	if err == nil {
		for _, r := range recs {
			acked = append(acked, r.Seq)
		}
		return acked, nil
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == len(recs) {
		for i, e := range we {
			if e == nil {
				acked = append(acked, recs[i].Seq)
			}
		}
	}
	return acked, fmt.Errorf("%d of %d acknowledged: %w", len(acked), len(recs), err)
}
