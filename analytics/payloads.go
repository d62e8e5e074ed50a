package analytics

import (
	"sync"

	"github.com/parleychat/parley/ingest"
)

// The loader rebuilds a conversation's facts from all its events on every
// batch that touches the conversation, so the same payloads are decoded
// again and again; decoding JSON was most of the loader's CPU. An event
// read from Kafka carries the payload its consumer decoded
// (ingest.Decoded), read without a lookup; for events read back from the
// store, payloads remembers decoded payloads by event id in two
// generations: lookups
// promote from the older one, and when the newer one is full the older
// one is dropped, so the memo holds at most twice memoEvents payloads and
// keeps those still being read. Message texts are not kept (facts never
// read them).
var payloads = &payloadMemo{cur: map[string]any{}, old: map[string]any{}}

// memoEvents bounds each generation of the memo.
const memoEvents = 100_000

type payloadMemo struct {
	mu       sync.Mutex
	cur, old map[string]any
}

// payload returns e's payload decoded as T (T is the payload type of e's
// type); ok is false when it does not decode.
func payload[T any](e ingest.Event) (T, bool) {
	if p, ok := ingest.Decoded[T](e); ok {
		return p, true // an event from Kafka carries its payload
	}
	if v, ok := payloads.get(e.ID); ok {
		if p, ok := v.(T); ok {
			return p, true
		}
	}
	var p T
	if err := e.Into(&p); err != nil {
		return p, false
	}
	keep := any(p)
	if m, ok := keep.(ingest.MessageSentPayload); ok {
		m.Text, m.Attachments = "", nil
		keep = m
	}
	payloads.put(e.ID, keep)
	if _, ok := keep.(T); !ok {
		return p, true
	}
	return keep.(T), true
}

func (m *payloadMemo) get(id string) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.cur[id]; ok {
		return v, true
	}
	if v, ok := m.old[id]; ok {
		m.putLocked(id, v)
		return v, true
	}
	return nil, false
}

func (m *payloadMemo) put(id string, v any) {
	m.mu.Lock()
	m.putLocked(id, v)
	m.mu.Unlock()
}

func (m *payloadMemo) putLocked(id string, v any) {
	if len(m.cur) >= memoEvents {
		m.old, m.cur = m.cur, make(map[string]any, memoEvents/4)
	}
	m.cur[id] = v
}
