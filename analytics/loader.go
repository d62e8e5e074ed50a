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
	// Staff vouches for the staff ids events name; required.
	Staff StaffDirectory
	// GroupID defaults to LoaderGroup.
	GroupID string
	// BatchSize caps rows per insert; default 10000.
	BatchSize int
	// BatchWait is how long a batch keeps filling after its first event; default 1 s.
	BatchWait time.Duration
	// StoreTimeout bounds the store work of one batch (reads and inserts);
	// a batch that takes longer fails and is retried. Default 20 s.
	StoreTimeout time.Duration
	// StallAfter: a batch still in the store after this long makes Ready
	// fail (the store hangs); default 5 s.
	StallAfter time.Duration
	// HoldFor is how long events of a site without a profile are held
	// before they are dead-lettered; default 15 min.
	HoldFor time.Duration
	// SweepEvery is the period of the maintenance loop (held events,
	// recomputing sites whose profile changed); default 2 s.
	SweepEvery time.Duration
	// RecomputeDelay: a site's facts are recomputed once its profile has
	// been stable this long (so that other loader processes use it too);
	// default 5 s.
	RecomputeDelay time.Duration
	// LagEvery is how often consumer lag is read from the broker; default 5 s.
	LagEvery time.Duration
	// CacheEvents caps the stored events kept decoded in memory so that
	// batches need not read recent conversations back; default 100000,
	// negative = no cache.
	CacheEvents int
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Loader consumes chat and moderation events into a Store. A batch's
// offsets are committed only after its rows are durable; a failed batch is
// retried whole, with backoff, and the loader reports itself paused. A
// maintenance loop releases held events once their site is known,
// dead-letters them after HoldFor, and recomputes the facts of sites whose
// profile changed.
type Loader struct {
	cfg      LoaderConfig
	apply    *applier
	valid    *validator
	consumer *ingest.Consumer
	log      *slog.Logger

	batches   *prometheus.CounterVec
	rows      prometheus.Counter
	failures  prometheus.Counter
	rejected  prometheus.Counter
	held      prometheus.Counter
	freshness prometheus.Histogram
	pausedG   prometheus.Gauge

	// applyMu serialises the applier between batches and maintenance.
	applyMu sync.Mutex

	mu          sync.Mutex
	paused      bool
	lastErr     error
	lastBatch   time.Time
	inFlight    time.Time // start of the batch in the store (zero = none)
	loadedRows  int64
	newest      int64 // occurred_at (ms) of the newest event visible in facts
	recomputing string
	noticed     map[string]noticedRev // site → first time its current Rev was seen unrecomputed

	// afterApply runs after a batch is durable and before it is committed
	// (tests use it to crash the loader in between).
	afterApply func(ctx context.Context, batch []ingest.Record) error
}

type noticedRev struct {
	rev int64
	at  time.Time
}

// LoaderStatus is what /readyz and the pipeline endpoint show.
type LoaderStatus struct {
	Paused      bool      `json:"paused"`
	LastError   string    `json:"last_error,omitempty"`
	LastBatchAt time.Time `json:"last_batch_at"`
	// FreshnessMs is the age of the newest event visible in reports (now −
	// its occurred_at); 0 until this loader made an event visible.
	FreshnessMs int64 `json:"freshness_ms"`
	// NewestEventAt is that event's occurred_at.
	NewestEventAt *time.Time `json:"newest_event_at,omitempty"`
	// Lag is how many records the group has not committed yet, from the
	// broker's end offsets.
	Lag  int64 `json:"lag"`
	Rows int64 `json:"rows"`
	// BatchRunningMs is how long the batch in the store has been running.
	BatchRunningMs int64 `json:"batch_running_ms,omitempty"`
	// Recomputing names the site whose facts are being recomputed.
	Recomputing string `json:"recomputing,omitempty"`
}

