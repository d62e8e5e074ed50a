package moderation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
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
	// firstLoads makes the senders of a site whose policy is not cached
	// yet wait for one load and compile instead of each doing their own.
	firstLoads singleflight.Group
}

type cachedEngine struct {
	engine *Engine
	at     time.Time // when the store was last read for it
	// version is the stored policy's UpdatedAt (zero for the default
	// policy): a re-read that finds the same version keeps the engine.
	version    time.Time
	refreshing bool // one caller is re-reading; the others use engine
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
// When the cached copy is older, one caller re-reads the stored policy
// while the others go on with the cached engine, and the engine is
// compiled again only when the policy changed: compiling takes hundreds
// of milliseconds of CPU, and every sender on the site recompiling at
// once each PolicyTTL stalled the chat for all of them. A store that
// cannot be read keeps the last engine (the default policy when there is
// none). It must not be called inside Store.Update: on SQLite the
// transaction holds the only connection.
func (c *InlineChecker) engineFor(ctx context.Context, siteID string) *Engine {
	now := time.Now()
	c.mu.Lock()
	ce, ok := c.engines[siteID]
	if ok && (now.Sub(ce.at) < c.ttl || ce.refreshing) {
		c.mu.Unlock()
		return ce.engine
	}
	if ok {
		ce.refreshing = true
		c.engines[siteID] = ce
	}
	c.mu.Unlock()
	if !ok {
		got, _, _ := c.firstLoads.Do(siteID, func() (any, error) {
			return c.refresh(ctx, siteID, ce, ok), nil
		})
		return got.(*Engine)
	}
	return c.refresh(ctx, siteID, ce, ok)
}

// refresh reads and, when it changed, compiles the site's policy, and
// caches the result; ce is what was cached before, when ok.
func (c *InlineChecker) refresh(ctx context.Context, siteID string, ce cachedEngine, ok bool) *Engine {
	e, version, err := c.loadEngine(ctx, siteID, ce)
	if err != nil {
		c.log.Error("site policy unusable; judging with the last policy that was", "site", siteID, "err", err)
		e, version = c.def, time.Time{}
		if ok {
			e, version = ce.engine, ce.version
		}
	}
	c.remember(siteID, e, version)
	return e
}

// remember caches a site's compiled policy, stored at version (the
// policy's UpdatedAt; zero for the default policy).
func (c *InlineChecker) remember(siteID string, e *Engine, version time.Time) {
	c.mu.Lock()
	c.engines[siteID] = cachedEngine{engine: e, at: time.Now(), version: version}
	c.mu.Unlock()
}

// loadEngine reads the site's policy and compiles it, unless it is the
// version prev already holds.
func (c *InlineChecker) loadEngine(ctx context.Context, siteID string, prev cachedEngine) (*Engine, time.Time, error) {
	sp, err := c.rules.Policy(ctx, siteID)
	if errors.Is(err, ErrNotFound) {
		return c.def, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	if prev.engine != nil && !prev.version.IsZero() && prev.version.Equal(sp.UpdatedAt) {
		return prev.engine, prev.version, nil
	}
	p, err := ParsePolicy(sp.Doc)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("stored policy of %s: %w", siteID, err)
	}
	e, err := NewEngine(p)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("compile policy of %s: %w", siteID, err)
	}
	return e, sp.UpdatedAt, nil
}
