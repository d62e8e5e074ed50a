package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A patient consumer (FetchMinBytes) takes a trickle of records in a few
// large fetches, each held by the broker, instead of one per record or
// two, and still gets every record within a fraction of a second.
func TestPatientConsumerFetchesInFewBatches(t *testing.T) {
	brokers, producer := topicsAndProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	consumer, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: "patient", Topics: []string{TopicChat},
		BatchWait: time.Millisecond, FetchMinBytes: PatientFetch, DeadLetter: producer})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	batches, records := 0, 0
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- consumer.Run(runCtx, func(_ context.Context, batch []Record) ([]Reject, error) {
			mu.Lock()
			defer mu.Unlock()
			batches++
			records += len(batch)
			return nil, nil
		})
	}()
	defer func() { stop(); <-done }()

	const n = 60
	for i := range n { // a trickle: one record every 3 ms for about 0.2 s
		e := mustEvent(t, MessageSent, "c", MessageSentPayload{MessageID: fmt.Sprint(i), Seq: int64(i + 1), Kind: KindText, Text: "hi"})
		if err := producer.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	last := time.Now()
	waitFor(t, 5*time.Second, "every record handled", func() bool { mu.Lock(); defer mu.Unlock(); return records >= n })
	if lag := time.Since(last); lag > time.Second {
		t.Errorf("the last record took %v to arrive; a patient fetch is held for about 190 ms", lag)
	}
	mu.Lock()
	defer mu.Unlock()
	if batches > 6 {
		t.Fatalf("%d records trickling in over %v came in %d batches; a patient consumer should take them in a few held fetches", n, time.Duration(n)*3*time.Millisecond, batches)
	}
	t.Logf("%d records in %d batches", records, batches)
}
