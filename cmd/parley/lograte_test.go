package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRepeatedErrorsAreRateLimited: 8,000 identical failures log a few
// lines, the next written line says how many were dropped, other
// messages and info lines are untouched, and derived loggers share the
// limit.
func TestRepeatedErrorsAreRateLimited(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(&out, "info")
	h := log.Handler().(*rateLimitedHandler)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.state.now = func() time.Time { return now }
	chat := log.With("component", "chat")
	for i := 0; i < 8000; i++ {
		chat.Error("operation failed", "err", errors.New("database or disk is full"))
		log.Info("request served")
	}
	log.Error("another failure")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	count := map[string]int{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		count[m["msg"].(string)]++
	}
	if count["operation failed"] != logBurst || count["request served"] != 8000 || count["another failure"] != 1 {
		t.Fatalf("lines per message: %v", count)
	}
	// After the period one more line is written, counting what was dropped.
	now = now.Add(logEvery)
	out.Reset()
	log.Error("operation failed", "err", "still full")
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["repeated"] != float64(8000-logBurst) {
		t.Fatalf("the next line says repeated=%v, want %d", m["repeated"], 8000-logBurst)
	}
}
