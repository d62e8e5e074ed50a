package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// Egress is the operator's outbound-address policy: CheckURL refuses a URL
// whose host is (or resolves to) an internal address the operator did not
// allow; Client's connections are checked the same way after DNS, and it
// never follows redirects.
type Egress interface {
	CheckURL(ctx context.Context, raw string) error
	Client(timeout time.Duration) *http.Client
}

// Sites says whether a site exists (chat owns sites).
type Sites interface {
	SiteExists(id string) bool
}

// RetryPolicy is when a failed delivery is tried again: after Initial,
// doubling each time up to Max, until GiveUpAfter has passed since the
// event was queued; then the delivery is dead.
type RetryPolicy struct {
	Initial, Max, GiveUpAfter time.Duration
}

// DefaultRetry retries for a day: 10 s, 20 s, 40 s ... then hourly.
var DefaultRetry = RetryPolicy{Initial: 10 * time.Second, Max: time.Hour, GiveUpAfter: 24 * time.Hour}

// after returns the wait before the attempt following attempts failures.
func (p RetryPolicy) after(attempts int) time.Duration {
	d := p.Initial
	for i := 1; i < attempts && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Config holds the webhooks component's dependencies; zero values take defaults.
type Config struct {
	Store Store
	// Brokers is where the consumer reads; empty disables consuming (the
	// API and dispatcher still run).
	Brokers []string
	// DeadLetter receives events the consumer cannot use.
	DeadLetter *ingest.Producer
	Guard      *access.Guard
	Egress     Egress
	Sites      Sites
	Retry      RetryPolicy
	// Concurrency is how many deliveries are in flight at once (default 16).
	Concurrency int
	// Timeout bounds one delivery's HTTP exchange (default 10 s).
	Timeout time.Duration
	// Poll is how often the dispatcher looks for due retries (default 500 ms).
	Poll time.Duration
	// GroupID is the consumer group (default parley-webhooks).
	GroupID    string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Service is the webhooks component: admin API, consumer and dispatcher.
type Service struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	client  *http.Client
	kick    chan struct{}
	started chan struct{}
	once    sync.Once

	endpointsMu sync.Mutex
	endpoints   map[string]cachedEndpoint

	outcomes *prometheus.CounterVec
	latency  prometheus.Histogram
	enqueued prometheus.Counter
}

type cachedEndpoint struct {
	e  Endpoint
	at time.Time
}

// New checks cfg and builds the component.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Guard == nil || cfg.Egress == nil {
		return nil, errors.New("webhooks: Store, Guard and Egress are required")
	}
	if len(cfg.Brokers) > 0 && cfg.DeadLetter == nil {
		return nil, errors.New("webhooks: a DeadLetter producer is required to consume")
	}
	if cfg.Retry == (RetryPolicy{}) {
		cfg.Retry = DefaultRetry
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.GroupID == "" {
		cfg.GroupID = "parley-webhooks"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, client: cfg.Egress.Client(cfg.Timeout),
		kick: make(chan struct{}, 1), started: make(chan struct{}), endpoints: map[string]cachedEndpoint{},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_webhook_attempts_total", Help: "Webhook delivery attempts by outcome (delivered, retry, dead).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_webhook_attempt_seconds", Help: "Duration of one webhook delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_webhook_deliveries_queued_total", Help: "Webhook deliveries queued by the consumer.",
		}),
	}
	if r := cfg.Registerer; r != nil {
		for _, c := range []prometheus.Collector{s.outcomes, s.latency, s.enqueued} {
			if err := r.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Run consumes events and dispatches deliveries until ctx ends, then lets
// deliveries in flight finish (each bounded by the timeout).
func (s *Service) Run(ctx context.Context) error {
	first := false
	s.once.Do(func() { first = true })
	if !first {
		return errors.New("webhooks: Run called twice")
	}
	close(s.started)
	var wg sync.WaitGroup
	if len(s.cfg.Brokers) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.consume(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.dispatch(ctx) }()
	wg.Wait()
	return nil
}

// Ready reports whether the store answers and the loops run.
func (s *Service) Ready(ctx context.Context) error {
	select {
	case <-s.started:
	default:
		return errors.New("webhooks not running yet")
	}
	return s.store.Ping(ctx)
}

// wake tells the dispatcher that deliveries were queued; it never blocks.
func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// endpoint returns an endpoint, cached for a second so a busy lane does
// not read it per delivery; changes made through the API drop the cache.
func (s *Service) endpoint(ctx context.Context, id string) (Endpoint, error) {
	s.endpointsMu.Lock()
	c, ok := s.endpoints[id]
	s.endpointsMu.Unlock()
	if ok && time.Since(c.at) < time.Second {
		return c.e, nil
	}
	e, err := s.store.Endpoint(ctx, id)
	if err != nil {
		return Endpoint{}, err
	}
	s.endpointsMu.Lock()
	s.endpoints[id] = cachedEndpoint{e: e, at: time.Now()}
	s.endpointsMu.Unlock()
	return e, nil
}

func (s *Service) forget(id string) {
	s.endpointsMu.Lock()
	delete(s.endpoints, id)
	s.endpointsMu.Unlock()
}
