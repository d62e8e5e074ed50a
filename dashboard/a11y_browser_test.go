package dashboard

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/browsertest"
)

func key(t *testing.T, ctx context.Context, k string, mods ...chromedp.Modifier) {
	t.Helper()
	var opts []chromedp.KeyOption
	if len(mods) > 0 {
		opts = append(opts, chromedp.KeyModifiers(mods...))
	}
	do(t, ctx, "press "+k, chromedp.KeyEvent(k, opts...))
}

// TestBrowserStaffKeyboardZoomTouch: the staff app by keyboard (skip
// link, the folded menu opened with Enter and closed with Escape, focus
// back on its button, a visible focus ring), at 200% zoom without
// horizontal scrolling, and with 44 px targets on a touch screen.
func TestBrowserStaffKeyboardZoomTouch(t *testing.T) {
	s := startServer(t)
	// 200% zoom of a 1280 x 800 window is 640 x 400 CSS pixels at scale 2.
	ctx := browsertest.New(t, 1280, 800)
	do(t, ctx, "zoom to 200%", chromedp.EmulateViewport(640, 400, chromedp.EmulateScale(2)))
	loginUI(t, ctx, s.URL, "/app/admin/users", "admin@example.test", testPassword)
	waitFor(t, ctx, `!!document.querySelector('#users-table')`)
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 640 {
		t.Errorf("at 200%% zoom the page is %d px wide in a 640 px window", w)
	}
	// Keyboard: the first Tab reaches the skip link, the next the menu button.
	do(t, ctx, "start from the top", chromedp.Evaluate[chromedp.Void](`document.activeElement?.blur()`))
	key(t, ctx, kb.Tab)
	if got := eval[string](t, ctx, `document.activeElement.className`); got != "skip-link" {
		t.Fatalf("first Tab focuses %q, want the skip link", got)
	}
	key(t, ctx, kb.Tab)
	if got := eval[string](t, ctx, `document.activeElement.id`); got != "nav-toggle" {
		t.Fatalf("second Tab focuses %q, want the menu button", got)
	}
	if ring := eval[string](t, ctx, `getComputedStyle(document.activeElement).outlineStyle`); ring == "none" {
		t.Error("the focused menu button shows no focus ring")
	}
	key(t, ctx, kb.Enter)
	waitFor(t, ctx, `document.body.classList.contains('nav-open') && document.activeElement.closest('#nav') !== null`)
	key(t, ctx, kb.Escape)
	waitFor(t, ctx, `!document.body.classList.contains('nav-open') && document.activeElement.id === 'nav-toggle' && document.querySelector('#nav-toggle').getAttribute('aria-expanded') === 'false'`)
	browsertest.Screenshot(t, ctx, "dashboard-zoom-200")

	// Touch screen: every visible control is at least 44 px high.
	phone := browsertest.New(t, 390, 844)
	do(t, phone, "emulate a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "pointer", Value: "coarse"}}})
			return err
		}))
	loginUI(t, phone, s.URL, "/app/admin/teams", "admin@example.test", testPassword)
	waitFor(t, phone, `!!document.querySelector('#new-team-form')`)
	small := eval[[]string](t, phone, `[...document.querySelectorAll('button, input:not([type=checkbox]):not([type=radio]), select')].filter(n => n.offsetParent !== null)
		.map(n => [n.id || n.className || n.tagName, n.getBoundingClientRect()]).filter(([, r]) => r.height < 44).map(([n, r]) => n + ' ' + Math.round(r.height))`)
	if len(small) > 0 {
		t.Errorf("touch targets under 44 px: %v", small)
	}
}
