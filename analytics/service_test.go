package analytics

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/analytics/chtest"
	"github.com/parleychat/parley/ingest"
)

// TestServiceOpensTheStoreInBackground: with ClickHouse down at start the
// service still serves (503 and "not connected" in readiness, within the
// probes' deadlines), connects when ClickHouse comes up, migrates and
// loads; a frozen ClickHouse later makes the pipeline endpoint answer
// "not ready" within its own deadline.
func TestServiceOpensTheStoreInBackground(t *testing.T) {
	t.Parallel()
	pc := chtest.Start(t)
	pc.Stop(t)
	b := startBroker(t)
	var store *ClickHouseStore
	srv := startAPI(t, Config{
		Open: func(ctx context.Context) (Store, error) {
			s, err := OpenClickHouse(ctx, ClickHouseConfig{Addr: pc.Addr, Database: "background", DialTimeout: time.Second, ReadTimeout: 10 * time.Second})
			if err == nil {
				store = s
			}
			return s, err
		},
		StoreName: "clickhouse at " + pc.Addr, Brokers: b.addrs, DeadLetter: b.producer, BatchWait: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.svc.Close()
	})

	if err := srv.svc.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "clickhouse at "+pc.Addr) {
		t.Fatalf("ready while ClickHouse is down = %v", err)
	}
	if code, body := srv.get(t, srv.supervisor, "/api/analytics/report"); code != http.StatusServiceUnavailable {
		t.Fatalf("report while ClickHouse is down = %d %s", code, body)
	}
	pipeline := func() (map[string]any, time.Duration) {
		t.Helper()
		start := time.Now()
		code, body := srv.get(t, srv.supervisor, "/api/analytics/pipeline")
		var out map[string]any
		if code != http.StatusOK || json.Unmarshal(body, &out) != nil {
			t.Fatalf("pipeline = %d %s", code, body)
		}
		return out, time.Since(start)
	}
	// Before the first attempt ends the error says the store is connecting, after it "not connected".
	if p, took := pipeline(); p["ready"] != false || !strings.Contains(p["error"].(string), "not connected") && !strings.Contains(p["error"].(string), "connecting to clickhouse") || took > pipelineTimeout+500*time.Millisecond {
		t.Fatalf("pipeline while ClickHouse is down = %v after %s", p, took)
	}

	pc.Restart(t)
	waitFor(t, 60*time.Second, "connected and ready", func() (bool, error) {
		err := srv.svc.Ready(context.Background())
		return err == nil, err
	})
	defer store.DropDatabase(context.Background())
	started, err := ingest.New(ingest.ConversationStarted, "s1", "bg-1", ingest.Actor{Role: ingest.RoleVisitor, ID: "v"}, time.Now().Add(-time.Minute),
		ingest.ConversationStartedPayload{Channel: "widget", VisitorID: "v"})
	if err != nil {
		t.Fatal(err)
	}
	events := append(testSites(t, time.Now().Add(-2*time.Hour)), started)
	b.publish(t, events)
	waitFor(t, 30*time.Second, "events loaded", func() (bool, error) {
		n, err := store.EventCount(context.Background())
		return n == int64(len(events)), err
	})

	pc.Signal(t, "STOP")
	for i := 0; i < 2; i++ {
		p, took := pipeline()
		if p["ready"] != false || took > pipelineTimeout+500*time.Millisecond {
			t.Fatalf("pipeline while ClickHouse hangs = %v after %s", p, took)
		}
	}
}
