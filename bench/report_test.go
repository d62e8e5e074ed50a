package bench

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	r := &Report{
		Scenario: "chat", URL: "http://127.0.0.1:8080", StartedAt: time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC),
		Elapsed: 12.5, Machine: Machine{Cores: 2, MemoryGiB: 23.4, GoVersion: "go1.26", OS: "linux/amd64"},
		Settings: map[string]any{"rate": 2.0, "conversations": 10},
		Chat: &ChatResult{
			Conversations: 10, Agents: 1, Rate: 2, Sent: 200, Acked: 200, Delivered: 199, Undelivered: 1, DeliveredPerS: 19.9,
			Delivery: Latency{Count: 199, P50MS: 1.5, P90MS: 2, P99MS: 3.25, MaxMS: 9},
			Errors:   map[string]int64{"rate_limited": 1},
			Server:   &ServerUsage{CPUCores: 0.5, CPUSeconds: 5, RSSStartMB: 50, RSSPeakMB: 80, RSSEndMB: 70, Scrapes: 11},
		},
	}
	r.target("chat p99 latency", "< 50 ms", "3.25 ms", true)
	r.target("chat throughput", "≥ 20000 msg/s delivered", "20 msg/s", false)
	r.note("a note with %d", 42)
	return r
}

func TestReportText(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"parley bench chat against http://127.0.0.1:8080",
		"2 cores, 23.4 GiB",
		"settings: conversations=10 rate=2",
		"sent 200, acked 200, delivered 199, undelivered 1",
		"p50     1.50 ms",
		"p99     3.25 ms",
		"map[rate_limited:1]",
		"server CPU                 0.50 cores",
		"peak 80.0 MiB",
		"met    chat p99 latency",
		"MISSED chat throughput",
		"a note with 42",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	chat := back["chat"].(map[string]any)
	if chat["delivered_per_s"].(float64) != 19.9 || chat["delivery"].(map[string]any)["p99_ms"].(float64) != 3.25 {
		t.Errorf("chat figures lost: %v", chat)
	}
	if chat["server"].(map[string]any)["rss_peak_mib"].(float64) != 80 {
		t.Errorf("server usage lost: %v", chat["server"])
	}
	targets := back["targets"].([]any)
	if len(targets) != 2 || targets[1].(map[string]any)["met"].(bool) {
		t.Errorf("targets = %v", targets)
	}
	if _, ok := back["connections"]; ok {
		t.Error("empty scenario sections must be omitted")
	}
}

func TestSourceAddressesStayOnLoopback(t *testing.T) {
	a := sourceAddrs{perAddr: 25}
	for _, tc := range []struct {
		i    int
		want string
	}{{0, "127.0.0.2"}, {24, "127.0.0.2"}, {25, "127.0.0.3"}, {25 * 254, "127.0.1.0"}, {25 * 70000, "127.1.17.114"}} {
		ip, err := a.addrFor(tc.i)
		if err != nil || ip.String() != tc.want {
			t.Errorf("addrFor(%d) = %v, %v; want %s", tc.i, ip, err, tc.want)
		}
		if !ip.IsLoopback() {
			t.Errorf("%v is not loopback", ip)
		}
	}
	if _, err := (sourceAddrs{perAddr: 1}).addrFor(maxSourceAddrs); err == nil {
		t.Error("an address past 127.255.255.254 must fail")
	}
	if ip := loopbackAddr(maxSourceAddrs - 1); !ip.Equal(net.IPv4(127, 255, 255, 254)) {
		t.Errorf("last address = %v", ip)
	}
}

func TestOnlyLoopbackTargets(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "http://127.9.9.9:80/x"} {
		if _, err := checkLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://example.com", "https://127.0.0.1:1", "http://10.0.0.1:80", "::"} {
		if _, err := checkLoopback(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := checkLoopbackHostPort("--brokers", "127.0.0.1:9092"); err != nil {
		t.Error(err)
	}
	if err := checkLoopbackHostPort("--brokers", "kafka:9092"); err == nil || !strings.Contains(err.Error(), "--brokers") {
		t.Errorf("non-loopback broker: %v", err)
	}
}

func TestOptionsValidateNamesWhatIsMissing(t *testing.T) {
	cases := []struct {
		scenario string
		o        Options
		want     string
	}{
		{"chat", Options{}, "--admin-email and --admin-password, or --admin-file"},
		{"fly", Options{AdminFile: "x"}, `unknown scenario "fly"`},
		{"pipeline", Options{AdminFile: "x"}, "pipeline needs --brokers"},
		{"ingest", Options{AdminFile: "x", Brokers: []string{"127.0.0.1:1"}}, "ingest needs --clickhouse"},
		{"chat", Options{AdminFile: "x", URL: "http://192.0.2.1:80"}, "loopback"},
		{"chat", Options{AdminFile: "x", Rate: 5000}, "--rate 5000"},
	}
	for _, tc := range cases {
		tc.o.defaults()
		_, err := tc.o.validate(tc.scenario)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: err = %v, want %q", tc.scenario, tc.o, err, tc.want)
		}
	}
	o := Options{AdminFile: "x"}
	o.defaults()
	if _, err := o.validate("connections"); err != nil || o.SetupConcurrency != 64 {
		t.Errorf("connections defaults: %v, concurrency %d", err, o.SetupConcurrency)
	}
}

func TestReadAdminFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "initial-admin.txt")
	os.WriteFile(path, []byte("email: admin@parley.local\npassword: s3cret-Pw\n"), 0o600)
	c, err := readAdminFile(path)
	if err != nil || c.Email != "admin@parley.local" || c.Password != "s3cret-Pw" {
		t.Fatalf("got %+v, %v", c, err)
	}
	os.WriteFile(path, []byte("nothing here\n"), 0o600)
	if _, err := readAdminFile(path); err == nil || !strings.Contains(err.Error(), "want lines") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := readAdminFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestClientIDCarriesTheSendTime(t *testing.T) {
	run := &chatRun{prefix: "b1a2b3c4.", epoch: time.Now().Add(-time.Second)}
	id := run.clientID(1234, 'v', 99)
	if len(id) > 64 {
		t.Fatalf("client id %q longer than the protocol's 64 bytes", id)
	}
	at, ok := run.sentAt(id)
	if !ok || at < time.Second || at > 2*time.Second {
		t.Fatalf("sentAt(%q) = %v, %v", id, at, ok)
	}
	for _, other := range []string{"s1a2b3c4.5", "bzzzzzzzz.1.v1.abc", "b1a2b3c4.1.v1.not-base36!", "b1a2b3c4"} {
		if _, ok := run.sentAt(other); ok {
			t.Errorf("sentAt(%q) accepted a foreign id", other)
		}
	}
}

func TestChatRunCountsOnlyThePeersMessages(t *testing.T) {
	run := &chatRun{prefix: "bx.", epoch: time.Now(), errors: map[string]int64{}}
	id := run.clientID(1, 'v', 0)
	f, m, err := decodeFrame([]byte(`{"type":"message","message":{"id":"m1","client_id":"` + id + `","author":{"role":"visitor"},"kind":"text"}}`))
	if err != nil {
		t.Fatal(err)
	}
	run.onFrame(f, m, "agent") // a visitor's socket ignores visitor messages (own other tab)
	run.onFrame(f, m, "visitor")
	if run.delivered.Load() != 1 || run.delivery.Count() != 1 {
		t.Fatalf("delivered = %d", run.delivered.Load())
	}
	f, m, _ = decodeFrame([]byte(`{"type":"ack","client_id":"` + id + `","message_id":"m1","seq":2}`))
	run.onFrame(f, m, "agent")
	f, m, _ = decodeFrame([]byte(`{"type":"error","code":"rate_limited","message":"too many messages; retry in 1s"}`))
	run.onFrame(f, m, "agent")
	if run.acked.Load() != 1 || run.errors["rate_limited"] != 1 || f.errorText() != "too many messages; retry in 1s" {
		t.Fatalf("acked %d errors %v text %q", run.acked.Load(), run.errors, f.errorText())
	}
	if _, _, err := decodeFrame([]byte("not json")); err == nil {
		t.Fatal("bad frame accepted")
	}
}

func TestMachineCPUFromProcStat(t *testing.T) {
	a := readCPUTimes()
	if !a.ok {
		t.Fatal("/proc/stat not readable on this Linux machine")
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { // keep one core busy
	}
	b := readCPUTimes()
	got := busyCores(a, b)
	if got <= 0 || got > float64(thisMachine().Cores)+0.01 {
		t.Fatalf("busy cores = %v", got)
	}
	if busyCores(b, a) != 0 || busyCores(cpuTimes{}, b) != 0 {
		t.Fatal("invalid samples must give 0")
	}
	if loadAvg1() < 0 {
		t.Fatal("negative load average")
	}
}
