package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const sampleMetrics = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 1.048576e+08
go_memstats_heap_inuse_bytes 5e+07
go_memstats_stack_inuse_bytes 1e+06
parley_events_published_total{topic="parley.chat.v1"} 40
parley_events_published_total{topic="weird } name"} 2
http_requests_total{code="200",path="/a b"} 7 1700000000000
`

func TestParseMetrics(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	if s.CPUSeconds() != 12.5 || s.RSS() != 104857600 {
		t.Errorf("cpu %v rss %v", s.CPUSeconds(), s.RSS())
	}
	if v, _ := s.value("parley_events_published_total"); v != 42 {
		t.Errorf("labelled sum = %v, want 42", v)
	}
	if v := s.values[`parley_events_published_total{topic="weird } name"}`]; v != 2 {
		t.Errorf("quoted brace label = %v", v)
	}
	if v, _ := s.value("http_requests_total"); v != 7 {
		t.Errorf("sample with timestamp = %v", v)
	}
	if goMem(s) != 51e6 {
		t.Errorf("goMem = %v", goMem(s))
	}
	for _, bad := range []string{"metric_without_value\n", "m{a=\"1\" 3\n", "m notanumber\n"} {
		if _, err := parseMetrics(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: err = %v, want it to name line 1", bad, err)
		}
	}
}

func TestUsageWatchReportsCPUAndPeakMemory(t *testing.T) {
	rss := []string{"1e8", "3e8", "2e8"}
	cpu := []string{"10", "11", "12"}
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := min(n, 2)
		n++
		w.Write([]byte("process_cpu_seconds_total " + cpu[i] + "\nprocess_resident_memory_bytes " + rss[i] + "\n"))
	}))
	defer srv.Close()
	u := newUsageWatch(srv.Client(), srv.URL)
	if _, err := u.usage(); err == nil {
		t.Fatal("usage with no samples must fail")
	}
	for i := 0; i < 3; i++ {
		if _, err := u.sample(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := u.usage()
	if err != nil {
		t.Fatal(err)
	}
	if got.CPUSeconds != 2 || got.RSSPeakMB != mib(3e8) || got.RSSStartMB != mib(1e8) || got.RSSEndMB != mib(2e8) || got.Scrapes != 3 {
		t.Fatalf("usage = %+v", got)
	}
	if got.CPUCores <= 2 { // 2 CPU-seconds in ~20 ms of wall time
		t.Fatalf("cpu cores = %v", got.CPUCores)
	}
	srv.Close()
	if _, err := scrape(context.Background(), srv.Client(), srv.URL); err == nil {
		t.Fatal("scrape of a closed server must fail")
	}
}
