// Package ingesttest gives other packages' tests the real embedded broker
// with Parley's topics and a producer to it. It is imported by tests only.
package ingesttest

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// Broker starts an embedded broker in t's temporary directory with every
// Parley topic at the given partitions; it stops when t ends.
func Broker(t testing.TB, partitions int) *ingest.EmbeddedBroker {
	t.Helper()
	b, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start the embedded broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, b.Addrs(), ingest.DefaultTopics(partitions, 0)); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	return b
}

// Producer returns a producer to brokers, closed when t ends.
func Producer(t testing.TB, brokers []string) *ingest.Producer {
	t.Helper()
	p := ingest.NewProducer(ingest.ProducerConfig{Brokers: brokers})
	t.Cleanup(func() { p.Close() })
	return p
}
