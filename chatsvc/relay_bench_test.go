package chatsvc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// BenchmarkOutboxRelay measures the one outbox relay (ingest.Relay) over
// the chat store's outbox and the embedded broker: the outbox holds what
// group commits of `commit` messages leave, and each relay pass claims
// one such commit's rows, publishes them (RequiredAcks = all) and marks
// them sent, as it does when woken after every commit. One op is one
// event relayed.
//
//	go test ./chatsvc -run XXX -bench OutboxRelay -benchtime 20000x
func BenchmarkOutboxRelay(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, commit := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/commit=%d", backend, commit), func(b *testing.B) {
				benchmarkOutboxRelay(b, backend, commit)
			})
		}
	}
}

func benchmarkOutboxRelay(b *testing.B, backend string, commit int) {
	ctx := context.Background()
	store := openTestStore(b, backend)
	broker, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	if err := ingest.EnsureTopics(ctx, broker.Addrs(), ingest.DefaultTopics(4, 0)); err != nil {
		b.Fatal(err)
	}
	producer := ingest.NewProducer(ingest.ProducerConfig{Brokers: broker.Addrs()})
	defer producer.Close()
	relay, err := ingest.NewRelay(ingest.RelayConfig{Store: "chat", Outbox: store, Producer: producer, Batch: commit, Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]ingest.OutboxRecord, b.N)
	actor := ingest.Actor{Role: ingest.RoleVisitor, ID: "v-bench"}
	for i := range recs {
		e, err := ingest.New(ingest.MessageSent, "site-bench", fmt.Sprintf("conv-%d", i%64), actor, time.Now(),
			&ingest.MessageSentPayload{MessageID: ingest.NewID(), Seq: int64(i + 1), Kind: ingest.KindText, Text: "a message of ordinary length for a support chat"})
		if err != nil {
			b.Fatal(err)
		}
		if recs[i], err = ingest.NewOutboxRecord(e); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < len(recs); i += 1000 {
		if err := store.AppendOutbox(ctx, recs[i:min(i+1000, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	// The first publish opens the broker connections.
	b.ResetTimer()
	start := time.Now()
	if err := relay.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if pending, _, err := store.OutboxBacklog(ctx); err != nil || pending != 0 {
		b.Fatalf("backlog after flush = %d, %v", pending, err)
	}
}
