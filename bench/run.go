package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/pprof"
	"time"
)

// benchOrigin is the Origin the bench's visitors come from; the run's site
// allows exactly it.
const benchOrigin = "http://bench.parley.invalid"

// env is what every scenario shares: the target, the admin session and the
// progress line.
type env struct {
	opts    Options
	base    *url.URL
	baseURL string
	runID   string
	admin   *api
	// adminUser is the signed-in admin (after signIn).
	adminUser staffUser
	progress  *progress
	report    *Report
}

// Run executes one scenario against a running Parley, prints its progress
// on stderr and its summary (text, or JSON with Options.JSON) on stdout, and
// returns the report. A scenario that cannot start returns an error; one
// that ran returns its report even when targets were missed.
func Run(ctx context.Context, scenario string, opts Options, stdout, stderr io.Writer) (*Report, error) {
	opts.defaults()
	base, err := opts.validate(scenario)
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", scenario, err)
	}
	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	e := &env{
		opts:     opts,
		base:     base,
		baseURL:  base.Scheme + "://" + base.Host,
		runID:    newRunID(),
		progress: newProgress(stderr),
		report: &Report{
			Scenario:  scenario,
			URL:       base.Scheme + "://" + base.Host,
			StartedAt: time.Now().UTC().Truncate(time.Second),
			Machine:   thisMachine(),
			Settings:  map[string]any{},
		},
	}
	start := time.Now()
	switch scenario {
	case "chat":
		err = e.runChat(ctx)
	case "connections":
		err = e.runConnections(ctx)
	case "pipeline":
		err = e.runPipeline(ctx)
	case "ingest":
		err = e.runIngest(ctx)
	}
	e.progress.finish()
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", scenario, err)
	}
	e.report.Elapsed = round3(time.Since(start).Seconds())
	if opts.JSON {
		err = e.report.WriteJSON(stdout)
	} else {
		err = e.report.WriteText(stdout)
	}
	return e.report, err
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

// signIn opens the admin session from the options.
func (e *env) signIn(ctx context.Context) error {
	creds := Credentials{Email: e.opts.AdminEmail, Password: e.opts.AdminPassword}
	if e.opts.AdminFile != "" {
		c, err := readAdminFile(e.opts.AdminFile)
		if err != nil {
			return err
		}
		creds = c
	}
	e.admin = &api{base: e.baseURL, hc: httpClientFrom(nil, 16)}
	u, err := e.admin.login(ctx, creds.Email, creds.Password)
	if err != nil {
		return err
	}
	e.adminUser = u
	return nil
}

// status prints one setup step on the progress line (always written).
func (e *env) status(format string, args ...any) {
	e.progress.mu.Lock()
	e.progress.last = time.Time{}
	e.progress.mu.Unlock()
	e.progress.update(time.Now(), fmt.Sprintf(format, args...))
}

// forEach runs fn for 0..n-1 on at most workers goroutines, stopping at
// the first error or when ctx ends. It returns that first error.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	done := make(chan struct{})
	if workers > n {
		workers = n
	}
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	for w := 0; w < workers; w++ {
		<-done
	}
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}
