package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ConnectionsResult holds the connections scenario's figures.
type ConnectionsResult struct {
	Requested int `json:"requested"`
	// Attempted is Requested capped by the descriptors both processes may open.
	Attempted int `json:"attempted"`
	Opened    int `json:"opened"`
	// Held is how many were still open at the end of the hold.
	Held          int     `json:"held"`
	SourceAddrs   int     `json:"source_addresses"`
	ConnectPhaseS float64 `json:"connect_phase_s"`
	// HandshakeRate is sockets opened (session + upgrade + hello) per second.
	HandshakeRate float64 `json:"handshakes_per_s"`
	// Handshake is upgrade request → hello frame.
	Handshake Latency        `json:"handshake"`
	Failures  map[string]int `json:"failures,omitempty"`
	// Server memory before and after, and per held connection.
	RSSBeforeMB     float64 `json:"server_rss_before_mib"`
	RSSAfterMB      float64 `json:"server_rss_after_mib"`
	RSSPerConnKB    float64 `json:"server_rss_per_conn_kib"`
	GoMemPerConnKB  float64 `json:"server_go_mem_per_conn_kib"`
	GoroutinesAfter float64 `json:"server_goroutines_after"`
	ServerMaxFDs    float64 `json:"server_max_fds"`
	ServerOpenFDs   float64 `json:"server_open_fds_after"`
	BenchMaxFDs     uint64  `json:"bench_max_fds"`
}

func (r *ConnectionsResult) text(b *strings.Builder) {
	fmt.Fprintf(b, "  sockets                    requested %d, attempted %d, opened %d, held %d (from %d source addresses)\n", r.Requested, r.Attempted, r.Opened, r.Held, r.SourceAddrs)
	fmt.Fprintf(b, "  handshakes                 %.0f/s over %.1f s\n", r.HandshakeRate, r.ConnectPhaseS)
	fmtLatency(b, "handshake (upgrade→hello)", r.Handshake)
	if len(r.Failures) > 0 {
		fmt.Fprintf(b, "  failures                   %v\n", r.Failures)
	}
	fmt.Fprintf(b, "  server RSS                 %.1f MiB → %.1f MiB: %.2f KiB per connection\n", r.RSSBeforeMB, r.RSSAfterMB, r.RSSPerConnKB)
	fmt.Fprintf(b, "  server Go heap+stacks      %.2f KiB per connection, %.0f goroutines\n", r.GoMemPerConnKB, r.GoroutinesAfter)
	fmt.Fprintf(b, "  descriptors                server %0.f open of %.0f allowed; bench limit %d\n", r.ServerOpenFDs, r.ServerMaxFDs, r.BenchMaxFDs)
}

// goMem is the memory the Go runtime holds for heap objects and stacks.
func goMem(s serverSample) float64 {
	h, _ := s.value("go_memstats_heap_inuse_bytes")
	st, _ := s.value("go_memstats_stack_inuse_bytes")
	return h + st
}

