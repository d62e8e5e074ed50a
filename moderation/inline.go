package moderation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// InlineConfig configures an InlineChecker; zero values take the defaults.
type InlineConfig struct {
	// PolicyTTL is how long a site's compiled policy is cached before it
	// is re-read, so that edits saved by another process apply (30 s).
	PolicyTTL  time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// InlineChecker is what a chat node needs from moderation: the inline
// check of a visitor's message before delivery, with the site's policy
// from the store (compiled and cached for PolicyTTL) and this process's
// flood counts, and the bans. It reads a RuleStore and runs no workers,
// so a chat node can use it while moderation runs in another process on
// the same PostgreSQL. A Service has one (Service.Inline).
type InlineChecker struct {
	rules   RuleStore
	ttl     time.Duration
	def     *Engine
	flood   *memFlood
	domains DomainSightings // link domains each site has seen (in memory)
	metrics *inlineMetrics
	log     *slog.Logger

	mu      sync.Mutex
	engines map[string]cachedEngine
}

type cachedEngine struct {
	engine *Engine
	at     time.Time
}

// NewInlineChecker compiles the default policy and returns a checker
// over rules.
func NewInlineChecker(rules RuleStore, cfg InlineConfig) (*InlineChecker, error) {
	if rules == nil {
		return nil, errors.New("moderation: inline checker needs a store")
	}
	if cfg.PolicyTTL <= 0 {
		cfg.PolicyTTL = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def, err := NewEngine(DefaultPolicy())
	if err != nil {
		return nil, fmt.Errorf("moderation: default policy: %w", err)
	}
	return &InlineChecker{
		rules: rules, ttl: cfg.PolicyTTL, def: def, flood: newMemFlood(), domains: newMemDomains(),
		metrics: newInlineMetrics(cfg.Registerer), log: cfg.Logger.With("component", "moderation"),
		engines: map[string]cachedEngine{},
	}, nil
}

// CheckInline judges a message before delivery with the site's policy:
// lists, regexes, PII, links, spam signs and this process's view of the
// visitor's message rate. It never fails: when the site's policy cannot be
// loaded the default policy judges.
func (c *InlineChecker) CheckInline(ctx context.Context, siteID, visitorID, text string) Verdict {
	start := time.Now()
	e := c.engineFor(ctx, siteID)
	v := newDomainSpam(c.domains, e, siteID, text, e.Check(text), start)
	if spans := c.flood.observe(siteID, visitorID, text, start, e.policy.Flood); len(spans) > 0 {
		v = e.Combine(text, v, spans...)
	}
	c.metrics.seconds.Observe(time.Since(start).Seconds())
	c.metrics.checks.WithLabelValues("inline", v.Action).Inc()
	return v
}

// Banned reports whether a visitor is banned from a site, and until when.
// A store that cannot answer lets the visitor through (and is logged):
// chat stays up when moderation's store is down.
func (c *InlineChecker) Banned(ctx context.Context, siteID, visitorID string) (until time.Time, banned bool) {
	b, err := c.rules.Ban(ctx, siteID, visitorID)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.log.Error("ban lookup failed; letting the visitor through", "site", siteID, "visitor", visitorID, "err", err)
		}
		return time.Time{}, false
	}
	return b.Until, b.Until.After(time.Now())
}

// Ready reports whether the store answers.
func (c *InlineChecker) Ready(ctx context.Context) error { return c.rules.Ping(ctx) }

// engineFor returns the site's compiled policy, cached for PolicyTTL.
// It must not be called inside Store.Update: on SQLite the transaction
// holds the only connection.
func (c *InlineChecker) engineFor(ctx context.Context, siteID string) *Engine {
	c.mu.Lock()
	ce, ok := c.engines[siteID]
	c.mu.Unlock()
	if ok && time.Since(ce.at) < c.ttl {
		return ce.engine
	}
	e, err := c.loadEngine(ctx, siteID)
	if err != nil {
		c.log.Error("site policy unusable; judging with the default policy", "site", siteID, "err", err)
		e = c.def
	}
	c.remember(siteID, e, time.Now())
	return e
}

// remember caches a site's compiled policy as of at.
func (c *InlineChecker) remember(siteID string, e *Engine, at time.Time) {
	c.mu.Lock()
	c.engines[siteID] = cachedEngine{engine: e, at: at}
	c.mu.Unlock()
}

func (c *InlineChecker) loadEngine(ctx context.Context, siteID string) (*Engine, error) {
	p, stored, err := sitePolicy(ctx, c.rules, siteID)
	if err != nil {
		return nil, err
	}
	if !stored {
		return c.def, nil
	}
	return NewEngine(p)
}

// sitePolicy returns the site's saved policy or the default one.
func sitePolicy(ctx context.Context, rules RuleStore, siteID string) (Policy, bool, error) {
	sp, err := rules.Policy(ctx, siteID)
	if errors.Is(err, ErrNotFound) {
		return DefaultPolicy(), false, nil
	}
	if err != nil {
		return Policy{}, false, err
	}
	p, err := ParsePolicy(sp.Doc)
	if err != nil {
		return Policy{}, false, fmt.Errorf("stored policy of %s: %w", siteID, err)
	}
	return p, true, nil
}
