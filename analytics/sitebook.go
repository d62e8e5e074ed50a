package analytics

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// siteBook is the loader's copy of the stored site profiles and of which
// sites have held events. Another loader process may store a profile or
// release held events at any time, so the book re-reads the store when it
// is older than bookTTL and a batch needs it.
type siteBook struct {
	store Store

	mu       sync.Mutex
	profiles map[string]SiteProfile
	held     map[string]int64 // site → earliest held_at (ms)
	readAt   time.Time
}

// bookTTL bounds how stale the book may be when a batch meets a site it
// does not know.
const bookTTL = time.Second

func newSiteBook(store Store) *siteBook {
	return &siteBook{store: store, profiles: map[string]SiteProfile{}, held: map[string]int64{}}
}

// refresh re-reads profiles and held sites; unless force, only when the
// book is older than bookTTL.
func (b *siteBook) refresh(ctx context.Context, force bool) error {
	b.mu.Lock()
	fresh := !b.readAt.IsZero() && time.Since(b.readAt) < bookTTL
	b.mu.Unlock()
	if fresh && !force {
		return nil
	}
	ps, err := b.store.SiteProfiles(ctx)
	if err != nil {
		return fmt.Errorf("read site profiles: %w", err)
	}
	hs, err := b.store.HeldSites(ctx)
	if err != nil {
		return fmt.Errorf("read held sites: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.profiles = make(map[string]SiteProfile, len(ps))
	for _, p := range ps {
		b.profiles[p.SiteID] = p
	}
	b.held = make(map[string]int64, len(hs))
	for _, h := range hs {
		b.held[h.SiteID] = h.Since
	}
	b.readAt = time.Now()
	return nil
}

func (b *siteBook) profile(site string) (SiteProfile, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.profiles[site]
	return p, ok
}

func (b *siteBook) all() []SiteProfile {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]SiteProfile, 0, len(b.profiles))
	for _, p := range b.profiles {
		out = append(out, p)
	}
	return out
}

func (b *siteBook) put(ps []SiteProfile) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range ps {
		b.profiles[p.SiteID] = p
	}
}

func (b *siteBook) markFacts(site string, rev int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.profiles[site]; ok && rev > p.FactsRev {
		p.FactsRev = rev
		b.profiles[site] = p
	}
}

func (b *siteBook) hasHeld(site string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.held[site]
	return ok
}

func (b *siteBook) noteHeld(site string, at int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if since, ok := b.held[site]; !ok || at < since {
		b.held[site] = at
	}
}

func (b *siteBook) clearHeld(site string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.held, site)
}

// unknown reports whether any event of the batch names a site the book
// does not know (so the batch should refresh the book first).
func (b *siteBook) unknown(sites map[string]bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range sites {
		if _, ok := b.profiles[s]; !ok {
			return true
		}
	}
	return false
}
