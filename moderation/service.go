package moderation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// ConsumerGroup is the Kafka consumer group of the moderation workers.
const ConsumerGroup = "parley-moderation"

// Config holds what a Service needs; zero values take the defaults.
type Config struct {
	// DB is moderation.db (sqlstore.Open).
	DB *sql.DB
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
	db      *sql.DB
	log     *slog.Logger
	metrics *metrics
	flood   *memFlood
	def     *Engine
	kick    chan struct{}

	mu      sync.Mutex
	engines map[string]cachedEngine
}

type cachedEngine struct {
	engine *Engine
	at     time.Time
}

// NewService migrates moderation.db and compiles the default policy.
func NewService(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("moderation: no database")
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
	if cfg.PolicyTTL <= 0 {
		cfg.PolicyTTL = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 20 * time.Millisecond
	}
	if err := sqlstore.Migrate(ctx, cfg.DB, "moderation", migrations); err != nil {
		return nil, fmt.Errorf("moderation: %w", err)
	}
	def, err := NewEngine(DefaultPolicy())
	if err != nil {
		return nil, fmt.Errorf("moderation: default policy: %w", err)
	}
	s := &Service{
		cfg: cfg, db: cfg.DB, log: cfg.Logger.With("component", "moderation"),
		metrics: newMetrics(cfg.Registerer), flood: newMemFlood(), def: def,
		kick: make(chan struct{}, 1), engines: map[string]cachedEngine{},
	}
	if err := s.refreshGauges(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Ready reports whether moderation.db answers.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("moderation db: %w", err)
	}
	return nil
}

// CheckInline judges a message before delivery with the site's policy:
// lists, regexes, PII, links, spam signs and this process's view of the
// visitor's message rate. It never fails: when the site's policy cannot be
// loaded the default policy judges.
func (s *Service) CheckInline(ctx context.Context, siteID, visitorID, text string) Verdict {
	start := time.Now()
	e := s.engineFor(ctx, siteID)
	v := e.Check(text)
	if spans := s.flood.observe(siteID, visitorID, text, start, e.policy.Flood); len(spans) > 0 {
		v = e.Combine(text, v, spans...)
	}
	s.metrics.inlineSeconds.Observe(time.Since(start).Seconds())
	s.metrics.checks.WithLabelValues("inline", v.Action).Inc()
	return v
}

// Banned reports whether a visitor is banned from a site, and until when.
func (s *Service) Banned(ctx context.Context, siteID, visitorID string) (until time.Time, banned bool) {
	var u int64
	err := s.db.QueryRowContext(ctx, `SELECT until_ms FROM mod_bans WHERE site_id = ? AND visitor_id = ?`, siteID, visitorID).Scan(&u)
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			s.log.Error("ban lookup failed; letting the visitor through", "site", siteID, "visitor", visitorID, "err", err)
		}
		return time.Time{}, false
	}
	until = fromMS(u)
	return until, until.After(time.Now())
}

// engineFor returns the site's compiled policy, cached for PolicyTTL.
// It must not be called inside a transaction on the single-connection
// database.
func (s *Service) engineFor(ctx context.Context, siteID string) *Engine {
	s.mu.Lock()
	c, ok := s.engines[siteID]
	s.mu.Unlock()
	if ok && time.Since(c.at) < s.cfg.PolicyTTL {
		return c.engine
	}
	e, err := s.loadEngine(ctx, siteID)
	if err != nil {
		s.log.Error("site policy unusable; judging with the default policy", "site", siteID, "err", err)
		e = s.def
	}
	s.mu.Lock()
	s.engines[siteID] = cachedEngine{engine: e, at: time.Now()}
	s.mu.Unlock()
	return e
}

func (s *Service) loadEngine(ctx context.Context, siteID string) (*Engine, error) {
	p, stored, err := s.sitePolicy(ctx, siteID)
	if err != nil {
		return nil, err
	}
	if !stored {
		return s.def, nil
	}
	return NewEngine(p)
}

// sitePolicy returns the site's saved policy or the default one.
func (s *Service) sitePolicy(ctx context.Context, siteID string) (Policy, bool, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, `SELECT doc FROM mod_policies WHERE site_id = ?`, siteID).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultPolicy(), false, nil
	}
	if err != nil {
		return Policy{}, false, fmt.Errorf("load policy of %s: %w", siteID, err)
	}
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		return Policy{}, false, fmt.Errorf("stored policy of %s: %w", siteID, err)
	}
	return p, true, nil
}

func (s *Service) forgetEngine(siteID string) {
	s.mu.Lock()
	delete(s.engines, siteID)
	s.mu.Unlock()
}

// classifierFor returns the classifier a policy asks for, if any.
func (s *Service) classifierFor(p Policy) Classifier {
	if p.Classifier.URL == "" {
		return nil
	}
	if s.cfg.Classifier != nil {
		return s.cfg.Classifier
	}
	return &HTTPClassifier{URL: p.Classifier.URL}
}

// wake tells the relay that the outbox has new rows.
func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
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
		s.relay,
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
	var open, pending int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_items WHERE status = 'open'`).Scan(&open); err != nil {
		return fmt.Errorf("count backlog: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_outbox WHERE sent_at IS NULL`).Scan(&pending); err != nil {
		return fmt.Errorf("count outbox: %w", err)
	}
	s.metrics.backlog.Set(float64(open))
	s.metrics.outboxPending.Set(float64(pending))
	return nil
}

// Retention of worker state.
const (
	floodRetention     = time.Hour
	processedRetention = 30 * 24 * time.Hour
	contextRetention   = 30 * 24 * time.Hour
	sentRetention      = 24 * time.Hour
)

func (s *Service) prune(ctx context.Context, now time.Time) error {
	for _, q := range []struct {
		sql    string
		before time.Duration
	}{
		{`DELETE FROM mod_flood WHERE at < ?`, floodRetention},
		{`DELETE FROM mod_processed WHERE at < ?`, processedRetention},
		{`DELETE FROM mod_context WHERE at < ?`, contextRetention},
		{`DELETE FROM mod_outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, sentRetention},
	} {
		if _, err := s.db.ExecContext(ctx, q.sql, ms(now.Add(-q.before))); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}
