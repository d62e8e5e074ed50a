package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestConsumerLagFromBrokerWhileHandlerIsStuck: the lag a consumer
// reports comes from the broker's end offsets and the group's commits, so
// it keeps growing while the handler is stuck on a batch (no fetch
// happens meanwhile), and drops to 0 once the events are committed.
func TestConsumerLagFromBrokerWhileHandlerIsStuck(t *testing.T) {
	broker := startBroker(t, t.TempDir())
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := broker.Addrs()
	if err := EnsureTopics(ctx, brokers, DefaultTopics(2, 0)); err != nil {
		t.Fatal(err)
	}
	producer := NewProducer(ProducerConfig{Brokers: brokers})
	defer producer.Close()
	publish := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			e := mustEvent(t, MessageSent, fmt.Sprintf("c%d", i%7), MessageSentPayload{MessageID: fmt.Sprint(i), Seq: int64(i + 1), Kind: KindText})
			if err := producer.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if lag, err := GroupLag(ctx, brokers, "lag-test", []string{TopicChat}); err != nil || lag != 0 {
		t.Fatalf("lag of a new group on empty topics = %d, %v", lag, err)
	}
	publish(0, 5)
	if lag, err := GroupLag(ctx, brokers, "lag-test", []string{TopicChat}); err != nil || lag != 5 {
		t.Fatalf("lag of a group that never committed = %d, %v; want 5", lag, err)
	}

	stuck := make(chan struct{})
	release := make(chan struct{})
	handled := 0
	c, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: "lag-test", Topics: []string{TopicChat}, BatchSize: 100,
		DeadLetter: producer, LagEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(_ context.Context, batch []Record) ([]Reject, error) {
			if handled == 0 {
				close(stuck)
				<-release
			}
			handled += len(batch)
			return nil, nil
		})
	}()
	<-stuck
	publish(5, 40)
	waitFor(t, 10*time.Second, "lag of 45 while the handler is stuck", func() bool { return c.Lag() == 45 })
	close(release)
	waitFor(t, 20*time.Second, "lag back to 0 after the commits", func() bool { return c.Lag() == 0 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if handled != 45 {
		t.Fatalf("handled %d events, want 45", handled)
	}
}
