package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/segmentio/kafka-go"
)

func TestChatThreadsAddTwoUnlessSetOrLimited(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		envSet               bool
		current, cores, want int
		change               bool
	}{
		{"no limit, 2 cores", false, 2, 2, 4, true},
		{"no limit, 16 cores", false, 16, 16, 18, true},
		{"GOMAXPROCS set by the operator", true, 2, 2, 2, false},
		{"GOMAXPROCS set above the cores", true, 8, 2, 8, false},
		{"container CPU limit below the cores", false, 2, 8, 2, false},
	} {
		got, change := chatThreads(tc.envSet, tc.current, tc.cores)
		if got != tc.want || change != tc.change {
			t.Errorf("%s: chatThreads(%v, %d, %d) = %d, %v; want %d, %v", tc.name, tc.envSet, tc.current, tc.cores, got, change, tc.want, tc.change)
		}
	}
}

func TestTopicPartitionsFollowWhereTheTopicsLive(t *testing.T) {
	for _, tc := range []struct {
		flag     int
		embedded bool
		want     int
	}{
		{0, true, 1}, {0, false, 4}, {8, true, 8}, {2, false, 2},
	} {
		if got := (settings{Partitions: tc.flag}).topicPartitions(tc.embedded); got != tc.want {
			t.Errorf("--partitions %d, embedded %v: %d partitions, want %d", tc.flag, tc.embedded, got, tc.want)
		}
	}
}

var gomaxprocsMetric = regexp.MustCompile(`(?m)^go_sched_gomaxprocs_threads (\d+)$`)

// TestServeDefaultsForOneMachine starts the built binary, once as it comes
// and once with GOMAXPROCS in its environment and --partitions given, and
// reads the threads each one reports on /metrics and the partitions of
// the chat topic on its embedded broker.
func TestServeDefaultsForOneMachine(t *testing.T) {
	bin := parleyBinary(t)
	cores := runtime.NumCPU()
	// The test's own default is the runtime's choice for this machine or
	// container (go test sets none), which serve starts from too.
	dflt, _ := chatThreads(false, runtime.GOMAXPROCS(0), cores)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	for _, tc := range []struct {
		env             []string
		args            []string
		want, wantParts int
	}{
		{nil, nil, dflt, 1},
		{[]string{"GOMAXPROCS=1"}, []string{"--partitions", "3"}, 1, 3},
	} {
		addr := freeAddr(t)
		_, kafkaPort, _ := net.SplitHostPort(freeAddr(t))
		args := append([]string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--addr", addr, "--kafka-port", kafkaPort, "--log-level", "warn"}, tc.args...)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env[:len(env):len(env)], tc.env...)
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() }) // if the test stops before SIGTERM
		var metrics string
		waitUntil(t, 60*time.Second, "serve's /metrics", func() bool {
			res, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				return false
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			metrics = string(b)
			return res.StatusCode == http.StatusOK
		})
		parts, err := kafka.LookupPartitions(context.Background(), "tcp", "127.0.0.1:"+kafkaPort, ingest.TopicChat)
		if err != nil {
			t.Errorf("serve %v: partitions of %s: %v", tc.args, ingest.TopicChat, err)
		} else if len(parts) != tc.wantParts {
			t.Errorf("serve %v: %s has %d partitions on the embedded broker; want %d", tc.args, ingest.TopicChat, len(parts), tc.wantParts)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("serve %v exited with %v:\n%s", tc.env, err, out.String())
		}
		m := gomaxprocsMetric.FindStringSubmatch(metrics)
		if m == nil {
			t.Fatalf("serve %v: no go_sched_gomaxprocs_threads on /metrics", tc.env)
		}
		if got, _ := strconv.Atoi(m[1]); got != tc.want {
			t.Errorf("serve %v runs Go code on %d threads; want %d (%d cores)", tc.env, got, tc.want, cores)
		}
	}
}
