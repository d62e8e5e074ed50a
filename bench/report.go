package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is what a run found: its settings, the scenario's figures, the
// issue's targets with whether they were met, and notes (limits hit,
// errors seen) to read the figures by.
type Report struct {
	Scenario  string         `json:"scenario"`
	URL       string         `json:"url"`
	StartedAt time.Time      `json:"started_at"`
	Elapsed   float64        `json:"elapsed_s"`
	Machine   Machine        `json:"machine"`
	Settings  map[string]any `json:"settings"`

	Chat        *ChatResult        `json:"chat,omitempty"`
	Connections *ConnectionsResult `json:"connections,omitempty"`
	Pipeline    *PipelineResult    `json:"pipeline,omitempty"`
	Ingest      *IngestResult      `json:"ingest,omitempty"`

	Targets []Target `json:"targets"`
	Notes   []string `json:"notes,omitempty"`
}

// Target is one of issue 7's goals and how this run measured up.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Machine is where the bench ran (the server shares it: loopback only).
type Machine struct {
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	GoVersion string  `json:"go"`
	OS        string  `json:"os"`
	// LoadAvg is the one-minute load average when the run started.
	LoadAvg float64 `json:"load_avg_1m"`
}

func thisMachine() Machine {
	return Machine{Cores: runtime.NumCPU(), MemoryGiB: memTotalGiB(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvg: loadAvg1()}
}

// memTotalGiB reads MemTotal from /proc/meminfo (0 where there is none).
func memTotalGiB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if n, _ := fmt.Sscanf(line, "MemTotal: %f kB", &kb); n == 1 {
			return round3(kb / (1 << 20))
		}
	}
	return 0
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Report) target(name, want, got string, met bool) {
	r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Met: met})
}

// WriteJSON prints the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteText prints the human summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "parley bench %s against %s\n", r.Scenario, r.URL)
	fmt.Fprintf(&b, "machine: %d cores, %.1f GiB, %s, %s, load average %.1f at start (bench and server share it)\n", r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.OS, r.Machine.GoVersion, r.Machine.LoadAvg)
	fmt.Fprintf(&b, "settings: %s\n", formatSettings(r.Settings))
	fmt.Fprintf(&b, "elapsed: %.1f s\n\n", r.Elapsed)
	switch {
	case r.Chat != nil:
		r.Chat.text(&b)
	case r.Connections != nil:
		r.Connections.text(&b)
	case r.Pipeline != nil:
		r.Pipeline.text(&b)
	case r.Ingest != nil:
		r.Ingest.text(&b)
	}
	if len(r.Targets) > 0 {
		b.WriteString("\ntargets (issue 7):\n")
		for _, t := range r.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(&b, "  %-6s %-28s want %-28s got %s\n", mark, t.Name, t.Want, t.Got)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func formatSettings(s map[string]any) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, s[k]))
	}
	return strings.Join(parts, " ")
}

func fmtLatency(b *strings.Builder, name string, l Latency) {
	if l.Count == 0 {
		fmt.Fprintf(b, "  %-26s no samples\n", name)
		return
	}
	fmt.Fprintf(b, "  %-26s p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (n=%d)\n", name, l.P50MS, l.P90MS, l.P99MS, l.MaxMS, l.Count)
}

func fmtUsage(b *strings.Builder, u *ServerUsage) {
	if u == nil {
		b.WriteString("  server usage               unavailable (see notes)\n")
		return
	}
	fmt.Fprintf(b, "  server CPU                 %.2f cores (%.1f CPU-s)\n", u.CPUCores, u.CPUSeconds)
	fmt.Fprintf(b, "  server RSS                 start %.1f MiB, peak %.1f MiB, end %.1f MiB\n", u.RSSStartMB, u.RSSPeakMB, u.RSSEndMB)
}
