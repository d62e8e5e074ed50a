package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// One conversation's burst lands in one partition; a producer allowed
// thousands of messages per batch must still keep each produce request
// under the broker's message size limit (1 MB by default, on Kafka and on
// the embedded broker), or the whole batch is refused.
func TestBurstOnOneConversationStaysUnderTheBrokersLimit(t *testing.T) {
	brokers := brokerWithTopics(t, 1)
	producer := producerOn(t, ProducerConfig{Brokers: brokers, BatchSize: 5000, BatchTimeout: 5 * time.Millisecond})
	text := strings.Repeat("a long message ", 40) // 600 bytes: 3,000 of them make 2 MB
	events := make([]Event, 3000)
	for i := range events {
		events[i] = mustEvent(t, MessageSent, "one-conversation", MessageSentPayload{MessageID: fmt.Sprint(i), Seq: int64(i + 1), Kind: KindText, Text: text})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := producer.Publish(ctx, events...); err != nil {
		t.Fatalf("publish 3,000 events of 600 bytes on one key: %v", shortened(err.Error()))
	}
	counts, _ := readChatTopic(t, brokers, 1)
	if len(counts) != len(events) {
		t.Fatalf("%d events on the topic, want %d", len(counts), len(events))
	}
}

func shortened(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
