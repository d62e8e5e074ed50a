package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parleychat/parley/ingest"
)

// applier turns a batch of events into durable rows: raw events not yet
// stored, then the rebuilt facts of every conversation the batch touches.
// Applying the same batch again (a retry after a crash between insert and
// commit) rebuilds the same facts and stores nothing twice.
type applier struct {
	store     Store
	schedules Schedules
	facts     FactsConfig
	log       *slog.Logger

	// cache holds recent conversations' stored events (nil = none).
	cache *convCache
	// cacheHits and storeReads count conversations served by the cache
	// and read back from the store (tests and benchmarks read them).
	cacheHits, storeReads int

	mu     sync.Mutex
	clocks map[string]cachedClock
}

type cachedClock struct {
	c  *clock
	at time.Time
}

// scheduleTTL is how long a site's schedule is cached; a changed schedule
// applies to facts rebuilt after that (replay recomputes old ones).
const scheduleTTL = time.Minute

// applyStats says what one batch did.
type applyStats struct {
	Inserted      int
	Conversations int
}

// earliest and latest are the instants a ClickHouse DateTime partition key can hold.
var (
	earliest = time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(2105, 1, 1, 0, 0, 0, 0, time.UTC)
)

// check returns why an event cannot be loaded, or "".
func check(e ingest.Event) string {
	if e.OccurredAt.Before(earliest) || !e.OccurredAt.Before(latest) {
		return fmt.Sprintf("occurred_at %s is outside 1970-01-02..2105-01-01", e.OccurredAt.Format(time.RFC3339))
	}
	return ""
}

func (a *applier) clockFor(ctx context.Context, site string) (*clock, error) {
	if a.schedules == nil {
		return nil, nil
	}
	a.mu.Lock()
	cc, ok := a.clocks[site]
	a.mu.Unlock()
	if ok && time.Since(cc.at) < scheduleTTL {
		return cc.c, nil
	}
	h, found, err := a.schedules.Schedule(ctx, site)
	if err != nil {
		return nil, fmt.Errorf("business hours of site %s: %w", site, err)
	}
	var c *clock
	if found {
		c, err = compileHours(h)
		if err != nil {
			// A broken schedule must not stop loading: count all time.
			a.log.Warn("ignoring invalid business hours", "site", site, "err", err)
			c = nil
		}
	}
	a.mu.Lock()
	if a.clocks == nil {
		a.clocks = map[string]cachedClock{}
	}
	a.clocks[site] = cachedClock{c: c, at: time.Now()}
	a.mu.Unlock()
	return c, nil
}

// apply stores events (all valid) and rebuilds the facts they touch.
//
// One query counts the distinct stored events of the batch's
// conversations; only conversations with stored events that the cache
// does not hold (with the same count) are read back and decoded. The new
// events and the rebuilt facts go to independent tables and are written
// at once; apply returns only when both are durable, so the caller's
// commit still follows both. Any failure empties the cache: the retry
// reads the store, which stays the source of truth.
func (a *applier) apply(ctx context.Context, events []ingest.Event) (st applyStats, err error) {
	if len(events) == 0 {
		return st, nil
	}
	defer func() {
		if err != nil {
			a.cache.reset()
		}
	}()
	byConv := map[ConversationKey][]ingest.Event{}
	var keys []ConversationKey
	for _, e := range events {
		if e.Type == ingest.AgentPresence {
			// Presence belongs to no conversation: stored raw, read by agent online time.
			continue
		}
		k := ConversationKey{SiteID: e.SiteID, ConversationID: e.ConversationID}
		if _, ok := byConv[k]; !ok {
			keys = append(keys, k)
		}
		byConv[k] = append(byConv[k], e)
	}
	stored, err := a.storedEvents(ctx, keys)
	if err != nil {
		return st, err
	}
	seen := map[string]bool{}
	for _, evs := range stored {
		for _, e := range evs {
			seen[e.ID] = true
		}
	}
	var fresh []ingest.Event
	for _, e := range events {
		if !seen[e.ID] {
			seen[e.ID] = true
			fresh = append(fresh, e)
		}
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	inserted := make(chan error, 1)
	go func() {
		err := a.store.InsertEvents(wctx, fresh)
		if err != nil {
			cancel()
			err = fmt.Errorf("insert %d events: %w", len(fresh), err)
		}
		inserted <- err
	}()
	all := make(map[ConversationKey][]ingest.Event, len(keys))
	factsErr := func() error {
		conv := make([]ConversationFacts, 0, len(keys))
		var mod []ModerationFact
		for _, k := range keys {
			c, err := a.clockFor(wctx, k.SiteID)
			if err != nil {
				return err
			}
			evs := make([]ingest.Event, 0, len(stored[k])+len(byConv[k]))
			evs = dedupe(append(append(evs, stored[k]...), byConv[k]...))
			all[k] = evs
			f, m := buildFacts(evs, c, a.facts)
			conv = append(conv, f)
			mod = append(mod, m...)
		}
		if err := a.store.WriteFacts(wctx, conv, mod); err != nil {
			cancel()
			return fmt.Errorf("write facts of %d conversations: %w", len(conv), err)
		}
		st.Conversations = len(conv)
		return nil
	}()
	insErr := <-inserted
	if insErr != nil {
		return st, insErr
	}
	if factsErr != nil {
		return st, factsErr
	}
	st.Inserted = len(fresh)
	for k, evs := range all {
		a.cache.put(k, evs)
	}
	return st, nil
}

// storedEvents returns the stored events of keys: from the cache where it
// holds as many events as the store, else read back.
func (a *applier) storedEvents(ctx context.Context, keys []ConversationKey) (map[ConversationKey][]ingest.Event, error) {
	counts, err := a.store.EventCounts(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("count stored events of %d conversations: %w", len(keys), err)
	}
	out := make(map[ConversationKey][]ingest.Event, len(counts))
	var read []ConversationKey
	for _, k := range keys {
		n := counts[k]
		if n == 0 {
			continue
		}
		if evs, ok := a.cache.get(k, n); ok {
			out[k] = evs
			continue
		}
		read = append(read, k)
	}
	a.cacheHits += len(out)
	a.storeReads += len(read)
	if len(read) == 0 {
		return out, nil
	}
	got, err := a.store.ConversationEvents(ctx, read)
	if err != nil {
		return nil, fmt.Errorf("read stored events of %d conversations: %w", len(read), err)
	}
	for k, evs := range got {
		out[k] = evs
	}
	return out, nil
}
