package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Topics carry their retention, and the embedded broker enforces it.
func TestEmbeddedBrokerAppliesTopicRetention(t *testing.T) {
	broker := startBroker(t, t.TempDir())
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := broker.Addrs()
	spec := TopicSpec{Name: "short-lived", Partitions: 1, Retention: 200 * time.Millisecond}
	if err := EnsureTopics(ctx, brokers, []TopicSpec{spec}); err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: spec.Name, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("old-1")}, kafka.Message{Value: []byte("old-2")}); err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	firstOffset := func() int64 {
		res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{spec.Name: {kafka.FirstOffsetOf(0)}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Topics[spec.Name][0].FirstOffset
	}
	if got := firstOffset(); got != 0 {
		t.Fatalf("first offset before retention = %d", got)
	}
	waitFor(t, 10*time.Second, "retention to drop the expired records", func() bool {
		broker.ApplyRetention()
		return firstOffset() == 2
	})
}
