package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
	"github.com/parleychat/parley/webhooks"
)

// hookReceiver is a webhook receiver on loopback that keeps the event
// types it got whose signature verified with secret.
type hookReceiver struct {
	url    string
	mu     sync.Mutex
	secret string
	types  []string
	bad    int
}

func startHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	r := &hookReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhooks.Verify(r.secret, req.Header.Get(webhooks.HeaderSignature), body, time.Now(), webhooks.DefaultTolerance); err != nil {
			r.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type string `json:"type"`
		}
		json.Unmarshal(body, &ev)
		r.types = append(r.types, ev.Type)
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.url = "http://" + ln.Addr().String() + "/parley"
	return r
}

func (r *hookReceiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.types...)
}

// TestE2EAdminCreatesTokenAndWebhook: in the staff app an admin creates an
// API token (its secret shown once works against the API) and a webhook
// for message.sent whose test event and real events reach a receiver,
// signed with the secret the page showed.
func TestE2EAdminCreatesTokenAndWebhook(t *testing.T) {
	p := startE2E(t, "--egress-allow-hosts", "127.0.0.1")
	ctx := browsertest.New(t, 1366, 1000)
	loginUI(t, ctx, p.base, "/app/admin/tokens", initialAdminEmail, e2eAdminPassword)
	waitFor(t, ctx, 15*time.Second, `!!document.querySelector('#new-token-form') && document.querySelectorAll('#token-sites option').length === 1`)
	do(t, ctx, "fill the token form",
		chromedp.SendKeys(chromedp.CSS("#token-name"), "CRM sync"),
		chromedp.Click(chromedp.CSS(`input[name=scope][value="conversations:read"]`)),
		chromedp.Click(chromedp.CSS("#create-token")))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#new-token-secret')?.value.startsWith('pat_') && document.querySelector('#tokens-list').textContent.includes('CRM sync')`)
	secret := eval[string](t, ctx, `document.querySelector('#new-token-secret').value`)
	browsertest.Screenshot(t, ctx, "e2e-admin-token-created")
	var list struct {
		Conversations []any `json:"conversations"`
	}
	tokenClient(t, p.base, secret).call("GET", "/api/chat/conversations", nil, http.StatusOK, &list)

	rcv := startHookReceiver(t)
	do(t, ctx, "open the webhooks page", chromedp.Navigate(p.base+"/app/admin/webhooks"))
	waitFor(t, ctx, 15*time.Second, `document.querySelectorAll('#webhook-site option').length === 1`)
	do(t, ctx, "fill the webhook form",
		chromedp.SendKeys(chromedp.CSS("#webhook-url"), rcv.url),
		chromedp.Click(chromedp.CSS(`input[name=event][value="message.sent"]`)),
		chromedp.Click(chromedp.CSS("#create-webhook")))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#webhook-secret-value')?.value.startsWith('whsec_') && document.querySelector('#webhooks-list').textContent.includes(`+jsString(rcv.url)+`)`)
	rcv.mu.Lock()
	rcv.secret = eval[string](t, ctx, `document.querySelector('#webhook-secret-value').value`)
	rcv.mu.Unlock()
	do(t, ctx, "send a test event", chromedp.Click(chromedp.CSS(`button[data-test]`)))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#webhook-test-result')?.textContent.includes('delivered: HTTP 200')`)
	browsertest.Screenshot(t, ctx, "e2e-admin-webhook-test-delivered")

	v := newGoVisitor(t, p.base, p.site.Key, p.base)
	v.say("w1", "Hello webhooks")
	waitUntil(t, 30*time.Second, "message.sent at the receiver", func() bool {
		got := rcv.got()
		return len(got) == 2 && got[0] == webhooks.TestEventType && got[1] == "message.sent"
	})
	if rcv.bad != 0 {
		t.Fatalf("%d deliveries failed the signature check", rcv.bad)
	}
}

// TestE2EConsoleUnreadBadgeAndSound: a visitor writes while the agent
// looks at another conversation: the console counts it unread in the
// conversation, next to the Inbox link and in the tab title, and plays
// the chime (the page's own record says so). A supervisor whose queue
// alert is at a few seconds sees the alert on the live overview when a
// visitor waits longer.
func TestE2EConsoleUnreadBadgeAndSound(t *testing.T) {
	p := startE2E(t)
	p.createStaff("ada@alerts.test", "Ada Agent", "agent")
	agent := browsertest.New(t, 1366, 900)
	loginUI(t, agent, p.base, "/app/console", "ada@alerts.test", e2eStaffPassword)
	waitFor(t, agent, 15*time.Second, `document.querySelector('.live-dot')?.classList.contains('open')`)
	do(t, agent, "click the page (browsers play sound after a gesture)", chromedp.Click(chromedp.CSS("#page-title")))

	first := newGoVisitor(t, p.base, p.site.Key, p.base)
	first.say("a1", "First visitor here")
	consoleReply(t, agent, "First visitor here", "Hello first!", "Hello first!")
	before := eval[int](t, agent, `window.parleyAlerts.soundsPlayed`)

	second := newGoVisitor(t, p.base, p.site.Key, p.base)
	second.say("b1", "Second visitor asks")
	waitFor(t, agent, 15*time.Second, `!!document.querySelector('#conv-list .badge[data-unread]')`)
	second.say("b2", "Anyone there?")
	waitFor(t, agent, 15*time.Second, `document.body.dataset.unread >= 1 && document.querySelector('#nav-unread')?.textContent === document.body.dataset.unread && /^\(\d+\) /.test(document.title)`)
	waitFor(t, agent, 15*time.Second, fmt.Sprintf(`window.parleyAlerts.soundsPlayed > %d`, before))
	browsertest.Screenshot(t, agent, "e2e-console-unread-badge")
	if s := eval[string](t, agent, `window.parleyAlerts.lastSound`); s == "" {
		t.Error("no sound recorded")
	}

	// Opening the conversation clears the count.
	consoleReply(t, agent, "Anyone there?", "Yes, here!", "Yes, here!")
	waitFor(t, agent, 15*time.Second, `document.body.dataset.unread === '0' && !document.querySelector('#nav-unread') && !/^\(\d+\) /.test(document.title)`)

	// The supervisors' queue alert.
	p.createStaff("sam@alerts.test", "Sam Supervisor", "supervisor")
	sam := signIn(t, p.base, "sam@alerts.test", e2eStaffPassword)
	sam.call("PUT", "/api/notifications/preferences", map[string]any{"sound": true, "desktop_new_conversation": true, "desktop_mention": true, "desktop_transfer": true, "queue_alert_minutes": 0.02}, http.StatusOK, nil)
	do(t, agent, "the agent goes offline", chromedp.SetValue(chromedp.CSS("#presence"), "offline"), chromedp.Evaluate[chromedp.Void](`document.querySelector('#presence').dispatchEvent(new Event('change'))`))
	waiting := newGoVisitor(t, p.base, p.site.Key, p.base)
	waiting.say("c1", "Is anybody there?")
	sup := browsertest.New(t, 1366, 900)
	loginUI(t, sup, p.base, "/app/overview", "sam@alerts.test", e2eStaffPassword)
	waitFor(t, sup, 30*time.Second, `!document.querySelector('#queue-alert').hidden && document.querySelector('#queue-alert').textContent.includes('waiting')`)
	browsertest.Screenshot(t, sup, "e2e-overview-queue-alert")
	if strings.TrimSpace(eval[string](t, sup, `document.querySelector('#queue-alert').getAttribute('role')`)) != "alert" {
		t.Error("the queue alert is not announced (role=alert)")
	}
}
