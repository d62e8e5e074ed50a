package bench

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressWritesAtMostOncePerIntervalAndPadsOver(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	t0 := time.Unix(1000, 0)
	if !p.update(t0, "sent 100000 delivered 99000") {
		t.Fatal("first update was not written")
	}
	if p.update(t0.Add(999*time.Millisecond), "too soon") {
		t.Fatal("an update within the interval was written")
	}
	if !p.update(t0.Add(time.Second), "sent 5") {
		t.Fatal("update after the interval was not written")
	}
	p.finish()
	out := buf.String()
	want := "\rsent 100000 delivered 99000" + "\rsent 5" + strings.Repeat(" ", len("sent 100000 delivered 99000")-len("sent 5")) + "\n"
	if out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	if strings.Contains(out, "too soon") {
		t.Fatal("throttled text leaked")
	}
	p.finish() // a second finish adds nothing
	if buf.String() != want {
		t.Fatal("second finish wrote again")
	}
	var nilP *progress
	nilP.update(t0, "x") // a nil progress is silent
	nilP.finish()
}

func TestProgressRunRendersUntilStopped(t *testing.T) {
	var buf lockedBuffer
	p := newProgress(&buf)
	p.interval = 20 * time.Millisecond
	n := 0
	stop := startProgress(context.Background(), p, func() string { n++; return "tick" })
	time.Sleep(110 * time.Millisecond)
	stop()
	out := buf.String()
	lines := strings.Count(out, "\r")
	if lines < 2 || lines > 7 {
		t.Fatalf("%d updates in 110ms at 20ms intervals: %q", lines, out)
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("stopped progress did not end its line: %q", out)
	}
}
