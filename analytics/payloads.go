package analytics

import "github.com/parleychat/parley/ingest"

// The loader rebuilds a conversation's facts from all its events on every
// batch that touches the conversation, so the same payloads are decoded
// again and again; decoding JSON was most of the loader's CPU. An event
// read from Kafka carries the payload its consumer decoded
// (ingest.Decoded), read without a lookup; for events read back from the
// store, payloads remembers decoded payloads by event id, memoEvents per
// generation (ingest.Recent). Message texts are not kept (facts never
// read them).
var payloads = ingest.NewRecent[string, any](memoEvents)

// memoEvents bounds each generation of the memo.
const memoEvents = 100_000

// payload returns e's payload decoded as T (T is the payload type of e's
// type); ok is false when it does not decode.
func payload[T any](e ingest.Event) (T, bool) {
	if p, ok := ingest.Decoded[T](e); ok {
		return p, true // an event from Kafka carries its payload
	}
	if v, ok := payloads.Get(e.ID); ok {
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
	payloads.Put(e.ID, keep)
	if _, ok := keep.(T); !ok {
		return p, true
	}
	return keep.(T), true
}
