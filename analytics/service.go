package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// Config wires the analytics service. Store and Guard are required;
// without Brokers the service only answers queries (no loader).
type Config struct {
	Store      Store
	Guard      *access.Guard
	Brokers    []string
	DeadLetter *ingest.Producer
	Schedules  Schedules
	// BatchSize and BatchWait tune the loader (defaults 10000 and 1 s; serve uses ~200 ms).
	BatchSize     int
	BatchWait     time.Duration
	MissThreshold time.Duration
	// OverviewEvery is the live push period; default 2 s.
	OverviewEvery time.Duration
	// QueryTimeout bounds one query; default 30 s.
	QueryTimeout time.Duration
	// MaxQueries bounds concurrent heavy queries; default 4.
	MaxQueries int
	// MaxLive bounds live WebSocket connections; default 64.
	MaxLive int
	// AllowedOrigins are extra origins allowed to open /ws/analytics
	// besides the server's own host.
	AllowedOrigins []string
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

// Service is the analytics domain as cmd/parley runs it.
type Service struct {
	cfg       Config
	ctx       context.Context
	loader    *Loader
	log       *slog.Logger
	sem       chan struct{}
	liveConns atomic.Int64
}

// New builds the service; ctx bounds live WebSocket pushes (cancel it on shutdown).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("analytics: no store")
	}
	if cfg.Guard == nil {
		return nil, errors.New("analytics: no access guard")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OverviewEvery <= 0 {
		cfg.OverviewEvery = 2 * time.Second
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	if cfg.MaxQueries <= 0 {
		cfg.MaxQueries = 4
	}
	if cfg.MaxLive <= 0 {
		cfg.MaxLive = 64
	}
	s := &Service{cfg: cfg, ctx: ctx, log: cfg.Logger.With("component", "analytics"), sem: make(chan struct{}, cfg.MaxQueries)}
	if len(cfg.Brokers) > 0 {
		l, err := NewLoader(LoaderConfig{
			Store: cfg.Store, Brokers: cfg.Brokers, DeadLetter: cfg.DeadLetter, BatchSize: cfg.BatchSize,
			BatchWait: cfg.BatchWait, Schedules: cfg.Schedules, MissThreshold: cfg.MissThreshold,
			Logger: cfg.Logger, Registerer: cfg.Registerer,
		})
		if err != nil {
			return nil, err
		}
		s.loader = l
	}
	return s, nil
}

// Loader returns the service's loader (nil without brokers).
func (s *Service) Loader() *Loader { return s.loader }

// Run runs the loader until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	if s.loader == nil {
		<-ctx.Done()
		return nil
	}
	if err := s.loader.Run(ctx); err != nil {
		return fmt.Errorf("analytics loader: %w", err)
	}
	return nil
}

// Ready reports the store and, with a loader, whether it is paused.
func (s *Service) Ready(ctx context.Context) error {
	if s.loader != nil {
		return s.loader.Ready(ctx)
	}
	return s.cfg.Store.Ping(ctx)
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
