package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// TestE2EConsoleVisitorPanelSurvivesBadTimezones: a visitor's own client
// claims the time zone "right/UTC" (Go loads it, browsers refuse it and
// the console's visitor panel threw on it): the server refuses the claim,
// and the agent's console shows the visitor panel, in Chromium.
func TestE2EConsoleVisitorPanelSurvivesBadTimezones(t *testing.T) {
	p := startE2E(t)
	p.createStaff("ada@tz.test", "Ada Agent", "agent")
	agent := browsertest.New(t, 1366, 900)
	loginUI(t, agent, p.base, "/app/console", "ada@tz.test", e2eStaffPassword)
	waitFor(t, agent, 15*time.Second, `document.querySelector('.live-dot')?.classList.contains('open')`)

	p.allowOrigin(p.site.ID, p.base)
	v := newGoVisitor(t, p.base, p.site.Key, p.base)
	v.send(map[string]any{"type": "context", "ref": "ctx", "page_url": "https://shop.example/checkout", "timezone": "right/UTC"})
	if f := v.expect("the context's answer", func(f map[string]any) bool { return f["ref"] == "ctx" }); f["type"] != "error" {
		t.Fatalf("a right/UTC context was accepted: %v", f)
	}
	v.say("tz-1", "What time is it where you are?")

	find := `[...document.querySelectorAll('#conv-list button[data-id]')].find(b => b.querySelector('.preview')?.textContent.includes('What time is it'))`
	waitFor(t, agent, 15*time.Second, "!!"+find)
	do(t, agent, "open the conversation", chromedp.Evaluate[chromedp.Void](find+".click()"))
	// The panel renders (a zone the browser refuses used to throw here).
	waitFor(t, agent, 15*time.Second, `[...document.querySelectorAll('#visitor-details dt')].some(d => d.textContent === 'Verified') &&
		![...document.querySelectorAll('#visitor-details dd')].some(d => d.textContent.includes('right/UTC'))`)
	browsertest.Screenshot(t, agent, "e2e-console-visitor-panel-timezone")
}
