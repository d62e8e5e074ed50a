package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress keeps one status line on a terminal: each update rewrites it
// with a carriage return, at most once per interval, padding over what the
// previous update left. Finish ends the line.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	interval time.Duration
	last     time.Time
	width    int
	wrote    bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w, interval: time.Second} }

// update rewrites the line with text unless the previous write was less
// than the interval before now. It reports whether it wrote.
func (p *progress) update(now time.Time, text string) bool {
	if p == nil || p.w == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wrote && now.Sub(p.last) < p.interval {
		return false
	}
	pad := ""
	if n := len(text); n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	fmt.Fprint(p.w, "\r"+text+pad)
	p.width = len(text)
	p.last = now
	p.wrote = true
	return true
}

// finish ends the status line so the next output starts on a fresh line.
func (p *progress) finish() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wrote {
		fmt.Fprintln(p.w)
		p.wrote = false
		p.width = 0
	}
}

// run updates the line with render() every interval until ctx ends, then
// finishes it. The caller owns the goroutine running it.
func (p *progress) run(ctx context.Context, render func() string) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.finish()
			return
		case now := <-t.C:
			p.update(now, render())
		}
	}
}

// startProgress runs p with render in its own goroutine and returns the
// function that stops it and waits for the line to be finished.
func startProgress(ctx context.Context, p *progress, render func() string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx, render)
	}()
	return func() {
		cancel()
		<-done
	}
}
