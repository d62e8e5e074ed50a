package chatsvc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/parleychat/parley/ingest"
)

// BenchmarkGroupCommit measures the writer alone, without sockets: each of
// `senders` visitors sends its next message as soon as the previous one
// committed, so batches form as they do under load. One op is one message
// stored with its conversation update and outbox row in the batch's
// transaction; it reports messages/s and the mean batch size.
//
//	go test ./chatsvc -run XXX -bench GroupCommit -benchtime 10000x
func BenchmarkGroupCommit(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, senders := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("%s/senders=%d", backend, senders), func(b *testing.B) {
				benchmarkGroupCommit(b, backend, senders)
			})
		}
	}
}

func benchmarkGroupCommit(b *testing.B, backend string, senders int) {
	e := newEnv(b, backend)
	ctx := context.Background()
	authors := make([]Author, senders)
	convs := make([]string, senders)
	for i := range authors {
		authors[i] = Author{Role: string(ingest.RoleVisitor), ID: ingest.NewID()}
		res, err := e.svc.send(ctx, sendReq{Author: authors[i], SiteID: e.site.ID, Kind: ingest.KindText, Text: "hello",
			Verdict: InlineVerdict{Action: ingest.ActionAllow}})
		if err != nil {
			b.Fatal(err)
		}
		convs[i] = res.Msg.ConversationID
	}
	batches0 := histogramCount(b, e.svc.metrics.commitBatch)
	per := b.N/senders + 1
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < per; j++ {
				_, err := e.svc.send(ctx, sendReq{Author: authors[i], SiteID: e.site.ID, ConversationID: convs[i],
					ClientID: fmt.Sprintf("b%d", j), Kind: ingest.KindText, Text: "a message of ordinary length for a support chat",
					Verdict: InlineVerdict{Action: ingest.ActionAllow}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	msgs := per * senders
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msgs/s")
	if n := histogramCount(b, e.svc.metrics.commitBatch) - batches0; n > 0 {
		b.ReportMetric(float64(msgs)/float64(n), "msgs/batch")
	}
}

// histogramCount reads how many observations a histogram holds.
func histogramCount(b testing.TB, h interface{ Write(*dto.Metric) error }) uint64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
