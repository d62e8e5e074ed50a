package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLimitedHandler keeps repeated warnings and errors from flooding the
// log: every distinct message (level and text) at Warn or above may be
// written logBurst times, then once per logEvery; the next line written
// says how many were suppressed (repeated=N). Info and Debug pass as they
// are. One limiter serves every logger derived with With/WithGroup, so
// the whole binary shares it.
type rateLimitedHandler struct {
	next  slog.Handler
	state *logRate
}

const (
	logBurst = 5
	logEvery = 10 * time.Second
)

// logRate counts the lines written per message.
type logRate struct {
	mu    sync.Mutex
	lines map[logKey]*logCount
	now   func() time.Time
}

type logKey struct {
	level slog.Level
	msg   string
}

type logCount struct {
	tokens     float64
	last       time.Time
	suppressed int
}

func newRateLimitedHandler(next slog.Handler) *rateLimitedHandler {
	return &rateLimitedHandler{next: next, state: &logRate{lines: map[logKey]*logCount{}, now: time.Now}}
}

func (h *rateLimitedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *rateLimitedHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	suppressed, ok := h.state.take(logKey{r.Level, r.Message})
	if !ok {
		return nil
	}
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", suppressed))
	}
	return h.next.Handle(ctx, r)
}

// take spends a token of the message's bucket; it returns how many lines
// were suppressed since the last one written, and whether to write this one.
func (s *logRate) take(k logKey) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	c := s.lines[k]
	if c == nil {
		if len(s.lines) >= 10000 {
			clear(s.lines) // many distinct messages: start counting again
		}
		c = &logCount{tokens: logBurst, last: now}
		s.lines[k] = c
	}
	c.tokens = min(logBurst, c.tokens+now.Sub(c.last).Seconds()/logEvery.Seconds())
	c.last = now
	if c.tokens < 1 {
		c.suppressed++
		return 0, false
	}
	c.tokens--
	n := c.suppressed
	c.suppressed = 0
	return n, true
}

func (h *rateLimitedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &rateLimitedHandler{next: h.next.WithAttrs(attrs), state: h.state}
}

func (h *rateLimitedHandler) WithGroup(name string) slog.Handler {
	return &rateLimitedHandler{next: h.next.WithGroup(name), state: h.state}
}
