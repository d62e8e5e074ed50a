package moderation

import (
	"sync"
	"time"

	"github.com/parleychat/parley/ingest"
)

// DomainSightings remembers which link domains each site's visitors have
// sent. A promotional message with a link to a domain the site has never
// seen is a mark of spam; the same link from a site's regular traffic is
// not.
type DomainSightings interface {
	// FirstSeen records that site saw domain at the given time and
	// reports whether the site had not seen it before.
	FirstSeen(site, domain string, at time.Time) bool
}

// memDomains keeps sightings in memory: per site at most
// memDomainsPerSite domains, the ones unseen longest dropped first, and
// forgotten after memDomainsTTL. It is per process and starts empty, so
// after a restart every domain is new once; a store-backed
// DomainSightings can replace it through Config.Domains.
type memDomains struct {
	mu    sync.Mutex
	sites map[string]map[string]time.Time
}

const (
	memDomainsPerSite = 5000
	memDomainsTTL     = 30 * 24 * time.Hour
)

func newMemDomains() *memDomains { return &memDomains{sites: map[string]map[string]time.Time{}} }

func (m *memDomains) FirstSeen(site, domain string, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.sites[site]
	if seen == nil {
		seen = map[string]time.Time{}
		m.sites[site] = seen
	}
	last, ok := seen[domain]
	seen[domain] = at
	if len(seen) > memDomainsPerSite {
		m.evict(seen, at)
	}
	return !ok || at.Sub(last) > memDomainsTTL
}

// evict drops expired domains, and if that is not enough the tenth of
// them unseen longest.
func (m *memDomains) evict(seen map[string]time.Time, now time.Time) {
	for d, t := range seen {
		if now.Sub(t) > memDomainsTTL {
			delete(seen, d)
		}
	}
	for len(seen) > memDomainsPerSite*9/10 {
		oldest, at := "", now
		for d, t := range seen {
			if t.Before(at) || oldest == "" {
				oldest, at = d, t
			}
		}
		delete(seen, oldest)
	}
}

// newDomainSpam adds a spam span to v when text is promotional and links
// to a domain the site sees for the first time.
func newDomainSpam(d DomainSightings, e *Engine, site, text string, v Verdict, at time.Time) Verdict {
	if d == nil || len(v.hosts) == 0 {
		return v
	}
	fresh := ""
	for _, h := range v.hosts {
		if d.FirstSeen(site, h, at) && fresh == "" {
			fresh = h
		}
	}
	if fresh == "" || !v.promo || v.Has(CatSpam) {
		return v
	}
	return e.Combine(text, v, ingest.Span{Start: 0, End: len(text), Category: CatSpam, Rule: "link:new-domain-promo", Match: fresh})
}
