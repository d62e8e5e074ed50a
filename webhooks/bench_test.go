package webhooks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/egress"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// benchReceiver answers every delivery 204 after checking its signature
// and counts them.
func benchReceiver(b *testing.B, secret string) (string, *atomic.Int64) {
	var n atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if Verify(secret, r.Header.Get(HeaderSignature), body, time.Now(), DefaultTolerance) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/hook", &n
}

// BenchmarkDispatch measures deliveries per second from the store to a
// loopback receiver: b.N deliveries over 100 conversations (lanes), each
// lane in order, 16 in flight. Run: go test ./webhooks -run '^$' -bench Dispatch -benchtime 5000x
func BenchmarkDispatch(b *testing.B) {
	for _, backend := range sqltest.Backends {
		b.Run(backend, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := openStore(b, backend)
			url, got := benchReceiver(b, "whsec_bench")
			now := time.Now()
			if err := store.InsertEndpoint(ctx, Endpoint{ID: "e", SiteID: "s", URL: url, Events: []string{"*"}, Enabled: true, CreatedAt: now, UpdatedAt: now, Secret: "whsec_bench"}); err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"id":"x","type":"message.sent","version":1,"payload":{"text":"hello"}}`)
			var ds []Delivery
			for i := range b.N {
				ds = append(ds, Delivery{ID: ingest.NewID(), EndpointID: "e", EventID: fmt.Sprintf("ev-%d", i), EventType: "message.sent",
					Lane: fmt.Sprintf("conv-%d", i%100), Body: body, NextAt: now, CreatedAt: now})
			}
			for i := 0; i < len(ds); i += 1000 {
				if _, err := store.EnqueueDeliveries(ctx, ds[i:min(i+1000, len(ds))]); err != nil {
					b.Fatal(err)
				}
			}
			staff, err := access.OpenSQLite(ctx, sqltest.SQLite(b, "access"))
			if err != nil {
				b.Fatal(err)
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			svc, err := New(Config{Store: store, Guard: access.NewGuard(access.NewDirectory(staff), false, log),
				Egress: &egress.Policy{AllowHosts: []string{"127.0.0.1"}}, Poll: 20 * time.Millisecond, Logger: log})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			done := make(chan struct{})
			go func() { defer close(done); svc.dispatch(ctx) }()
			for got.Load() < int64(b.N) {
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
		})
	}
}
