package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--help"}, {"chat", "--help"}, {"moderate", "--help"}, {"analytics", "--help"},
		{"dashboard", "--help"}, {"moderate", "check", "--help"}, {"analytics", "replay", "--help"}, {"bench", "--help"}, {"broker", "--help"}, {"migrate", "--help"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut, strings.NewReader(""))
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("parley %s: err = %v, want flag.ErrHelp", strings.Join(args, " "), err)
		}
		if help := errOut.String() + out.String(); !strings.Contains(help, "Usage: parley "+args[0]) || !strings.Contains(help, "-") {
			t.Errorf("parley %s printed no usage:\n%s", strings.Join(args, " "), help)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, io.Discard, nil); err != nil || !strings.Contains(out.String(), "serve") {
		t.Errorf("parley help: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard, nil); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v", err)
	}
}

func TestBadConfigurationNamesTheValue(t *testing.T) {
	cases := []struct {
		env, value string
		args       []string
		want       string
	}{
		{"PARLEY_PARTITIONS", "lots", nil, `invalid value "lots" for PARLEY_PARTITIONS`},
		{"PARLEY_RETENTION", "forever", nil, `invalid value "forever" for PARLEY_RETENTION`},
		{"", "", []string{"--addr", "localhost"}, `--addr / PARLEY_ADDR "localhost" is not host:port`},
		{"", "", []string{"--partitions", "-1"}, "PARLEY_PARTITIONS -1 is not between 0 (automatic) and 1000"},
		{"", "", []string{"--log-level", "loud"}, `PARLEY_LOG_LEVEL "loud"`},
		{"", "", []string{"--brokers", "kafka"}, `PARLEY_BROKERS entry "kafka" is not host:port`},
		{"", "", []string{"--public-url", "example.com"}, "must start with http://"},
		{"", "", []string{"stray"}, `unexpected argument "stray"`},
	}
	for _, tc := range cases {
		if tc.env != "" {
			t.Setenv(tc.env, tc.value)
		}
		args := append([]string{"serve", "--data", t.TempDir()}, tc.args...)
		err := run(context.Background(), args, io.Discard, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %s=%s: err = %v, want it to say %q", tc.args, tc.env, tc.value, err, tc.want)
		}
		if tc.env != "" {
			t.Setenv(tc.env, "")
		}
	}
}

func TestRoleAloneNeedsBrokers(t *testing.T) {
	err := run(context.Background(), []string{"moderate", "--data", t.TempDir()}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "PARLEY_BROKERS is required") {
		t.Fatalf("err = %v", err)
	}
}

var openURL = regexp.MustCompile(`Open (http://[^ ]+)/\n`)

// startServe runs `parley serve` on a fresh data directory and returns its
// URL and a stop function that waits for a clean shutdown.
func startServe(t *testing.T, dataDir string, extra ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir}, extra...)
	go func() { done <- run(ctx, args, &out, &errOut, nil) }()
	var url string
	waitUntil(t, 60*time.Second, "serve to print its URL", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, errOut.String())
		default:
		}
		if m := openURL.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	})
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v on shutdown\n%s", err, errOut.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not stop within 30 s")
		}
	}
	t.Cleanup(stop)
	return url, stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServeIsReadyAndOwnsItsDataDirectory(t *testing.T) {
	dir := t.TempDir()
	url, stop := startServe(t, dir)
	var body string
	waitUntil(t, 30*time.Second, "/readyz 200", func() bool {
		code, b := get(t, url+"/readyz")
		body = b
		return code == http.StatusOK
	})
	for _, dep := range []string{`"kafka":"ok"`, `"sqlite:access":"ok"`} {
		if !strings.Contains(body, dep) {
			t.Errorf("/readyz does not report %s: %s", dep, body)
		}
	}
	if code, _ := get(t, url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, metrics := get(t, url+"/metrics"); code != http.StatusOK || !strings.Contains(metrics, "go_goroutines") {
		t.Errorf("/metrics = %d without Go metrics", code)
	}
	// A fresh serve has a site whose widget works on Parley's own /try page.
	if code, page := get(t, url+"/try"); code != http.StatusOK || !strings.Contains(page, `<script src="`+url+`/widget.js" data-site-key="pk_`) {
		t.Errorf("/try = %d without the first site's snippet:\n%s", code, page)
	}

	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "another parley is already running on data directory "+dir) {
		t.Fatalf("second serve on the same data directory: err = %v", err)
	}
	stop()
	// After a clean stop the directory is free again.
	url2, _ := startServe(t, dir)
	waitUntil(t, 30*time.Second, "restarted /readyz 200", func() bool {
		code, _ := get(t, url2+"/readyz")
		return code == http.StatusOK
	})
}
