// Package browsertest starts Debian's Chromium headless under chromedp for
// Parley's browser tests, with the flags this closed network needs, and
// writes screenshots as test artifacts. Only tests import it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath returns the Chromium binary; PARLEY_CHROMIUM overrides it.
func ChromiumPath(t testing.TB) string {
	if p := os.Getenv("PARLEY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium found: run the README's test command (it installs Debian's chromium) or set PARLEY_CHROMIUM")
	return ""
}

// New starts a fresh headless browser with its own profile and returns a
// context for chromedp actions. Each call is a separate browser context,
// so two calls give two independent users (separate cookies and storage).
// width and height set the window (a phone is 390x844).
func New(t testing.TB, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(width, height),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// ArtifactDir is where screenshots go: $PARLEY_ARTIFACTS, or
// test-artifacts/ at the module root.
func ArtifactDir(t testing.TB) string {
	dir := os.Getenv("PARLEY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(moduleRoot(), "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact dir %s: %v", dir, err)
	}
	return dir
}

// Screenshot saves a full-page PNG named name.png in the artifact directory.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	name = strings.ReplaceAll(name, "/", "_")
	path := filepath.Join(ArtifactDir(t), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("write screenshot %s: %v", path, err)
	}
	return path
}

// WaitJS polls a JavaScript predicate in the page until it is truthy, and
// fails the test after d. A predicate that throws (for example while a
// navigation replaces the page) counts as false.
func WaitJS(t testing.TB, ctx context.Context, d time.Duration, predicate string) {
	t.Helper()
	deadline := time.Now().Add(d)
	expr := `(() => { try { return !!(` + predicate + `) } catch (e) { return false } })()`
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: timed out after %s (last error: %v)", predicate, d, lastErr)
}

// Eval evaluates an expression in the page, awaiting a promise, and
// decodes its value.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// moduleRoot is the directory of go.mod above the test's working
// directory (the working directory itself when there is none).
func moduleRoot() string {
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return wd
}
