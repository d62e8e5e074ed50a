package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/parleychat/parley/ingest"
)

// applier turns a batch of valid events into durable rows: site profiles
// from site.updated events; events of sites not known yet into the held
// table; everything else as raw events plus the rebuilt facts of every
// conversation the batch touches. Applying the same batch again (a retry
// after a crash between insert and commit) rebuilds the same facts and
// stores nothing twice. The loader and the maintenance loop share one
// applier under the loader's lock; it is not safe for concurrent use.
type applier struct {
	store Store
	log   *slog.Logger
	sites *siteBook

	// cache holds recent conversations' stored events (nil = none).
	cache *convCache
	// cacheHits and storeReads count conversations served by the cache
	// and read back from the store (tests and benchmarks read them).
	cacheHits, storeReads int

	// newest is the latest occurred_at (ms) of the events made visible
	// in facts by this applier.
	newest int64
}

func newApplier(store Store, log *slog.Logger, cacheEvents int) *applier {
	if log == nil {
		log = slog.Default()
	}
	return &applier{store: store, log: log, sites: newSiteBook(store), cache: newConvCache(cacheEvents)}
}

// applyStats says what one batch did.
type applyStats struct {
	Inserted      int
	Conversations int
	Held          int
	Released      int
}

// earliest and latest are the instants a ClickHouse DateTime partition key can hold.
var (
	earliest = time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(2105, 1, 1, 0, 0, 0, 0, time.UTC)
)

// check returns why an event cannot be loaded whatever the store's
// state, or "".
func check(e ingest.Event) string {
	if e.OccurredAt.Before(earliest) || !e.OccurredAt.Before(latest) {
		return fmt.Sprintf("occurred_at %s is outside 1970-01-02..2105-01-01", e.OccurredAt.Format(time.RFC3339))
	}
	return ""
}

// noSite reports whether an event belongs to no site (stored raw, never held).
func noSite(e ingest.Event) bool { return e.Type == ingest.AgentPresence }

// buildsFacts reports whether an event takes part in a conversation's facts.
func buildsFacts(e ingest.Event) bool {
	return e.Type != ingest.AgentPresence && e.Type != ingest.SiteUpdated
}

// apply stores events without a Kafka origin (tests, benchmarks).
func (a *applier) apply(ctx context.Context, events []ingest.Event) (applyStats, error) {
	return a.applyRecords(ctx, events, nil)
}

// applyRecords stores events; origins gives the Kafka position of each
// event id, kept with held events for their dead letter.
//
// Site profiles are applied first, so a batch that brings a site's first
// profile loads that site's events too. Events of a site with no profile
// are held; a site that has held events gets them released (loaded) by
// the first batch that knows its profile.
func (a *applier) applyRecords(ctx context.Context, events []ingest.Event, origins map[string]ingest.Record) (st applyStats, err error) {
	if len(events) == 0 {
		return st, nil
	}
	if err := a.applyProfiles(ctx, events); err != nil {
		return st, err
	}
	sites := map[string]bool{}
	for _, e := range events {
		if !noSite(e) && e.Type != ingest.SiteUpdated {
			sites[e.SiteID] = true
		}
	}
	if a.sites.unknown(sites) {
		if err := a.sites.refresh(ctx, false); err != nil {
			return st, err
		}
	}
	var load []ingest.Event
	var held []HeldEvent
	var release []string
	releasing := map[string]bool{}
	now := time.Now().UnixMilli()
	for _, e := range events {
		if noSite(e) || e.Type == ingest.SiteUpdated {
			load = append(load, e)
			continue
		}
		if _, ok := a.sites.profile(e.SiteID); !ok {
			h := HeldEvent{Event: e, HeldAt: now, Partition: -1, Offset: -1}
			if r, ok := origins[e.ID]; ok {
				h.Topic, h.Partition, h.Offset = r.Topic, r.Partition, r.Offset
			}
			held = append(held, h)
			continue
		}
		if a.sites.hasHeld(e.SiteID) && !releasing[e.SiteID] {
			releasing[e.SiteID] = true
			release = append(release, e.SiteID)
		}
		load = append(load, e)
	}
	if len(held) > 0 {
		if err := a.store.HoldEvents(ctx, held); err != nil {
			return st, fmt.Errorf("hold %d events of unknown sites: %w", len(held), err)
		}
		for _, h := range held {
			a.sites.noteHeld(h.Event.SiteID, h.HeldAt)
		}
		st.Held = len(held)
	}
	released := map[string][]string{}
	for _, site := range release {
		hs, err := a.store.HeldEvents(ctx, site)
		if err != nil {
			return st, fmt.Errorf("read held events of site %s: %w", site, err)
		}
		for _, h := range hs {
			load = append(load, h.Event)
			released[site] = append(released[site], h.Event.ID)
		}
	}
	ist, err := a.load(ctx, load)
	st.Inserted, st.Conversations = ist.Inserted, ist.Conversations
	if err != nil {
		return st, err
	}
	for _, site := range release {
		if err := a.store.FinishHeld(ctx, site, released[site], HeldReleased); err != nil {
			return st, fmt.Errorf("release held events of site %s: %w", site, err)
		}
		a.sites.clearHeld(site)
		st.Released += len(released[site])
	}
	return st, nil
}

