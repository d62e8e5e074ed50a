package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// DeadLetterRecord is what lands on TopicDeadLetter: the original bytes,
// where they came from and why they could not be used.
type DeadLetterRecord struct {
	Reason    string `json:"reason"`
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key,omitempty"`
	// Value holds the original bytes as text when they are valid UTF-8;
	// otherwise ValueBase64 holds them (json.Marshal of []byte).
	Value       string `json:"value,omitempty"`
	ValueBase64 []byte `json:"value_base64,omitempty"`
	At          Millis `json:"at"`
}

// NewDeadLetter wraps a message that could not be used.
func NewDeadLetter(m kafka.Message, group, reason string) (kafka.Message, error) {
	rec := DeadLetterRecord{
		Reason: reason, Group: group, Topic: m.Topic, Partition: m.Partition,
		Offset: m.Offset, Key: string(m.Key), At: At(time.Now()),
	}
	if utf8.Valid(m.Value) {
		rec.Value = string(m.Value)
	} else {
		rec.ValueBase64 = m.Value
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode dead letter: %w", err)
	}
	return kafka.Message{Topic: TopicDeadLetter, Key: m.Key, Value: b}, nil
}

// DeadLetter publishes msgs, the original messages of events that group
// cannot use, to TopicDeadLetter with the reason (for events a consumer
// held back and gives up on later, outside its batch).
func (p *Producer) DeadLetter(ctx context.Context, group, reason string, msgs ...kafka.Message) error {
	out := make([]kafka.Message, 0, len(msgs))
	for _, m := range msgs {
		dl, err := NewDeadLetter(m, group, reason)
		if err != nil {
			return err
		}
		out = append(out, dl)
	}
	if len(out) == 0 {
		return nil
	}
	return p.publishRaw(ctx, out)
}
