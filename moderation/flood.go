package moderation

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/parleychat/parley/ingest"
)

// fingerprint reduces a message to what near-identical copies share: its
// normalised letters without digits, spacing, punctuation or repeated
// letters ("BUY NOW!!! 1" and "buy now 2" agree). Messages with fewer than
// three letters have no fingerprint: "ok" sent twice is not spam.
func fingerprint(text string) string {
	units := normalise(text, nil)
	h := fnv.New64a()
	var last rune
	letters := 0
	var buf [4]byte
	for _, u := range units {
		if u.cls != uLetter || u.r == last {
			continue
		}
		last = u.r
		letters++
		if letters > 500 {
			break
		}
		n := copy(buf[:], string(u.r))
		h.Write(buf[:n])
	}
	if letters < 3 {
		return ""
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// floodSpan is the span a flooding message gets: the whole text.
func floodSpan(text, rule string) ingest.Span {
	return ingest.Span{Start: 0, End: len(text), Category: CatFlood, Rule: rule}
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
	visitors map[string][]floodEntry
	sweepAt  time.Time
}

type floodEntry struct {
	at time.Time
	fp string
}

const memFloodMaxVisitors = 200_000

func newMemFlood() *memFlood { return &memFlood{visitors: map[string][]floodEntry{}} }

// observe records a message and judges it.
func (m *memFlood) observe(site, visitor, text string, now time.Time, o FloodOptions) []ingest.Span {
	if o.WindowSeconds <= 0 || visitor == "" || (o.MaxMessages <= 0 && o.MaxRepeats <= 0) {
		return nil
	}
	window := time.Duration(o.WindowSeconds) * time.Second
	fp := fingerprint(text)
	key := site + "\x00" + visitor
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
			if fp != "" && e.fp == fp {
				same++
			}
		}
	}
	spans := judgeFlood(o, text, len(kept), same)
	if len(kept) < 1000 {
		kept = append(kept, floodEntry{at: now, fp: fp})
	}
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

// sqlFlood is the workers' flood state in moderation.db, so that it holds
// across worker restarts. It is judged at the message's own time, which
// makes reprocessing give the same answer.
func sqlFlood(ctx context.Context, tx *sql.Tx, site, visitor, eventID, text string, at time.Time, o FloodOptions) ([]ingest.Span, error) {
	if o.WindowSeconds <= 0 || visitor == "" || (o.MaxMessages <= 0 && o.MaxRepeats <= 0) {
		return nil, nil
	}
	fp := fingerprint(text)
	from := ms(at.Add(-time.Duration(o.WindowSeconds) * time.Second))
	var recent, same int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(fingerprint = ? AND fingerprint != ''), 0)
		FROM mod_flood WHERE site_id = ? AND visitor_id = ? AND at > ? AND at <= ? AND event_id != ?`,
		fp, site, visitor, from, ms(at), eventID).Scan(&recent, &same); err != nil {
		return nil, fmt.Errorf("flood history of %s: %w", visitor, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_flood (site_id, visitor_id, at, fingerprint, event_id)
		VALUES (?, ?, ?, ?, ?)`, site, visitor, ms(at), fp, eventID); err != nil {
		return nil, fmt.Errorf("record flood of %s: %w", visitor, err)
	}
	return judgeFlood(o, text, recent, same), nil
}
