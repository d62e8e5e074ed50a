package ingest

import "sync"

// Recent remembers values by key in two generations of at most limit
// each, for what a process decoded moments ago (records its consumers
// share, payloads the analytics loader reads again on every batch): a
// lookup promotes a value from the older generation, and when the newer
// one is full the older one is dropped. It holds at most twice limit
// values and keeps those still being read. Safe for concurrent use.
type Recent[K comparable, V any] struct {
	mu       sync.Mutex
	limit    int
	cur, old map[K]V
}

// NewRecent returns an empty Recent whose generations hold limit values.
func NewRecent[K comparable, V any](limit int) *Recent[K, V] {
	return &Recent[K, V]{limit: limit, cur: map[K]V{}, old: map[K]V{}}
}

// Get returns the value remembered for k.
func (r *Recent[K, V]) Get(k K) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.cur[k]; ok {
		return v, true
	}
	v, ok := r.old[k]
	if ok {
		r.putLocked(k, v)
	}
	return v, ok
}

// Put remembers v for k.
func (r *Recent[K, V]) Put(k K, v V) {
	r.mu.Lock()
	r.putLocked(k, v)
	r.mu.Unlock()
}

// Len is how many values it holds.
func (r *Recent[K, V]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cur) + len(r.old)
}

func (r *Recent[K, V]) putLocked(k K, v V) {
	if len(r.cur) >= r.limit {
		r.old, r.cur = r.cur, make(map[K]V, r.limit/4)
	}
	r.cur[k] = v
}
