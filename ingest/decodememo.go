package ingest

import (
	"bytes"
	"hash/maphash"
)

// The consumers of one process (in `parley serve`: moderation, analytics,
// notifications, webhooks and chat's own) read the same records moments
// apart, and each decoded every record again: 7.5% of the server's CPU
// at 3,000 msg/s. recentDecodes keeps the decoded events of recent
// records by content, so the first consumer to read a record decodes it
// and the others take a copy of the Event (its payload is parsed once,
// and Into copies it, so consumers do not share what they change).
var recentDecodes = newDecodeMemo(4096)

// decodeMemo remembers decoded records by a hash of their bytes, limit
// per generation (Recent). A hit is checked byte for byte, so a hash
// collision only costs a decode.
type decodeMemo struct {
	seed   maphash.Seed
	recent *Recent[uint64, decodedRecord]
}

type decodedRecord struct {
	raw []byte
	ev  Event
	err error
}

func newDecodeMemo(limit int) *decodeMemo {
	return &decodeMemo{seed: maphash.MakeSeed(), recent: NewRecent[uint64, decodedRecord](limit)}
}

// decode is Decode(b), from memory when the process decoded the same
// bytes recently. b must not change afterwards (kafka-go gives each
// message its own value).
func (m *decodeMemo) decode(b []byte) (Event, error) {
	h := maphash.Bytes(m.seed, b)
	if r, ok := m.recent.Get(h); ok && bytes.Equal(r.raw, b) {
		return r.ev, r.err
	}
	e, err := Decode(b)
	m.recent.Put(h, decodedRecord{raw: b, ev: e, err: err})
	return e, err
}
