package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/bench"
)

// freePort returns a port that was free a moment ago (for --kafka-port).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runBenchJSON runs `parley bench <args> --json` and decodes its report.
func runBenchJSON(t *testing.T, args ...string) (bench.Report, string) {
	t.Helper()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := run(ctx, append([]string{"bench"}, append(args, "--json")...), &out, &errOut, nil); err != nil {
		t.Fatalf("parley bench %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	var r bench.Report
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("bench --json printed no report: %v\n%s", err, out.String())
	}
	return r, errOut.String()
}

// TestBenchAgainstServe runs small chat and connections scenarios against
// a real `parley serve` on a fresh data directory: real WebSockets, the
// embedded broker, SQLite.
func TestBenchAgainstServe(t *testing.T) {
	dir := t.TempDir()
	kafkaPort := freePort(t)
	url, _ := startServe(t, dir, "--kafka-port", strconv.Itoa(kafkaPort), "--log-level", "warn")
	waitUntil(t, 30*time.Second, "/readyz 200", func() bool {
		code, _ := get(t, url+"/readyz")
		return code == 200
	})
	adminFile := filepath.Join(dir, "initial-admin.txt")
	brokers := "127.0.0.1:" + strconv.Itoa(kafkaPort)

	t.Run("chat", func(t *testing.T) {
		r, progress := runBenchJSON(t, "chat", "--url", url, "--admin-file", adminFile, "--brokers", brokers,
			"--conversations", "6", "--rate", "4", "--duration", "2s", "--agents", "2")
		c := r.Chat
		if c == nil {
			t.Fatalf("report has no chat section: %+v", r)
		}
		// 6 conversations × 2 msg/s per side × 2 sides × 2 s = 48 messages.
		if c.Sent != 48 || c.Acked != c.Sent || c.Delivered != c.Sent {
			t.Errorf("sent %d acked %d delivered %d, want 48 each", c.Sent, c.Acked, c.Delivered)
		}
		if len(c.Errors) != 0 {
			t.Errorf("errors: %v", c.Errors)
		}
		if c.Delivery.Count != c.Delivered || c.Delivery.P50MS <= 0 || c.Delivery.P99MS < c.Delivery.P50MS || c.Delivery.MaxMS < c.Delivery.P99MS {
			t.Errorf("delivery latency = %+v", c.Delivery)
		}
		if c.Kafka == nil || c.Kafka.Published != c.Acked {
			t.Errorf("kafka check = %+v, want every acked message published", c.Kafka)
		}
		if c.Server == nil || c.Server.RSSPeakMB <= 0 || c.Server.CPUSeconds <= 0 {
			t.Errorf("server usage = %+v", c.Server)
		}
		if c.DeliveredPerS < 20 || c.DeliveredPerS > 26 {
			t.Errorf("delivered %.1f msg/s, want about 24", c.DeliveredPerS)
		}
		if !strings.Contains(progress, "\rchat:") {
			t.Errorf("no progress line on stderr: %q", progress)
		}
		names := map[string]bool{}
		for _, tg := range r.Targets {
			names[tg.Name] = tg.Met
		}
		if !names["chat nothing lost"] || !names["chat published to Kafka"] {
			t.Errorf("targets = %+v", r.Targets)
		}
	})

	t.Run("connections", func(t *testing.T) {
		r, _ := runBenchJSON(t, "connections", "--url", url, "--admin-file", adminFile, "--count", "60", "--per-ip", "7", "--hold", "500ms")
		c := r.Connections
		if c == nil {
			t.Fatalf("report has no connections section")
		}
		if c.Opened != 60 || c.Held != 60 || len(c.Failures) != 0 {
			t.Errorf("opened %d held %d failures %v", c.Opened, c.Held, c.Failures)
		}
		if c.SourceAddrs != 9 {
			t.Errorf("source addresses = %d, want ceil(60/7) = 9", c.SourceAddrs)
		}
		if c.HandshakeRate <= 0 || c.Handshake.Count != 60 || c.ServerMaxFDs <= 0 {
			t.Errorf("handshakes %.1f/s %+v, server max fds %.0f", c.HandshakeRate, c.Handshake, c.ServerMaxFDs)
		}
	})

	t.Run("pipeline", func(t *testing.T) {
		r, _ := runBenchJSON(t, "pipeline", "--url", url, "--admin-file", adminFile, "--brokers", brokers,
			"--messages", "40", "--rate", "40", "--conversations", "10")
		p := r.Pipeline
		if p == nil {
			t.Fatalf("report has no pipeline section")
		}
		if p.Sent != 40 || p.Acked != 40 {
			t.Errorf("sent %d acked %d, want 40", p.Sent, p.Acked)
		}
		if p.Verdict.Count != 40 || p.Verdicts["worker"] < 40 || p.Verdict.P50MS <= 0 {
			t.Errorf("verdicts %+v by stage %v, want a worker verdict for each message", p.Verdict, p.Verdicts)
		}
		if p.Analytics.Count != 40 || p.AnalyticsCount != 40 || p.Analytics.P99MS <= 0 {
			t.Errorf("analytics freshness %+v (counted %d), want all 40", p.Analytics, p.AnalyticsCount)
		}
	})

	t.Run("refuses a non-loopback target", func(t *testing.T) {
		err := run(context.Background(), []string{"bench", "chat", "--url", "http://192.0.2.10:8080", "--admin-file", adminFile}, &syncBuffer{}, &syncBuffer{}, nil)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestBenchIngestAgainstClickHouse runs the ingest scenario against
// `parley serve --clickhouse` on the test ClickHouse.
func TestBenchIngestAgainstClickHouse(t *testing.T) {
	ch := os.Getenv("PARLEY_TEST_CLICKHOUSE")
	if ch == "" {
		t.Fatal("PARLEY_TEST_CLICKHOUSE is not set: start ClickHouse with scripts/clickhouse.sh start DIR (scripts/test.sh does) and export the address it prints")
	}
	dir := t.TempDir()
	kafkaPort := freePort(t)
	db := fmt.Sprintf("bench_test_%d", time.Now().UnixNano())
	url, _ := startServe(t, dir, "--kafka-port", strconv.Itoa(kafkaPort), "--clickhouse", ch, "--clickhouse-db", db, "--log-level", "warn")
	waitUntil(t, 30*time.Second, "/readyz 200", func() bool {
		code, _ := get(t, url+"/readyz")
		return code == 200
	})
	r, _ := runBenchJSON(t, "ingest", "--url", url, "--admin-file", filepath.Join(dir, "initial-admin.txt"), "--brokers", "127.0.0.1:"+strconv.Itoa(kafkaPort),
		"--clickhouse", ch, "--clickhouse-db", db, "--events", "3000", "--loader-timeout", "60s")
	in := r.Ingest
	if in == nil {
		t.Fatalf("report has no ingest section")
	}
	if in.Loaded != 3000 || in.RawPerS <= 0 || in.LoaderPerS <= 0 || in.Ratio <= 0 {
		t.Errorf("ingest = %+v, want all 3000 loaded and both rates measured", in)
	}
	if len(r.Targets) != 1 || r.Targets[0].Name != "ingest loader rate" {
		t.Errorf("targets = %+v", r.Targets)
	}
}