func (e *env) runConnections(ctx context.Context) error {
	o := e.opts
	res := &ConnectionsResult{Requested: o.Count, Failures: map[string]int{}}
	e.report.Connections = res
	e.report.Settings = map[string]any{"count": o.Count, "per_ip": o.PerIP, "hold": o.Hold.String(), "concurrency": o.SetupConcurrency, "run": e.runID}

	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	res.BenchMaxFDs = limit
	e.status("connections: signing in")
	if err := e.signIn(ctx); err != nil {
		return err
	}
	st, err := e.admin.createSite(ctx, "bench connections "+e.runID, benchOrigin, 5)
	if err != nil {
		return err
	}
	before, err := scrape(ctx, e.admin.hc, e.baseURL)
	if err != nil {
		return err
	}
	res.ServerMaxFDs, _ = before.value("process_max_fds")
	openFDs, _ := before.value("process_open_fds")
	// Each socket costs one descriptor on each side; keep 64 spare for
	// the server's files, broker connections and this bench's own.
	n := o.Count
	if res.ServerMaxFDs > 0 {
		if room := int(res.ServerMaxFDs-openFDs) - 64; n > room {
			n = room
			e.report.note("the server may open %.0f descriptors (process_max_fds; %.0f in use): capped %d sockets to %d — raise its RLIMIT_NOFILE (ulimit -n) to go further", res.ServerMaxFDs, openFDs, o.Count, n)
		}
	}
	if room := int(limit) - 64; n > room {
		n = room
		e.report.note("this bench may open %d descriptors (RLIMIT_NOFILE hard limit): capped sockets to %d", limit, n)
	}
	if n < 1 {
		return fmt.Errorf("no room for any socket (server max fds %.0f, bench %d)", res.ServerMaxFDs, limit)
	}
	res.Attempted = n
	res.SourceAddrs = (n + o.PerIP - 1) / o.PerIP

	visitors := make([]*visitor, n)
	defer func() {
		_ = forEach(context.WithoutCancel(ctx), n, 64, func(_ context.Context, i int) error {
			if v := visitors[i]; v != nil {
				v.ws.close()
			}
			return nil
		})
	}()
	var clients visitorClients
	addrs := sourceAddrs{perAddr: o.PerIP}
	var handshake Recorder
	var opened atomic.Int64
	var fmu sync.Mutex
	start := time.Now()
	stop := startProgress(ctx, e.progress, func() string {
		el := time.Since(start).Seconds()
		return fmt.Sprintf("connections: %d/%d open (%.0f/s)", opened.Load(), n, float64(opened.Load())/el)
	})
	err = forEach(ctx, n, o.SetupConcurrency, func(ctx context.Context, i int) error {
		ip, err := addrs.addrFor(i)
		if err != nil {
			return err
		}
		v, took, err := e.openVisitor(ctx, &clients, st.Key, ip, 256, nil)
		if err != nil {
			fmu.Lock()
			res.Failures[failureKind(err)]++
			fmu.Unlock()
			return nil // counted; the rest go on
		}
		handshake.Record(took)
		visitors[i] = v
		opened.Add(1)
		return nil
	})
	connectPhase := time.Since(start)
	stop()
	if err != nil {
		return err
	}
	res.Opened = int(opened.Load())
	res.ConnectPhaseS = round3(connectPhase.Seconds())
	res.HandshakeRate = round3(float64(res.Opened) / connectPhase.Seconds())
	res.Handshake = handshake.Summary()

	// Hold, watching for sockets the server drops.
	holdUntil := time.Now().Add(o.Hold)
	stop = startProgress(ctx, e.progress, func() string {
		return fmt.Sprintf("connections: holding %d sockets, %.0fs left", countOpen(visitors), time.Until(holdUntil).Seconds())
	})
	select {
	case <-time.After(o.Hold):
	case <-ctx.Done():
	}
	stop()
	after, err := scrape(ctx, e.admin.hc, e.baseURL)
	if err != nil {
		return err
	}
	res.Held = countOpen(visitors)
	res.RSSBeforeMB, res.RSSAfterMB = mib(before.RSS()), mib(after.RSS())
	res.GoroutinesAfter, _ = after.value("go_goroutines")
	res.ServerOpenFDs, _ = after.value("process_open_fds")
	if res.Held > 0 {
		res.RSSPerConnKB = round3((after.RSS() - before.RSS()) / float64(res.Held) / 1024)
		res.GoMemPerConnKB = round3((goMem(after) - goMem(before)) / float64(res.Held) / 1024)
	}
	for _, v := range visitors {
		if v != nil && v.ws.closed() {
			res.Failures["dropped: "+v.ws.closeError()]++
		}
	}
	e.report.target("connections held", "100000 idle visitor sockets", fmt.Sprintf("%d of %d requested", res.Held, o.Count), res.Held >= 100_000)
	e.report.target("memory per connection", "< 10 KB server memory", fmt.Sprintf("%.2f KiB RSS (%.2f KiB Go heap+stacks)", res.RSSPerConnKB, res.GoMemPerConnKB), res.Held > 0 && res.RSSPerConnKB*1024 < 10_000)
	return nil
}

func countOpen(vs []*visitor) int {
	n := 0
	for _, v := range vs {
		if v != nil && !v.ws.closed() {
			n++
		}
	}
	return n
}

// failureKind shortens an error to a key for counting.
func failureKind(err error) string {
	s := err.Error()
	for _, k := range []string{"status 429", "status 403", "status 401", "status 503", "too many open files", "connection refused", "connection reset", "no answer within", "i/o timeout", "address already in use", "cannot assign requested address"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}