// NewLoader validates cfg and builds a loader.
func NewLoader(cfg LoaderConfig) (*Loader, error) {
	if cfg.Store == nil {
		return nil, errors.New("analytics loader: no store")
	}
	if cfg.Staff == nil {
		return nil, errors.New("analytics loader: no staff directory")
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
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 20 * time.Second
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = 5 * time.Second
	}
	if cfg.HoldFor <= 0 {
		cfg.HoldFor = 15 * time.Minute
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 2 * time.Second
	}
	if cfg.RecomputeDelay <= 0 {
		cfg.RecomputeDelay = 5 * time.Second
	}
	if cfg.CacheEvents == 0 {
		cfg.CacheEvents = defaultCacheEvents
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	consumer, err := ingest.NewConsumer(ingest.ConsumerConfig{
		Brokers: cfg.Brokers, GroupID: cfg.GroupID, Topics: []string{ingest.TopicChat, ingest.TopicModeration},
		BatchSize: cfg.BatchSize, BatchWait: cfg.BatchWait, DeadLetter: cfg.DeadLetter, LagEvery: cfg.LagEvery,
		Registerer: cfg.Registerer, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("analytics loader: %w", err)
	}
	l := &Loader{
		cfg:      cfg,
		consumer: consumer,
		log:      cfg.Logger.With("component", "analytics-loader"),
		apply:    newApplier(cfg.Store, cfg.Logger, cfg.CacheEvents),
		valid:    newValidator(cfg.Staff, cfg.Store),
		noticed:  map[string]noticedRev{},
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
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_analytics_held_total", Help: "Events held because their site had no profile yet.",
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
		for _, c := range []prometheus.Collector{l.batches, l.rows, l.failures, l.rejected, l.held, l.freshness, l.pausedG} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("analytics loader: register metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Run loads until ctx is cancelled, then finishes and commits the batch in
// hand and returns nil. The maintenance loop runs alongside.
func (l *Loader) Run(ctx context.Context) error {
	l.log.Info("analytics loader started", "store", l.cfg.Store.Backend(), "batch_size", l.cfg.BatchSize, "batch_wait", l.cfg.BatchWait)
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.maintain(mctx)
	}()
	defer func() { stop(); <-done }()
	return l.consumer.Run(ctx, l.handle)
}

func (l *Loader) lockApply() func() {
	l.applyMu.Lock()
	return l.applyMu.Unlock
}

func (l *Loader) handle(ctx context.Context, batch []ingest.Record) ([]ingest.Reject, error) {
	start := time.Now()
	l.mu.Lock()
	l.inFlight = start
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.inFlight = time.Time{}
		l.mu.Unlock()
	}()
	sctx, cancel := context.WithTimeout(ctx, l.cfg.StoreTimeout)
	defer cancel()
	good, rejects, err := l.valid.validate(sctx, batch)
	var st applyStats
	if err == nil {
		events := make([]ingest.Event, len(good))
		origins := make(map[string]ingest.Record, len(good))
		for i, r := range good {
			events[i] = r.Event
			origins[r.Event.ID] = r
		}
		unlock := l.lockApply()
		st, err = l.apply.applyRecords(sctx, events, origins)
		newest := l.apply.newest
		unlock()
		l.mu.Lock()
		l.newest = max(l.newest, newest)
		l.mu.Unlock()
		if err == nil && l.afterApply != nil {
			err = l.afterApply(ctx, batch)
		}
	}
	if err != nil {
		if ctx.Err() == nil && (sctx.Err() != nil || time.Since(start) >= l.cfg.StoreTimeout) {
			err = fmt.Errorf("%w: the store did not finish the batch within %s: %v", ErrUnavailable, l.cfg.StoreTimeout, err)
		}
		l.fail(err)
		return nil, err
	}
	now := time.Now()
	for _, r := range good {
		if buildsFacts(r.Event) {
			l.freshness.Observe(now.Sub(r.Event.OccurredAt.Time).Seconds())
		}
	}
	l.batches.WithLabelValues("ok").Inc()
	l.rows.Add(float64(st.Inserted))
	l.rejected.Add(float64(len(rejects)))
	l.held.Add(float64(st.Held))
	l.pausedG.Set(0)
	l.mu.Lock()
	if l.paused {
		l.log.Info("analytics store is back; loader resumed")
	}
	l.paused, l.lastErr, l.lastBatch = false, nil, now
	l.loadedRows += int64(st.Inserted)
	l.mu.Unlock()
	return rejects, nil
}

func (l *Loader) fail(err error) {
	l.batches.WithLabelValues("failed").Inc()
	l.failures.Inc()
	l.pausedG.Set(1)
	l.mu.Lock()
	l.paused, l.lastErr = true, err
	l.mu.Unlock()
}

// Status returns the loader's state.
func (l *Loader) Status() LoaderStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	s := LoaderStatus{Paused: l.paused, LastBatchAt: l.lastBatch, Lag: l.consumer.Lag(), Rows: l.loadedRows, Recomputing: l.recomputing}
	if l.newest > 0 {
		t := time.UnixMilli(l.newest).UTC()
		s.NewestEventAt = &t
		s.FreshnessMs = max(0, now.UnixMilli()-l.newest)
	}
	if !l.inFlight.IsZero() {
		s.BatchRunningMs = now.Sub(l.inFlight).Milliseconds()
	}
	if l.lastErr != nil {
		s.LastError = l.lastErr.Error()
	}
	return s
}

// Ready fails while the store is unreachable, the loader is paused, or a
// batch has been in the store longer than StallAfter.
func (l *Loader) Ready(ctx context.Context) error {
	if err := l.cfg.Store.Ping(ctx); err != nil {
		return fmt.Errorf("analytics store: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused {
		return fmt.Errorf("analytics loader paused, retrying: %v", l.lastErr)
	}
	if !l.inFlight.IsZero() {
		if d := time.Since(l.inFlight); d > l.cfg.StallAfter {
			return fmt.Errorf("analytics store has not finished a batch for %s", d.Round(time.Second))
		}
	}
	return nil
}
