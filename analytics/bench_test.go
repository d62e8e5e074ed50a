package analytics

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// BenchmarkBuildFacts measures fact building, the CPU part of every batch.
func BenchmarkBuildFacts(b *testing.B) {
	g := newGenerator(1)
	var convs [][]ingest.Event
	events := 0
	for i := 0; i < 1000; i++ {
		c := g.conversation(time.Date(2024, 3, 29, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute))
		convs = append(convs, c)
		events += len(c)
	}
	p, err := siteProfileFromEvent(testSites(b, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, evs := range convs {
			BuildFacts(evs, p)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// benchmarkApply measures one loader batch of about 10 000 events end to end.
func benchmarkApply(b *testing.B, s Store) {
	g := newGenerator(2)
	a := newTestApplier(b, s)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	var total int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		batch := g.events(800, start.Add(time.Duration(i)*24*time.Hour), 24*time.Hour)
		total += len(batch)
		b.StartTimer()
		if _, err := a.apply(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkApplyBatchSQLite(b *testing.B)     { benchmarkApply(b, newSQLiteStore(b)) }
func BenchmarkApplyBatchClickHouse(b *testing.B) { benchmarkApply(b, newClickHouseStore(b)) }

// BenchmarkQueries10M loads ten million events into ClickHouse (database
// parley_bench_10000000, kept between runs and migrated like any other;
// PARLEY_BENCH_EVENTS changes the size, PARLEY_BENCH_PARALLELISM sets
// ClickHouseConfig.QueryParallelism) and times the main queries. Loading
// takes about 10 minutes; run it explicitly:
//
//	go test ./analytics -run '^$' -bench Queries10M -benchtime 5x -timeout 90m
func BenchmarkQueries10M(b *testing.B) {
	want := int64(10_000_000)
	if v := os.Getenv("PARLEY_BENCH_EVENTS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		want = n
	}
	par := 0 // PARLEY_BENCH_PARALLELISM sets ClickHouseConfig.QueryParallelism
	if v := os.Getenv("PARLEY_BENCH_PARALLELISM"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		par = n
	}
	ctx := context.Background()
	s, err := OpenClickHouse(ctx, ClickHouseConfig{Addr: clickhouseAddr(b), Database: "parley_bench_" + strconv.FormatInt(want, 10),
		ReadTimeout: 10 * time.Minute, QueryParallelism: par})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const days = 90
	have, err := s.EventCount(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if have < want {
		if err := s.Reset(ctx); err != nil {
			b.Fatal(err)
		}
		g := newGenerator(42)
		a := newTestApplier(b, s)
		loadStart := time.Now()
		var loaded int64
		// Conversations are generated in time order, a slice of the 90 days per batch.
		perBatch := 800
		for step := 0; loaded < want; step++ {
			at := start.Add(time.Duration(step) * time.Duration(float64(days*24*time.Hour)/float64(want/12/int64(perBatch)+1)))
			batch := g.events(perBatch, at, time.Hour)
			if _, err := a.apply(ctx, batch); err != nil {
				b.Fatal(err)
			}
			loaded += int64(len(batch))
			if step%100 == 0 {
				b.Logf("loaded %d events (%.0f events/s)", loaded, float64(loaded)/time.Since(loadStart).Seconds())
			}
		}
		b.Logf("loaded %d events in %s (%.0f events/s)", loaded, time.Since(loadStart).Round(time.Second), float64(loaded)/time.Since(loadStart).Seconds())
		_ = s.conn.Exec(ctx, "OPTIMIZE TABLE conversation_facts FINAL")
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	mk := func(q Query) Query {
		q.Location = berlin
		q.Now = start.Add(days * 24 * time.Hour)
		if err := q.Validate(); err != nil {
			b.Fatal(err)
		}
		return q
	}
	all := Query{From: start, To: start.Add(days * 24 * time.Hour), Bucket: BucketDay}
	queries := []struct {
		name string
		run  func() error
	}{
		{"report_90d_day", func() error { _, err := s.Report(ctx, mk(all)); return err }},
		{"report_30d_day", func() error {
			q := Query{From: start.Add(60 * 24 * time.Hour), To: start.Add(days * 24 * time.Hour), Bucket: BucketDay}
			_, err := s.Report(ctx, mk(q))
			return err
		}},
		{"report_90d_week_split_agent_business", func() error {
			q := all
			q.Bucket, q.Split, q.Clock = BucketWeek, DimAgent, ClockBusiness
			_, err := s.Report(ctx, mk(q))
			return err
		}},
		{"report_90d_week_split_team", func() error {
			q := all
			q.Bucket, q.Split = BucketWeek, DimTeam
			_, err := s.Report(ctx, mk(q))
			return err
		}},
		{"report_7d_hour_site_filter", func() error {
			q := Query{From: start.Add(30 * 24 * time.Hour), To: start.Add(37 * 24 * time.Hour), Bucket: BucketHour, Filter: Filter{SiteID: "s2"}}
			_, err := s.Report(ctx, mk(q))
			return err
		}},
		{"drilldown_missed_day", func() error {
			_, err := s.Conversations(ctx, mk(all), Drill{Bucket: "2024-02-01T00:00:00+01:00", Metric: "missed", Limit: 100})
			return err
		}},
		{"drilldown_late_day", func() error {
			_, err := s.Conversations(ctx, mk(all), Drill{Bucket: "2024-02-01T00:00:00+01:00", Metric: "late", Limit: 100})
			return err
		}},
		{"drilldown_transfers_in_day_agent", func() error {
			q := all
			q.Split = DimAgent
			_, err := s.Conversations(ctx, mk(q), Drill{Bucket: "2024-02-01T00:00:00+01:00", Key: "a1", Metric: "transfers_in", Limit: 100})
			return err
		}},
		{"moderation_90d_day", func() error {
			q := mk(all)
			facts, err := s.ModerationFacts(ctx, q)
			if err == nil {
				moderationReport(q, facts)
			}
			return err
		}},
		{"overview", func() error {
			_, err := s.Overview(ctx, "", start.Add(89*24*time.Hour), start.Add(days*24*time.Hour))
			return err
		}},
	}
	// On a shared machine wall time includes waiting for a CPU; with
	// PARLEY_BENCH_CLICKHOUSE_PID (the private server's pid, from
	// scripts/clickhouse.sh's DIR/pid) the server's own CPU time per
	// query is reported too.
	pid := os.Getenv("PARLEY_BENCH_CLICKHOUSE_PID")
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			cpu0 := processCPU(b, pid)
			for i := 0; i < b.N; i++ {
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
			}
			if pid != "" {
				b.ReportMetric(float64((processCPU(b, pid)-cpu0).Milliseconds())/float64(b.N), "server-cpu-ms/op")
			}
		})
	}
}

// processCPU is the user + system CPU time process pid has used so far
// (0 without a pid), from /proc/PID/stat in clock ticks of 10 ms.
func processCPU(b *testing.B, pid string) time.Duration {
	if pid == "" {
		return 0
	}
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime 14 and stime 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("read CPU time of %s: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// benchmarkApplyLive measures batches as `parley serve` sees them under
// chat load: 500 open conversations each gain one or two events per
// batch, so every batch rebuilds conversations whose earlier events are
// stored (served by the conversation cache when cache is true).
func benchmarkApplyLive(b *testing.B, s Store, cache bool) {
	g := newGenerator(3)
	a := newTestApplier(b, s)
	if cache {
		a.cache = newConvCache(defaultCacheEvents)
	} else {
		a.cache = nil
	}
	start := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	var convs [][]ingest.Event
	for i := 0; i < 500; i++ {
		convs = append(convs, g.conversation(start.Add(time.Duration(i)*time.Second)))
	}
	ctx := context.Background()
	var total int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var batch []ingest.Event
		for c := range convs {
			if n := min(len(convs[c]), 2); n > 0 {
				batch = append(batch, convs[c][:n]...)
				convs[c] = convs[c][n:]
			}
		}
		if len(batch) == 0 {
			for c := range convs {
				convs[c] = g.conversation(start.Add(time.Duration(i*1000+c) * time.Second))
			}
			b.StartTimer()
			continue
		}
		total += len(batch)
		b.StartTimer()
		if _, err := a.apply(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(a.cacheHits)/float64(max(1, a.cacheHits+a.storeReads)), "cache-hit-ratio")
}

func BenchmarkApplyLiveSQLite(b *testing.B)        { benchmarkApplyLive(b, newSQLiteStore(b), true) }
func BenchmarkApplyLiveSQLiteNoCache(b *testing.B) { benchmarkApplyLive(b, newSQLiteStore(b), false) }
func BenchmarkApplyLiveClickHouse(b *testing.B)    { benchmarkApplyLive(b, newClickHouseStore(b), true) }
func BenchmarkApplyLiveClickHouseNoCache(b *testing.B) {
	benchmarkApplyLive(b, newClickHouseStore(b), false)
}
