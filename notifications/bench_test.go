package notifications

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkApply measures the notifications consumer's store write: one
// op is a batch of 400 chat events over 300 conversations, visitors'
// messages and agents' replies alternating, as `parley bench chat` makes them.
func BenchmarkApply(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			s := openStore(b, backend)
			ctx := context.Background()
			const size = 400
			t0 := time.Now()
			n := 0
			for b.Loop() {
				batch := make([]Change, size)
				for i := range batch {
					n++
					c := Change{Kind: ChangeVisitor, ConversationID: fmt.Sprintf("c%d", n%300), SiteID: "s1", At: t0.Add(time.Duration(n) * time.Millisecond), Seq: int64(n)}
					if n%2 == 0 {
						c.Kind, c.Due = ChangeReply, c.At.Add(time.Minute)
					}
					batch[i] = c
				}
				if err := s.Apply(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