// applyProfiles merges the batch's site.updated events into the stored
// profiles.
func (a *applier) applyProfiles(ctx context.Context, events []ingest.Event) error {
	var updates []SiteProfile
	for _, e := range events {
		if e.Type != ingest.SiteUpdated {
			continue
		}
		p, err := siteProfileFromEvent(e)
		if err != nil {
			return err // validated by ingest.Decode: cannot happen for consumed events
		}
		updates = append(updates, p)
	}
	if len(updates) == 0 {
		return nil
	}
	sort.Slice(updates, func(i, j int) bool { return updates[j].newer(updates[i]) })
	if err := a.sites.refresh(ctx, false); err != nil {
		return err
	}
	changed := map[string]SiteProfile{}
	for _, p := range updates {
		old, found := a.sites.profile(p.SiteID)
		if c, ok := changed[p.SiteID]; ok {
			old, found = c, true
		}
		if next, ok := mergeProfile(old, found, p); ok {
			changed[p.SiteID] = next
			if r := next.rules(); r.hoursBroken != nil {
				a.log.Warn("site business hours are invalid; counting all time as business time", "site", p.SiteID, "err", r.hoursBroken)
			}
		}
	}
	if len(changed) == 0 {
		return nil
	}
	out := make([]SiteProfile, 0, len(changed))
	for _, p := range changed {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SiteID < out[j].SiteID })
	if err := a.store.PutSiteProfiles(ctx, out); err != nil {
		return fmt.Errorf("store %d site profiles: %w", len(out), err)
	}
	a.sites.put(out)
	return nil
}

