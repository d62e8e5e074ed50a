package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// Config wires the analytics service. Guard and either Store or Open are
// required; without Brokers the service only answers queries (no loader).
type Config struct {
	// Store is an open store (the caller closes it).
	Store Store
	// Open opens the store instead (the service closes it): Run retries it
	// with backoff until it succeeds, so an analytics store that is down
	// at start delays only analytics. StoreName names it meanwhile.
	Open      func(ctx context.Context) (Store, error)
	StoreName string
	Guard     *access.Guard
	Brokers   []string
	// DeadLetter receives events the loader cannot use.
	DeadLetter *ingest.Producer
	// BatchSize and BatchWait tune the loader (defaults 10000 and 1 s; serve uses ~200 ms).
	BatchSize int
	BatchWait time.Duration
	// StoreTimeout bounds one loader batch's store work; default 20 s.
	StoreTimeout time.Duration
	// HoldFor is how long events of unknown sites are held; default 15 min.
	HoldFor time.Duration
	// OverviewEvery is the live push period; default 2 s.
	OverviewEvery time.Duration
	// QueryTimeout bounds one query; default 30 s.
	QueryTimeout time.Duration
	// MaxQueries bounds concurrent heavy queries; default 4.
	MaxQueries int
	// MaxLive bounds live WebSocket connections; default 64.
	MaxLive int
	// StaffRecheck is how often a live socket's session is looked up
	// again, a backstop for a session end this node was not told about;
	// default 15 s.
	StaffRecheck time.Duration
	// AllowedOrigins are extra origins allowed to open /ws/analytics
	// besides the server's own host.
	AllowedOrigins []string
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	// loaderHook is passed to the loader (tests).
	loaderConfig func(*LoaderConfig)
}

// Service is the analytics domain as cmd/parley runs it.
type Service struct {
	cfg       Config
	ctx       context.Context
	log       *slog.Logger
	sem       chan struct{}
	liveConns atomic.Int64
	liveSocks liveSockets

	mu       sync.Mutex
	store    Store
	owned    bool // opened by Open: Close closes it
	openErr  error
	attempts int
	loader   *Loader
	closed   bool
}

// New builds the service; ctx bounds live WebSocket pushes (cancel it on shutdown).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil && cfg.Open == nil {
		return nil, errors.New("analytics: no store")
	}
	if cfg.Guard == nil {
		return nil, errors.New("analytics: no access guard")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StoreName == "" {
		cfg.StoreName = "analytics store"
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
	if cfg.StaffRecheck <= 0 {
		cfg.StaffRecheck = 15 * time.Second
	}
	if cfg.MaxLive <= 0 {
		cfg.MaxLive = 64
	}
	s := &Service{cfg: cfg, ctx: ctx, log: cfg.Logger.With("component", "analytics"), sem: make(chan struct{}, cfg.MaxQueries)}
	if cfg.Store != nil {
		if err := s.attach(cfg.Store, false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// attach makes st the service's store and builds the loader.
func (s *Service) attach(st Store, owned bool) error {
	var l *Loader
	if len(s.cfg.Brokers) > 0 {
		lc := LoaderConfig{
			Store: st, Brokers: s.cfg.Brokers, DeadLetter: s.cfg.DeadLetter, Staff: s.cfg.Guard.Directory(),
			BatchSize: s.cfg.BatchSize, BatchWait: s.cfg.BatchWait, StoreTimeout: s.cfg.StoreTimeout, HoldFor: s.cfg.HoldFor,
			Logger: s.cfg.Logger, Registerer: s.cfg.Registerer,
		}
		if s.cfg.loaderConfig != nil {
			s.cfg.loaderConfig(&lc)
		}
		var err error
		if l, err = NewLoader(lc); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store, s.owned, s.loader, s.openErr = st, owned, l, nil
	return nil
}

// currentStore returns the store, or nil while it is being opened.
func (s *Service) currentStore() Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store
}

// Loader returns the service's loader (nil without brokers, or while the
// store is being opened).
func (s *Service) Loader() *Loader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loader
}

// Run opens the store if needed (retrying), then runs the loader until
// ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	if s.currentStore() == nil {
		if !s.connect(ctx) {
			return nil
		}
	}
	l := s.Loader()
	if l == nil {
		<-ctx.Done()
		return nil
	}
	if err := l.Run(ctx); err != nil {
		return fmt.Errorf("analytics loader: %w", err)
	}
	return nil
}

// openTimeout bounds one attempt to open the store (connect, create the
// database, migrate).
const openTimeout = time.Minute

// connect retries Open with backoff (1 s doubling to 30 s) until it
// succeeds (true) or ctx ends (false). Failures are logged when they
// start and then every few attempts, not each time.
func (s *Service) connect(ctx context.Context) bool {
	backoff := time.Second
	for {
		actx, cancel := context.WithTimeout(ctx, openTimeout)
		st, err := s.cfg.Open(actx)
		cancel()
		if err == nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				st.Close()
				return false
			}
			if err := s.attach(st, true); err != nil {
				st.Close()
				err = fmt.Errorf("start the loader on %s: %w", s.cfg.StoreName, err)
				s.noteOpenError(err)
				s.log.Error("analytics store opened but the loader cannot start", "err", err)
				return false
			}
			s.log.Info("analytics store connected", "store", st.Backend(), "attempts", s.attemptCount())
			return true
		}
		n := s.noteOpenError(err)
		if ctx.Err() != nil {
			return false
		}
		if n == 1 || n%10 == 0 {
			s.log.Warn("analytics store unavailable; analytics waits, the other roles run", "store", s.cfg.StoreName, "attempt", n, "retry_in", backoff, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (s *Service) noteOpenError(err error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	s.openErr = err
	return s.attempts
}

func (s *Service) attemptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// notConnected explains why there is no store yet.
func (s *Service) notConnected() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openErr == nil {
		return fmt.Errorf("%w: connecting to %s", ErrUnavailable, s.cfg.StoreName)
	}
	return fmt.Errorf("%w: %s not connected (attempt %d): %v", ErrUnavailable, s.cfg.StoreName, s.attempts, s.openErr)
}

// Ready reports the store and, with a loader, whether it is paused.
func (s *Service) Ready(ctx context.Context) error {
	st := s.currentStore()
	if st == nil {
		return s.notConnected()
	}
	if l := s.Loader(); l != nil {
		return l.Ready(ctx)
	}
	return st.Ping(ctx)
}

// Close closes the store the service opened (not one it was given).
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.owned && s.store != nil {
		return s.store.Close()
	}
	return nil
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
