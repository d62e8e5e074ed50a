package chatsvc

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// busFormatFramed starts a bus payload in the framed format: this byte,
// then the JSON of the message's small fields, then its Frame and its
// Summary as they are, each part after its length (an unsigned varint).
//
// Frames are JSON already, encoded once for all their recipients. As
// fields of a JSON envelope they were validated and compacted again when
// published and scanned twice more when received: 12% of a chat-only
// node's CPU at 2,000 msg/s across nodes (docs/benchmarks.md). A payload
// that starts with '{' is the JSON envelope that nodes before this format
// publish, and is still read, so nodes can be upgraded one at a time
// (older nodes drop the framed payloads of newer ones as undecodable, and
// their clients catch up when they reconnect).
const busFormatFramed = 0x01

// encodeBusMessage encodes m for the Broker.
func encodeBusMessage(m busMessage) ([]byte, error) {
	frame, summary := m.Frame, m.Summary
	m.Frame, m.Summary = nil, nil
	head, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(head)+len(frame)+len(summary))
	b = append(b, busFormatFramed)
	for _, part := range [][]byte{head, frame, summary} {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	return b, nil
}

// decodeBusMessage decodes a payload of encodeBusMessage, or the JSON
// envelope of an older node. Frame and Summary share payload's memory.
func decodeBusMessage(payload []byte) (busMessage, error) {
	var m busMessage
	if len(payload) > 0 && payload[0] == '{' {
		err := json.Unmarshal(payload, &m)
		return m, err
	}
	if len(payload) == 0 || payload[0] != busFormatFramed {
		return m, errors.New("bus message: unknown format")
	}
	rest := payload[1:]
	var parts [3][]byte
	for i, name := range []string{"fields", "frame", "summary"} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return m, fmt.Errorf("bus message: %s cut short", name)
		}
		parts[i], rest = rest[k:k+int(n)], rest[k+int(n):]
	}
	if len(rest) > 0 {
		return m, fmt.Errorf("bus message: %d bytes after the summary", len(rest))
	}
	if err := json.Unmarshal(parts[0], &m); err != nil {
		return m, fmt.Errorf("bus message fields: %w", err)
	}
	if len(parts[1]) > 0 {
		m.Frame = parts[1]
	}
	if len(parts[2]) > 0 {
		m.Summary = parts[2]
	}
	return m, nil
}
