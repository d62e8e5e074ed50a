package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// cpuTimes is the machine-wide CPU time from /proc/stat, in clock ticks.
type cpuTimes struct {
	total, idle uint64
	ok          bool
}

func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var t cpuTimes
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}
		}
		t.total += v
		if i == 3 || i == 4 { // idle, iowait
			t.idle += v
		}
	}
	t.ok = true
	return t
}

// busyCores is how many cores the whole machine kept busy between a and b.
func busyCores(a, b cpuTimes) float64 {
	if !a.ok || !b.ok || b.total <= a.total {
		return 0
	}
	busy := float64((b.total - a.total) - (b.idle - a.idle))
	return round3(busy / float64(b.total-a.total) * float64(runtime.NumCPU()))
}

// loadAvg1 is the one-minute load average (0 where unknown).
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
