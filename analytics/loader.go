package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/ingest"
)

// LoaderGroup is the consumer group of the analytics loader.
const LoaderGroup = "parley-analytics"

// LoaderConfig configures a Loader; zero values take the defaults.
type LoaderConfig struct {
	Store   Store
	Brokers []string
	// DeadLetter receives events that cannot be loaded, with the reason.
	DeadLetter *ingest.Producer
	// GroupID defaults to LoaderGroup.
	GroupID string
	// BatchSize caps rows per insert; default 10000.
	BatchSize int
	// BatchWait is how long a batch keeps filling after its first event; default 1 s.
	BatchWait time.Duration
	// CacheEvents caps the stored events kept decoded in memory so that
	// batches need not read recent conversations back; default 100000,
	// negative = no cache.
	CacheEvents int
	// Schedules gives sites' business hours; nil = always business time.
	Schedules     Schedules
	MissThreshold time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// Loader consumes chat and moderation events into a Store. A batch's
// offsets are committed only after its rows are durable; a failed batch is
// retried whole, with backoff, and the loader reports itself paused.
type Loader struct {
	cfg      LoaderConfig
	apply    *applier
	consumer *ingest.Consumer
	log      *slog.Logger

	batches   *prometheus.CounterVec
	rows      prometheus.Counter
	failures  prometheus.Counter
	rejected  prometheus.Counter
	freshness prometheus.Histogram
	pausedG   prometheus.Gauge

	mu         sync.Mutex
	paused     bool
	lastErr    error
	lastBatch  time.Time
	lastFresh  time.Duration
	loadedRows int64

	// afterApply runs after a batch is durable and before it is committed
	// (tests use it to crash the loader in between).
	afterApply func(ctx context.Context, batch []ingest.Record) error
}

// LoaderStatus is what /readyz and the pipeline endpoint show.
type LoaderStatus struct {
	Paused      bool      `json:"paused"`
	LastError   string    `json:"last_error,omitempty"`
	LastBatchAt time.Time `json:"last_batch_at"`
	// FreshnessMs is now − occurred_at of the newest event of the last batch, at load.
	FreshnessMs int64 `json:"freshness_ms"`
	Lag         int64 `json:"lag"`
	Rows        int64 `json:"rows"`
}

// NewLoader validates cfg and builds a loader.
func NewLoader(cfg LoaderConfig) (*Loader, error) {
	if cfg.Store == nil {
		return nil, errors.New("analytics loader: no store")
	}
	if cfg.GroupID == "" {
		cfg.GroupID = LoaderGroup
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 10000
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = time.Second
	}
	if cfg.CacheEvents == 0 {
		cfg.CacheEvents = defaultCacheEvents
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	consumer, err := ingest.NewConsumer(ingest.ConsumerConfig{
		Brokers: cfg.Brokers, GroupID: cfg.GroupID, Topics: []string{ingest.TopicChat, ingest.TopicModeration},
		BatchSize: cfg.BatchSize, BatchWait: cfg.BatchWait, DeadLetter: cfg.DeadLetter,
		Registerer: cfg.Registerer, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("analytics loader: %w", err)
	}
	l := &Loader{
		cfg:      cfg,
		consumer: consumer,
		log:      cfg.Logger.With("component", "analytics-loader"),
		apply: &applier{store: cfg.Store, schedules: cfg.Schedules, log: cfg.Logger, cache: newConvCache(cfg.CacheEvents),
			facts: FactsConfig{MissThreshold: cfg.MissThreshold}},
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_analytics_batches_total", Help: "Analytics loader batches by outcome (ok, failed).",
		}, []string{"outcome"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_analytics_rows_total", Help: "New events written to the analytics store.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_analytics_store_failures_total", Help: "Batches the analytics store failed to take.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_analytics_rejected_total", Help: "Events the loader dead-lettered.",
		}),
		freshness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_analytics_freshness_seconds", Help: "Event time to queryable: now − occurred_at when the event's batch became durable.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		pausedG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_analytics_loader_paused", Help: "1 while the analytics store refuses batches and the loader retries.",
		}),
	}
	if r := cfg.Registerer; r != nil {
		for _, c := range []prometheus.Collector{l.batches, l.rows, l.failures, l.rejected, l.freshness, l.pausedG} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("analytics loader: register metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Run loads until ctx is cancelled, then finishes and commits the batch in
// hand and returns nil.
func (l *Loader) Run(ctx context.Context) error {
	l.log.Info("analytics loader started", "store", l.cfg.Store.Backend(), "batch_size", l.cfg.BatchSize, "batch_wait", l.cfg.BatchWait)
	return l.consumer.Run(ctx, l.handle)
}

func (l *Loader) handle(ctx context.Context, batch []ingest.Record) ([]ingest.Reject, error) {
	events := make([]ingest.Event, 0, len(batch))
	var rejects []ingest.Reject
	for _, r := range batch {
		if reason := check(r.Event); reason != "" {
			rejects = append(rejects, ingest.Reject{Record: r, Reason: "analytics: " + reason})
			continue
		}
		events = append(events, r.Event)
	}
	st, err := l.apply.apply(ctx, events)
	if err == nil && l.afterApply != nil {
		err = l.afterApply(ctx, batch)
	}
	if err != nil {
		l.batches.WithLabelValues("failed").Inc()
		l.failures.Inc()
		l.pausedG.Set(1)
		l.mu.Lock()
		l.paused, l.lastErr = true, err
		l.mu.Unlock()
		return nil, err
	}
	now := time.Now()
	var newest time.Time
	for _, e := range events {
		l.freshness.Observe(now.Sub(e.OccurredAt.Time).Seconds())
		if e.OccurredAt.After(newest) {
			newest = e.OccurredAt.Time
		}
	}
	l.batches.WithLabelValues("ok").Inc()
	l.rows.Add(float64(st.Inserted))
	l.rejected.Add(float64(len(rejects)))
	l.pausedG.Set(0)
	l.mu.Lock()
	if l.paused {
		l.log.Info("analytics store is back; loader resumed")
	}
	l.paused, l.lastErr, l.lastBatch = false, nil, now
	l.loadedRows += int64(st.Inserted)
	if !newest.IsZero() {
		l.lastFresh = now.Sub(newest)
	}
	l.mu.Unlock()
	return rejects, nil
}

// Status returns the loader's state.
func (l *Loader) Status() LoaderStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LoaderStatus{Paused: l.paused, LastBatchAt: l.lastBatch, FreshnessMs: l.lastFresh.Milliseconds(),
		Lag: l.consumer.Lag(), Rows: l.loadedRows}
	if l.lastErr != nil {
		s.LastError = l.lastErr.Error()
	}
	return s
}

// Ready fails while the store is unreachable or the loader is paused.
func (l *Loader) Ready(ctx context.Context) error {
	if err := l.cfg.Store.Ping(ctx); err != nil {
		return fmt.Errorf("analytics store: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused {
		return fmt.Errorf("analytics loader paused, retrying: %v", l.lastErr)
	}
	return nil
}