// load stores events (all of known sites) and rebuilds the facts they touch.
//
// One query counts the distinct stored events of the batch's
// conversations; only conversations with stored events that the cache
// does not hold (with the same count) are read back and decoded. The new
// events and the rebuilt facts go to independent tables and are written
// at once; load returns only when both are durable, so the caller's
// commit still follows both. Any failure empties the cache: the retry
// reads the store, which stays the source of truth.
func (a *applier) load(ctx context.Context, events []ingest.Event) (st applyStats, err error) {
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
		if !buildsFacts(e) {
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
	// known holds the batch's ids, true once an event is stored already (a
	// redelivery) or taken earlier in the batch. Only the batch's ids are
	// kept: a set of every stored id cost an allocation per stored event,
	// every batch, for conversations that keep growing.
	known := make(map[string]bool, len(events))
	for _, e := range events {
		known[e.ID] = false
	}
	for k, batch := range byConv {
		markStored(known, stored[k], batch)
	}
	var fresh []ingest.Event
	freshByConv := map[ConversationKey][]ingest.Event{}
	var newest int64
	for _, e := range events {
		facts := buildsFacts(e)
		if facts {
			newest = max(newest, e.OccurredAt.UnixMilli())
		}
		if known[e.ID] {
			continue
		}
		known[e.ID] = true
		fresh = append(fresh, e)
		if facts {
			k := ConversationKey{SiteID: e.SiteID, ConversationID: e.ConversationID}
			freshByConv[k] = append(freshByConv[k], e)
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
		// Each site's rules are compiled once a batch: compiling loads the
		// business hours' time zone, which cost more than building the
		// facts of the conversation it was compiled for.
		rules := map[string]siteRules{}
		for _, k := range keys {
			// Stored events are deduplicated (storedEvents) and fresh ones are
			// new and unique, so the union needs no second pass. Appending in
			// place reuses the cached slice's spare room: the cache entry is
			// replaced below when the batch succeeds, and emptied when it
			// fails (buildFacts sorts evs in place).
			evs := append(stored[k], freshByConv[k]...)
			all[k] = evs
			r, ok := rules[k.SiteID]
			if !ok {
				p, _ := a.sites.profile(k.SiteID)
				r = p.rules()
				rules[k.SiteID] = r
			}
			f, m := buildFacts(evs, r)
			conv = append(conv, f)
			mod = append(mod, changedModeration(m, byConv[k])...)
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
		// buildFacts sorted evs in place; the cache keeps them as stored.
		a.cache.put(k, evs)
	}
	a.newest = max(a.newest, newest)
	return st, nil
}

// markStored sets known[id] for the events of batch (one conversation's)
// that stored (its stored events, in sortEvents order) holds already. A
// redelivered event keeps its time, so only the stored events from the
// batch's earliest time on are compared: a few at the end, where a scan
// of every stored event cost as much as rebuilding the facts.
func markStored(known map[string]bool, stored, batch []ingest.Event) {
	if len(stored) == 0 || len(batch) == 0 {
		return
	}
	from := batch[0].OccurredAt.Time
	for _, e := range batch[1:] {
		if e.OccurredAt.Before(from) {
			from = e.OccurredAt.Time
		}
	}
	for i := len(stored) - 1; i >= 0 && !stored[i].OccurredAt.Before(from); i-- {
		if _, ok := known[stored[i].ID]; ok {
			known[stored[i].ID] = true
		}
	}
}

// changedModeration keeps the moderation facts a batch's events change: a
// fact depends only on its verdict and its item's decision, so the others
// are stored already (rewriting every verdict of a conversation on each of
// its batches cost as much as the rest of the load).
func changedModeration(facts []ModerationFact, batch []ingest.Event) []ModerationFact {
	verdicts, items := map[string]bool{}, map[string]bool{}
	for _, e := range batch {
		switch e.Type {
		case ingest.ModerationVerdict:
			verdicts[e.ID] = true
		case ingest.ModerationDecision:
			if p, ok := payload[ingest.ModerationDecisionPayload](e); ok && p.ItemID != "" {
				items[p.ItemID] = true
			}
		}
	}
	if len(verdicts) == 0 && len(items) == 0 {
		return nil
	}
	var out []ModerationFact
	for _, m := range facts {
		if verdicts[m.VerdictID] || m.ItemID != "" && items[m.ItemID] {
			out = append(out, m)
		}
	}
	return out
}

// storedEvents returns the stored events of keys, each once: from the cache where it
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
		evs = dedupe(evs) // a store may hold an event twice until it merges (ClickHouse)
		sortEvents(evs)   // as cached ones are (buildFacts sorts them); markStored relies on it
		out[k] = evs
	}
	return out, nil
}

// recomputeBatch is how many conversations one recompute step rebuilds.
const recomputeBatch = 500

// recomputeStep rebuilds the facts of up to recomputeBatch conversations
// of site after the conversation id after, with the site's current
// profile, and returns the last id done ("" when the site is finished).
func (a *applier) recomputeStep(ctx context.Context, site, after string) (string, int, error) {
	ids, err := a.store.SiteConversations(ctx, site, after, recomputeBatch)
	if err != nil {
		return "", 0, fmt.Errorf("list conversations of site %s: %w", site, err)
	}
	if len(ids) == 0 {
		return "", 0, nil
	}
	keys := make([]ConversationKey, len(ids))
	for i, id := range ids {
		keys[i] = ConversationKey{SiteID: site, ConversationID: id}
	}
	stored, err := a.storedEvents(ctx, keys)
	if err != nil {
		return "", 0, err
	}
	p, _ := a.sites.profile(site)
	rules := p.rules()
	conv := make([]ConversationFacts, 0, len(keys))
	var mod []ModerationFact
	for _, k := range keys {
		evs := stored[k]
		if len(evs) == 0 {
			continue
		}
		f, m := buildFacts(evs, rules)
		conv = append(conv, f)
		mod = append(mod, m...)
		a.cache.put(k, evs)
	}
	if err := a.store.WriteFacts(ctx, conv, mod); err != nil {
		a.cache.reset()
		return "", 0, fmt.Errorf("write recomputed facts of site %s: %w", site, err)
	}
	last := ids[len(ids)-1]
	if len(ids) < recomputeBatch {
		last = ""
	}
	return last, len(conv), nil
}

// recomputeSite rebuilds every fact of a site with its current profile
// and records the revision they were built with. lock is held around
// each step (so that loader batches interleave), each step bounded by
// stepTimeout.
func (a *applier) recomputeSite(ctx context.Context, site string, lock func() func(), stepTimeout time.Duration) (int, error) {
	unlock := lock()
	p, ok := a.sites.profile(site)
	unlock()
	if !ok {
		return 0, nil
	}
	total := 0
	for after := ""; ; {
		unlock := lock()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		next, n, err := a.recomputeStep(sctx, site, after)
		cancel()
		unlock()
		if err != nil {
			return total, err
		}
		total += n
		if next == "" {
			break
		}
		after = next
	}
	if err := a.store.MarkSiteFacts(ctx, site, p.Rev); err != nil {
		return total, fmt.Errorf("record facts revision of site %s: %w", site, err)
	}
	unlock = lock()
	a.sites.markFacts(site, p.Rev)
	unlock()
	return total, nil
}
