package dashboard

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// do runs browser actions and fails the test on the first error.
func do(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript predicate until it is truthy (10 s
// deadline). Evaluation errors while a navigation replaces the page are
// retried; the last one is reported on timeout.
func waitFor(t testing.TB, ctx context.Context, predicate string) {
	t.Helper()
	browsertest.WaitJS(t, ctx, 10*time.Second, predicate)
}

// eval evaluates an expression (awaiting a promise) and decodes its value.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	return browsertest.Eval[T](t, ctx, expr)
}

// loginUI signs in through the login page, starting from path.
func loginUI(t testing.TB, ctx context.Context, base, path, email, password string) {
	t.Helper()
	do(t, ctx, "open "+path, chromedp.Navigate(base+path))
	waitFor(t, ctx, `location.pathname === '/login' && !!document.querySelector('#login-form')`)
	do(t, ctx, "fill login form",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, `location.pathname.startsWith('/app/') && document.querySelectorAll('#nav a').length > 0`)
}
