package chatsvc

import (
	"fmt"
	"sync"
	"time"
)

// writeHealth remembers the writer's recent commits, so /readyz says chat
// is not ready while chat writes fail (a full disk, a read-only database)
// even though the store still answers a ping.
type writeHealth struct {
	mu       sync.Mutex
	lastOK   time.Time
	lastFail time.Time
	lastErr  error
	failures int // since the last success
}

// failingFor is how long after the last failed write, with no success
// since, chat reports itself not ready.
const failingFor = 30 * time.Second

func (h *writeHealth) ok(now time.Time) {
	h.mu.Lock()
	h.lastOK, h.failures = now, 0
	h.mu.Unlock()
}

func (h *writeHealth) failed(now time.Time, err error) {
	h.mu.Lock()
	h.lastFail, h.lastErr = now, err
	h.failures++
	h.mu.Unlock()
}

// check returns an error while the newest write outcome is a recent failure.
func (h *writeHealth) check(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failures == 0 || h.lastOK.After(h.lastFail) || now.Sub(h.lastFail) > failingFor {
		return nil
	}
	return fmt.Errorf("chat writes failing (%d in a row, last %s ago): %v", h.failures, now.Sub(h.lastFail).Round(time.Millisecond), h.lastErr)
}
