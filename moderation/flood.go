package moderation

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley/ingest"
)

// fingerprint reduces a message to what near-identical copies share: its
// normalised letters without digits, spacing, punctuation or repeated
// letters ("BUY NOW!!! 1" and "buy now 2" agree). Messages with fewer than
// three letters have no fingerprint: "ok" sent twice is not spam.
func fingerprint(text string) string {
	h, ok := fingerprintHash(text)
	if !ok {
		return ""
	}
	return strconv.FormatUint(h, 36)
}

// fingerprintHash is fingerprint as a number (FNV-1a over the letters'
// UTF-8 bytes); ok is false for messages without a fingerprint.
func fingerprintHash(text string) (uint64, bool) {
	sc := scratchPool.Get().(*scratch)
	defer putScratch(sc)
	sc.units = normalise(text, sc.units[:0])
	h := uint64(14695981039346656037)
	var last rune
	letters := 0
	var buf [utf8.UTFMax]byte
	for _, u := range sc.units {
		if u.cls != uLetter || u.r == last {
			continue
		}
		last = u.r
		letters++
		if letters > 500 {
			break
		}
		n := utf8.EncodeRune(buf[:], u.r)
		for _, b := range buf[:n] {
			h = (h ^ uint64(b)) * 1099511628211
		}
	}
	return h, letters >= 3
}

// floodSpan is the span a flooding message gets: the whole text.
func floodSpan(text, rule string) ingest.Span {
	return ingest.Span{Start: 0, End: len(text), Category: CatFlood, Rule: rule, Source: "flood"}
}

// judgeFlood applies FloodOptions to a visitor's recent history: recent
// is how many messages the visitor sent in the window before this one,
// same how many of those share its fingerprint.
func judgeFlood(o FloodOptions, text string, recent, same int) []ingest.Span {
	switch {
	case o.MaxRepeats > 0 && same+1 >= o.MaxRepeats:
		return []ingest.Span{floodSpan(text, "flood:repeat")}
	case o.MaxMessages > 0 && recent+1 > o.MaxMessages:
		return []ingest.Span{floodSpan(text, "flood:rate")}
	}
	return nil
}

// memFlood is the inline flood detector: per-visitor history in memory.
// It sees only the messages of this process, which is what an inline
// check can afford; workers judge flood again over the whole stream.
type memFlood struct {
	mu       sync.Mutex
	visitors map[floodKey][]floodEntry
	sweepAt  time.Time
}

type floodKey struct{ site, visitor string }

type floodEntry struct {
	at time.Time
	fp uint64 // 0: no fingerprint
}

const (
	memFloodMaxVisitors = 200_000
	memFloodMaxHistory  = 1000
)

func newMemFlood() *memFlood { return &memFlood{visitors: map[floodKey][]floodEntry{}} }

// observe records a message and judges it. A visitor's history keeps at
// most the last max(MaxMessages, MaxRepeats) messages when the rate rule
// is on: a visitor with more in the window is over the rate anyway, so
// the verdict is the same as with the whole history and a flooding
// visitor costs a bounded amount per message.
func (m *memFlood) observe(site, visitor, text string, now time.Time, o FloodOptions) []ingest.Span {
	if o.WindowSeconds <= 0 || visitor == "" || (o.MaxMessages <= 0 && o.MaxRepeats <= 0) {
		return nil
	}
	window := time.Duration(o.WindowSeconds) * time.Second
	fp, ok := fingerprintHash(text)
	if !ok {
		fp = 0
	} else if fp == 0 {
		fp = 1
	}
	limit := memFloodMaxHistory
	if o.MaxMessages > 0 {
		limit = min(limit, max(o.MaxMessages, o.MaxRepeats))
	}
	key := floodKey{site, visitor}
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.sweepAt) || len(m.visitors) > memFloodMaxVisitors {
		m.sweep(now, time.Hour)
		m.sweepAt = now.Add(time.Minute)
	}
	hist := m.visitors[key]
	kept := hist[:0]
	same := 0
	for _, e := range hist {
		if now.Sub(e.at) < window {
			kept = append(kept, e)
			if fp != 0 && e.fp == fp {
				same++
			}
		}
	}
	spans := judgeFlood(o, text, len(kept), same)
	if len(kept) >= limit {
		// drop the oldest so the history stays bounded
		kept = append(kept[:0], kept[len(kept)-limit+1:]...)
	}
	kept = append(kept, floodEntry{at: now, fp: fp})
	m.visitors[key] = kept
	return spans
}

// sweep drops visitors silent for longer than idle.
func (m *memFlood) sweep(now time.Time, idle time.Duration) {
	for k, hist := range m.visitors {
		if len(hist) == 0 || now.Sub(hist[len(hist)-1].at) > idle {
			delete(m.visitors, k)
		}
	}
}

// floodMark is a visitor message's place in the workers' flood history,
// which the store keeps so that it holds across worker restarts; false
// when the policy counts no flood. The message is judged at its own time,
// which makes reprocessing give the same answer.
func floodMark(site, visitor, eventID, text string, at time.Time, o FloodOptions) (FloodMark, bool) {
	if o.WindowSeconds <= 0 || visitor == "" || (o.MaxMessages <= 0 && o.MaxRepeats <= 0) {
		return FloodMark{}, false
	}
	return FloodMark{SiteID: site, VisitorID: visitor, EventID: eventID, Fingerprint: fingerprint(text), At: at,
		Since: at.Add(-time.Duration(o.WindowSeconds) * time.Second)}, true
}
