// Package chtest runs a ClickHouse server of a test's own (with
// scripts/clickhouse.sh), for tests that stop, freeze or restart it to
// prove that Parley survives an analytics store outage.
package chtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Server is a private ClickHouse server; it is stopped when the test ends.
type Server struct {
	// Addr is the native protocol address (host:port).
	Addr   string
	dir    string
	script string
	frozen bool
}

// Start starts a server in a temporary directory. It needs ClickHouse
// installed, as the suites that use it need PARLEY_TEST_CLICKHOUSE anyway.
func Start(t testing.TB) *Server {
	t.Helper()
	if os.Getenv("PARLEY_TEST_CLICKHOUSE") == "" {
		t.Fatal("PARLEY_TEST_CLICKHOUSE is not set: start ClickHouse with scripts/clickhouse.sh start DIR (scripts/test.sh does) and export the address it prints")
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("chtest: cannot locate scripts/clickhouse.sh")
	}
	s := &Server{dir: t.TempDir(), script: filepath.Join(filepath.Dir(file), "..", "..", "scripts", "clickhouse.sh")}
	s.Addr = strings.TrimPrefix(s.run(t, "start"), "PARLEY_TEST_CLICKHOUSE=")
	t.Cleanup(func() {
		if s.frozen {
			s.Signal(t, "CONT") // a failed test must not leave it frozen for the stop
		}
		exec.Command(s.script, "stop", s.dir).Run()
	})
	return s
}

// Stop stops the server (its data stays for Restart).
func (s *Server) Stop(t testing.TB) { t.Helper(); s.run(t, "stop") }

// Restart starts the stopped server again on the same address and data.
func (s *Server) Restart(t testing.TB) { t.Helper(); s.run(t, "start") }

// Signal sends sig (STOP freezes the server: connections open but nothing
// answers; CONT thaws it).
func (s *Server) Signal(t testing.TB, sig string) {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(s.dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("kill", "-"+sig, strings.TrimSpace(string(pid))).CombinedOutput(); err != nil {
		t.Fatalf("kill -%s: %v %s", sig, err, out)
	}
	s.frozen = sig == "STOP"
	if s.frozen {
		waitStopped(t, strings.TrimSpace(string(pid)))
	}
}

// waitStopped waits until every thread of the process is stopped: kill
// returns before the kernel has stopped a busy thread, and a thread still
// running may answer one more query, so a test would see it unfrozen.
func waitStopped(t testing.TB, pid string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		running, err := runningThreads(pid)
		if err == nil && running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clickhouse (pid %s) still has %d running threads 10s after SIGSTOP (%v)", pid, running, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runningThreads counts the threads of pid not in the stopped state ('T'
// in /proc/PID/task/TID/stat, the field after the command's ')').
func runningThreads(pid string) (int, error) {
	stats, err := filepath.Glob(filepath.Join("/proc", pid, "task", "*", "stat"))
	if err != nil || len(stats) == 0 {
		return 0, fmt.Errorf("no threads listed for pid %s: %v", pid, err)
	}
	running := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return 0, fmt.Errorf("unexpected %s: %q", f, b)
		}
		if state := b[i+2]; state != 'T' && state != 't' {
			running++
		}
	}
	return running, nil
}

func (s *Server) run(t testing.TB, cmd string) string {
	t.Helper()
	out, err := exec.Command(s.script, cmd, s.dir).CombinedOutput()
	if err != nil {
		t.Fatalf("clickhouse.sh %s: %v\n%s", cmd, err, out)
	}
	return strings.TrimSpace(string(out))
}
