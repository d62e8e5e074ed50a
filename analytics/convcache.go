package analytics

import (
	"container/list"
	"sync"

	"github.com/parleychat/parley/ingest"
)

// defaultCacheEvents is how many stored events the loader keeps decoded
// in memory (about 40 MB of typical chat events).
const defaultCacheEvents = 100_000

// convCache keeps the stored events of recently loaded conversations,
// decoded and deduplicated, so that a batch need not read them back and
// decode them again. It is only a copy: an entry is used only while the
// store holds exactly as many distinct events of the conversation as the
// entry (the entry only ever holds stored events, so equal counts mean
// equal sets); anything else reads the store. Least recently used
// conversations are evicted beyond max events.
type convCache struct {
	max int

	mu sync.Mutex
	n  int // events held
	ll *list.List
	m  map[ConversationKey]*list.Element
}

type cacheEntry struct {
	key    ConversationKey
	events []ingest.Event
}

// newConvCache returns a cache of at most max events; max ≤ 0 disables it.
func newConvCache(max int) *convCache {
	return &convCache{max: max, ll: list.New(), m: map[ConversationKey]*list.Element{}}
}

// get returns the cached events of k if the store holds exactly stored
// distinct events of it. The slice must not be modified.
func (c *convCache) get(k ConversationKey, stored int64) ([]ingest.Event, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if int64(len(e.events)) != stored {
		c.removeLocked(el)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e.events, true
}

// put records that events (deduplicated, all durably stored) are every
// stored event of k.
func (c *convCache) put(k ConversationKey, events []ingest.Event) {
	if c == nil || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		c.removeLocked(el)
	}
	if len(events) > c.max {
		return
	}
	c.m[k] = c.ll.PushFront(&cacheEntry{key: k, events: events})
	c.n += len(events)
	for c.n > c.max {
		c.removeLocked(c.ll.Back())
	}
}

// reset forgets everything (after a failed batch the store is re-read).
func (c *convCache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	c.m = map[ConversationKey]*list.Element{}
	c.n = 0
}

// len returns the number of cached conversations and events.
func (c *convCache) len() (convs, events int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.n
}

func (c *convCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.ll.Remove(el)
	delete(c.m, e.key)
	c.n -= len(e.events)
}
