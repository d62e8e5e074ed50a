package ingest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestProducerDeadLetter: events a consumer gives up on outside a batch
// land on the dead-letter topic wrapped with the group, the reason and
// where they came from.
func TestProducerDeadLetter(t *testing.T) {
	broker := startBroker(t, t.TempDir())
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, broker.Addrs(), DefaultTopics(1, 0)); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(ProducerConfig{Brokers: broker.Addrs()})
	defer p.Close()
	e := mustEvent(t, MessageSent, "c1", MessageSentPayload{MessageID: "m", Seq: 1, Kind: KindText})
	raw, _ := e.Encode()
	if err := p.DeadLetter(ctx, "g", "site unknown", kafka.Message{Topic: TopicChat, Partition: 0, Offset: 41, Key: []byte("c1"), Value: raw}); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: broker.Addrs(), Topic: TopicDeadLetter, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dl DeadLetterRecord
	if err := json.Unmarshal(m.Value, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Group != "g" || dl.Reason != "site unknown" || dl.Topic != TopicChat || dl.Offset != 41 || dl.Key != "c1" || dl.Value != string(raw) || string(m.Key) != "c1" {
		t.Fatalf("dead letter = %+v", dl)
	}
}
