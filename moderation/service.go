package moderation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// ConsumerGroup is the Kafka consumer group of the moderation workers.
const ConsumerGroup = "parley-moderation"

// Config holds what a Service needs; zero values take the defaults.
type Config struct {
	// Store keeps moderation's state (OpenSQLite or OpenPostgres).
	Store Store
	// Producer publishes the outbox and dead letters; needed by Run.
	Producer *ingest.Producer
	// Brokers are the Kafka brokers the workers consume from; needed by Run.
	Brokers []string
	// Guard protects the API; needed by Mount.
	Guard      *access.Guard
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// ClaimTTL is how long a moderator's claim on an item lasts (10 min).
	ClaimTTL time.Duration
	// Classifier overrides the HTTP classifier a policy names (tests,
	// in-process models). Used only when the site's policy sets a URL.
	Classifier Classifier
	// Domains remembers the link domains each site has seen, for the
	// workers (in memory per process when nil).
	Domains DomainSightings
	// BatchSize and BatchWait tune the worker's consumer.
	BatchSize int
	BatchWait time.Duration
	// RelayInterval is how often the outbox relay looks for rows it was
	// not told about (1 s); commits wake it at once.
	RelayInterval time.Duration
	// PolicyTTL is how long a site's compiled policy is cached before it
	// is re-read, so that edits made by another process apply (30 s).
	PolicyTTL time.Duration
}

// Service is the moderation domain: inline checks, workers, review queue.
type Service struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	metrics *metrics
	inline  *InlineChecker
	relay   *ingest.Relay
	remote  classifiers // HTTP classifiers by URL
	// link domains each site has seen, as the workers judge them (the
	// inline checker keeps its own, so both judge a message alike)
	workerDomains DomainSightings
}

// NewService builds the service on a migrated store.
func NewService(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("moderation: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = 10 * time.Minute
	}
	if cfg.RelayInterval <= 0 {
		cfg.RelayInterval = time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 20 * time.Millisecond
	}
	inline, err := NewInlineChecker(cfg.Store, InlineConfig{PolicyTTL: cfg.PolicyTTL, Logger: cfg.Logger, Registerer: cfg.Registerer})
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, store: cfg.Store, log: cfg.Logger.With("component", "moderation"),
		metrics: newMetrics(cfg.Registerer), inline: inline, workerDomains: cfg.Domains,
	}
	if s.workerDomains == nil {
		s.workerDomains = newMemDomains()
	}
	if cfg.Producer != nil {
		if s.relay, err = ingest.NewRelay(ingest.RelayConfig{
			Store: "moderation", Outbox: cfg.Store, Producer: cfg.Producer, Batch: 500,
			Poll: cfg.RelayInterval, Registerer: cfg.Registerer, Logger: s.log,
		}); err != nil {
			return nil, fmt.Errorf("moderation: %w", err)
		}
	}
	if err := s.refreshGauges(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Inline returns the service's inline checker, for a chat role in the
// same process.
func (s *Service) Inline() *InlineChecker { return s.inline }

// CheckInline judges a message before delivery (InlineChecker.CheckInline).
func (s *Service) CheckInline(ctx context.Context, siteID, visitorID, text string) Verdict {
	return s.inline.CheckInline(ctx, siteID, visitorID, text)
}

// Banned reports whether a visitor is banned from a site, and until when.
func (s *Service) Banned(ctx context.Context, siteID, visitorID string) (until time.Time, banned bool) {
	return s.inline.Banned(ctx, siteID, visitorID)
}

// engineFor returns the site's compiled policy, cached for PolicyTTL. It
// must not be called inside Store.Update.
func (s *Service) engineFor(ctx context.Context, siteID string) *Engine {
	return s.inline.engineFor(ctx, siteID)
}

// classifierFor returns the classifier a policy asks for, if any.
func (s *Service) classifierFor(p Policy) Classifier {
	if p.Classifier.URL == "" {
		return nil
	}
	if s.cfg.Classifier != nil {
		return s.cfg.Classifier
	}
	return s.remote.get(p.Classifier)
}

// wake tells the relay that the outbox has new rows.
func (s *Service) wake() {
	if s.relay != nil {
		s.relay.Wake()
	}
}

// Run runs the workers (the consumer group on chat events), the outbox
// relay and housekeeping until ctx is cancelled, then returns nil once the
// batch in hand is committed and the outbox flushed as far as possible.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Producer == nil || len(s.cfg.Brokers) == 0 {
		return errors.New("moderation: Run needs a producer and brokers")
	}
	consumer, err := ingest.NewConsumer(ingest.ConsumerConfig{
		Brokers: s.cfg.Brokers, GroupID: ConsumerGroup, Topics: []string{ingest.TopicChat},
		BatchSize: s.cfg.BatchSize, BatchWait: s.cfg.BatchWait, DeadLetter: s.cfg.Producer,
		Registerer: s.cfg.Registerer, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("moderation: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context) error{
		func(ctx context.Context) error { return consumer.Run(ctx, s.handle) },
		func(ctx context.Context) error { s.relay.Run(ctx, 5*time.Second); return nil },
		s.housekeeping,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when every loop stopped cleanly
}

// housekeeping refreshes the gauges and prunes old worker state.
func (s *Service) housekeeping(ctx context.Context) error {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.refreshGauges(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("refresh moderation gauges", "err", err)
		}
		if err := s.prune(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("prune moderation state", "err", err)
		}
	}
}

func (s *Service) refreshGauges(ctx context.Context) error {
	open, err := s.store.OpenItems(ctx)
	if err != nil {
		return fmt.Errorf("moderation backlog: %w", err)
	}
	s.metrics.backlog.Set(float64(open))
	return nil
}

// Retention of worker state; sent outbox rows are the relay's to purge.
const (
	floodRetention     = time.Hour
	processedRetention = 30 * 24 * time.Hour
	contextRetention   = 30 * 24 * time.Hour
)

func (s *Service) prune(ctx context.Context, now time.Time) error {
	return s.store.Prune(ctx, PruneCutoffs{
		Flood:     now.Add(-floodRetention),
		Processed: now.Add(-processedRetention),
		Context:   now.Add(-contextRetention),
	})
}
