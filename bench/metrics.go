package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serverSample is one scrape of the server's /metrics.
type serverSample struct {
	At time.Time
	// values holds every sample by its full name including labels, e.g.
	// `parley_events_published_total{topic="parley.chat.v1"}`; sums holds
	// the total of every series of a metric name.
	values map[string]float64
	sums   map[string]float64
}

// value returns the metric summed over its labels, and whether it exists.
func (s serverSample) value(name string) (float64, bool) {
	v, ok := s.sums[name]
	return v, ok
}

// CPUSeconds is process_cpu_seconds_total.
func (s serverSample) CPUSeconds() float64 { v, _ := s.value("process_cpu_seconds_total"); return v }

// RSS is process_resident_memory_bytes.
func (s serverSample) RSS() float64 { v, _ := s.value("process_resident_memory_bytes"); return v }

// parseMetrics reads the Prometheus text exposition format. Comment lines
// are skipped; a line that does not parse is an error naming the line.
func parseMetrics(r io.Reader) (serverSample, error) {
	s := serverSample{values: map[string]float64{}, sums: map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		series, rest, ok := cutSeries(text)
		if !ok {
			return s, fmt.Errorf("metrics line %d: cannot parse %q", line, text)
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return s, fmt.Errorf("metrics line %d: no value in %q", line, text)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return s, fmt.Errorf("metrics line %d: value %q: %w", line, fields[0], err)
		}
		s.values[series] = v
		name, _, _ := strings.Cut(series, "{")
		s.sums[name] += v
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read metrics: %w", err)
	}
	return s, nil
}

// cutSeries splits `name{labels} value` into the series and the rest; a
// label value may hold spaces and braces inside quotes.
func cutSeries(line string) (series, rest string, ok bool) {
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return "", "", false
	}
	if line[i] != '{' {
		return line[:i], line[i:], true
	}
	inQuote, escaped := false, false
	for j := i + 1; j < len(line); j++ {
		c := line[j]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == '}' && !inQuote:
			return line[:j+1], line[j+1:], true
		}
	}
	return "", "", false
}

// scrape fetches base+"/metrics".
func scrape(ctx context.Context, hc *http.Client, base string) (serverSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return serverSample{}, fmt.Errorf("scrape metrics: %w", err)
	}
	res, err := hc.Do(req)
	if err != nil {
		return serverSample{}, fmt.Errorf("scrape %s/metrics: %w", base, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return serverSample{}, fmt.Errorf("scrape %s/metrics: status %d", base, res.StatusCode)
	}
	s, err := parseMetrics(res.Body)
	s.At = time.Now()
	return s, err
}

// ServerUsage is the server's resource use over a measured phase.
type ServerUsage struct {
	// CPUCores is CPU seconds used per wall second (2.0 = both cores busy).
	CPUCores float64 `json:"cpu_cores"`
	// CPUSeconds is the CPU time the server used during the phase.
	CPUSeconds float64 `json:"cpu_seconds"`
	// RSSStartMB, RSSPeakMB and RSSEndMB are resident memory in MiB.
	RSSStartMB float64 `json:"rss_start_mib"`
	RSSPeakMB  float64 `json:"rss_peak_mib"`
	RSSEndMB   float64 `json:"rss_end_mib"`
	// Scrapes is how many samples the figures come from.
	Scrapes int `json:"scrapes"`
}

// usageWatch samples the server's metrics about once a second during a
// phase so that the peak RSS is seen, not only the end.
type usageWatch struct {
	hc    *http.Client
	base  string
	mu    sync.Mutex
	first serverSample
	last  serverSample
	peak  float64
	n     int
	err   error
}

func newUsageWatch(hc *http.Client, base string) *usageWatch {
	return &usageWatch{hc: hc, base: base}
}

// sample scrapes once and folds the result in.
func (u *usageWatch) sample(ctx context.Context) (serverSample, error) {
	s, err := scrape(ctx, u.hc, u.base)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		if u.err == nil {
			u.err = err
		}
		return s, err
	}
	if u.n == 0 {
		u.first = s
	}
	u.last = s
	if rss := s.RSS(); rss > u.peak {
		u.peak = rss
	}
	u.n++
	return s, nil
}

// run samples every interval until ctx ends. The caller owns the goroutine.
func (u *usageWatch) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = u.sample(ctx) // the first error is kept and reported by usage
		}
	}
}

// usage summarises the samples taken; it needs at least two.
func (u *usageWatch) usage() (ServerUsage, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n < 2 {
		if u.err != nil {
			return ServerUsage{}, u.err
		}
		return ServerUsage{}, fmt.Errorf("server usage: only %d scrapes of %s/metrics", u.n, u.base)
	}
	wall := u.last.At.Sub(u.first.At).Seconds()
	cpu := u.last.CPUSeconds() - u.first.CPUSeconds()
	out := ServerUsage{
		CPUSeconds: round3(cpu),
		RSSStartMB: mib(u.first.RSS()),
		RSSPeakMB:  mib(u.peak),
		RSSEndMB:   mib(u.last.RSS()),
		Scrapes:    u.n,
	}
	if wall > 0 {
		out.CPUCores = round3(cpu / wall)
	}
	return out, nil
}

func mib(b float64) float64 { return round3(b / (1 << 20)) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
