package chatsvc

import (
	"sync"
	"time"
)

// Frame budgets: every frame type a client may send has a token bucket
// per connection, so no frame type turns into unbounded database writes,
// outbox events or fan-out to other sockets. A frame over its budget is
// dropped with a rate_limited error (at most one such error per second per
// connection, so a flood does not become a flood of errors either).
// Message sends are also limited per author across connections
// (Limits.VisitorMsgRate, AgentMsgRate).

// frameRate is one frame type's budget: rate per second, burst.
type frameRate struct{ rate, burst float64 }

// visitorFrameRates are the budgets of a visitor connection. Types not
// listed share the "other" budget.
var visitorFrameRates = map[string]frameRate{
	"send":            {10, 40},
	"offline_message": {1, 5},
	"typing":          {4, 4},
	"delivered":       {10, 30},
	"read":            {10, 30},
	"resume":          {5, 20},
	"csat":            {1, 3},
	"leave":           {1, 3},
	"context":         {2, 10},
	"prechat":         {1, 5},
	"ping":            {2, 10},
	"other":           {5, 20},
}

// agentFrameRates are the budgets of an agent connection: larger, since a
// console subscribes to every open conversation when it (re)connects.
var agentFrameRates = map[string]frameRate{
	"send":        {50, 200},
	"typing":      {8, 8},
	"delivered":   {50, 200},
	"read":        {50, 200},
	"subscribe":   {50, 500},
	"resume":      {50, 500},
	"unsubscribe": {50, 500},
	"presence":    {2, 10},
	"inbox":       {2, 10},
	"ping":        {2, 10},
	"other":       {5, 20},
}

// frameRates returns base with the send budget at least twice the
// author's message limit (which applies across connections), so the
// per-connection budget never refuses what the message limit admits.
func frameRates(base map[string]frameRate, msgRate, msgBurst float64) map[string]frameRate {
	out := make(map[string]frameRate, len(base))
	for k, v := range base {
		out[k] = v
	}
	send := out["send"]
	out["send"] = frameRate{max(send.rate, 2*msgRate), max(send.burst, 2*msgBurst)}
	return out
}

// frameBudget is one connection's buckets, made on first use of a type.
type frameBudget struct {
	rates     map[string]frameRate
	buckets   map[string]*bucket
	lastError time.Time
}

func newFrameBudget(rates map[string]frameRate) *frameBudget {
	return &frameBudget{rates: rates}
}

// allow takes a token for a frame of type typ. When it refuses, report
// says whether this refusal should be answered (one per second).
// Only the connection's reader goroutine calls it.
func (b *frameBudget) allow(typ string, now time.Time) (ok, report bool) {
	r, known := b.rates[typ]
	if !known {
		typ, r = "other", b.rates["other"]
	}
	bk := b.buckets[typ]
	if bk == nil {
		if b.buckets == nil {
			b.buckets = map[string]*bucket{} // an idle socket never needs one
		}
		bk = newBucket(r.rate, r.burst)
		b.buckets[typ] = bk
	}
	if ok, _ := bk.allow(now); ok {
		return true, false
	}
	if now.Sub(b.lastError) < time.Second {
		return false, false
	}
	b.lastError = now
	return false, true
}

// spend checks a decoded frame against the connection's budget; false
// means the frame must be dropped (the client was told when due).
func (c *client) spend(f inFrame) bool {
	ok, report := c.budget.allow(f.Type, time.Now())
	if ok {
		return true
	}
	c.s.metrics.frameErrors.WithLabelValues(CodeRateLimited).Inc()
	if report {
		c.enqueue(errorBytes(f.Ref, errf(CodeRateLimited, "too many %s frames; slow down (extra ones are dropped)", f.Type)))
	}
	return false
}

// socketCounts caps concurrent visitor sockets per network address and
// per visitor (Limits.MaxSocketsPerIP, MaxSocketsPerVisitor).
type socketCounts struct {
	mu        sync.Mutex
	byIP      map[string]int
	byVisitor map[string]int
}

func newSocketCounts() *socketCounts {
	return &socketCounts{byIP: map[string]int{}, byVisitor: map[string]int{}}
}

// full reports which cap a new socket of ip and visitor would exceed ("" when none).
func (sc *socketCounts) full(l Limits, ip, visitor string) string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.fullLocked(l, ip, visitor)
}

func (sc *socketCounts) fullLocked(l Limits, ip, visitor string) string {
	switch {
	case sc.byIP[ip] >= l.MaxSocketsPerIP:
		return "address"
	case sc.byVisitor[visitor] >= l.MaxSocketsPerVisitor:
		return "visitor"
	}
	return ""
}

// acquire counts a socket unless a cap is reached; it returns the cap
// reached ("" when counted).
func (sc *socketCounts) acquire(l Limits, ip, visitor string) string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if full := sc.fullLocked(l, ip, visitor); full != "" {
		return full
	}
	sc.byIP[ip]++
	sc.byVisitor[visitor]++
	return ""
}

func (sc *socketCounts) release(ip, visitor string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.byIP[ip]--; sc.byIP[ip] <= 0 {
		delete(sc.byIP, ip)
	}
	if sc.byVisitor[visitor]--; sc.byVisitor[visitor] <= 0 {
		delete(sc.byVisitor, visitor)
	}
}

// receiptMarks remembers, per connection, the highest delivered receipt
// forwarded for each conversation, so agents get a receipt only when the
// mark moves forward: repeated or stale receipts are coalesced away.
type receiptMarks map[string]int64

// forward reports whether upTo moves conv's mark forward, and records it.
func (m receiptMarks) forward(conv string, upTo int64) bool {
	if upTo <= m[conv] {
		return false
	}
	if len(m) >= 500 {
		clear(m)
	}
	m[conv] = upTo
	return true
}

func socketsFullMessage(full string) string {
	if full == "address" {
		return "too many open chat connections from your address; close other tabs and retry"
	}
	return "too many open chat connections for this visitor; close other tabs and retry"
}
