package main

// Cross-package browser walks: every role's main path through a real
// `parley serve` (embedded broker, SQLite stores, chat, moderation,
// analytics and dashboard on one Fiber app) and Debian's Chromium.
// Screenshots of each main page go to test-artifacts/.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// reportTotals asks the analytics API for the conversations started in
// the last hour (one point) as the admin sees them.
func (p *parleyE2E) reportTotals(extra string) (newConvs, resolved, firstResponses int) {
	p.t.Helper()
	now := time.Now().UTC()
	q := url.Values{"tz": {"UTC"}, "from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}
	var r struct {
		Series []struct {
			Points []struct {
				Conversations struct{ New, Resolved int }
				FirstResponse struct{ Count int } `json:"first_response"`
			}
		}
	}
	p.admin.call("GET", "/api/analytics/report?"+q.Encode()+extra, nil, http.StatusOK, &r)
	for _, s := range r.Series {
		for _, pt := range s.Points {
			newConvs += pt.Conversations.New
			resolved += pt.Conversations.Resolved
			firstResponses += pt.FirstResponse.Count
		}
	}
	return
}

// TestE2ESupervisorFiltersAndDrillsDown: traffic through the chat API
// (two visitors, one answered and resolved by an agent), analytics counts
// it, and a supervisor filters the report by agent, clicks the chart point
// and opens the conversation's transcript with its timeline.
func TestE2ESupervisorFiltersAndDrillsDown(t *testing.T) {
	p := startE2E(t)
	agentID := p.createStaff("grace@e2e.test", "Grace Hopper", "agent")
	otherID := p.createStaff("lin@e2e.test", "Lin Otieno", "agent")
	p.createStaff("sam@e2e.test", "Sam Supervisor", "supervisor")
	agent := signIn(t, p.base, "grace@e2e.test", e2eStaffPassword)
	agentWS := agentSocket(t, agent)

	answered := newGoVisitor(t, p.base, p.site.Key, p.base)
	convA := answered.say("v1-1", "Where is my order A-1001?")
	waiting := newGoVisitor(t, p.base, p.site.Key, p.base)
	convB := waiting.say("v2-1", "Do you ship to Portugal?")
	if convA == "" || convB == "" || convA == convB {
		t.Fatalf("conversations %q and %q", convA, convB)
	}
	agentWS.send(map[string]any{"type": "send", "ref": "a-1", "client_id": "a-1", "conversation_id": convA, "text": "It ships today, sorry for the wait!"})
	agentWS.expect("ack of the agent's reply", func(f map[string]any) bool { return f["type"] == "ack" && f["client_id"] == "a-1" })
	answered.expect("the agent's reply at the visitor", func(f map[string]any) bool {
		m, _ := f["message"].(map[string]any)
		return f["type"] == "message" && m != nil && m["text"] == "It ships today, sorry for the wait!"
	})
	agent.call("POST", "/api/chat/conversations/"+convA+"/status", map[string]string{"status": "resolved"}, http.StatusOK, nil)
	// The waiting visitor's conversation goes to another agent, so the
	// agent filter below has something to leave out.
	p.admin.call("POST", "/api/chat/conversations/"+convB+"/transfer", map[string]string{"to_agent_id": otherID, "note": "Lin knows shipping"}, http.StatusOK, nil)

	// Wait (with a deadline) until analytics has loaded both conversations.
	waitUntil(t, 30*time.Second, "analytics to count 2 conversations, 1 resolved, 1 first response", func() bool {
		n, res, fr := p.reportTotals("")
		return n == 2 && res == 1 && fr == 1
	})
	if n, _, _ := p.reportTotals("&agent=" + agentID); n != 1 {
		t.Fatalf("analytics filtered by agent counts %d conversations, want 1", n)
	}

	ctx := browsertest.New(t, 1366, 900)
	loginUI(t, ctx, p.base, "/app/reports", "sam@e2e.test", e2eStaffPassword)
	waitFor(t, ctx, 20*time.Second, `document.querySelector('#report-status')?.dataset.total === '2' && !!document.querySelector('#chart-volume rect.hit')`)
	browsertest.Screenshot(t, ctx, "e2e-supervisor-reports")

	// Filter by agent: the charts and the total follow.
	waitFor(t, ctx, 10*time.Second, fmt.Sprintf(`!!document.querySelector('#agent option[value=%s]')`, jsString(agentID)))
	do(t, ctx, "filter by agent", chromedp.SetValue(chromedp.CSS("#agent"), agentID), chromedp.Evaluate[chromedp.Void](
		`document.querySelector('#agent').dispatchEvent(new Event('change', {bubbles: true}))`))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#report-status')?.dataset.total === '1' && location.search.includes('agent=')`)
	waitFor(t, ctx, 10*time.Second, `[...document.querySelectorAll('#chart-volume rect.hit')].some(r => /New chats 1\b/.test(r.getAttribute('aria-label')))`)
	if label := eval[string](t, ctx, `document.querySelector('#chart-agent-load')?.textContent || ''`); !strings.Contains(label, "Grace Hopper") {
		t.Errorf("agent load chart does not name the agent: %q", label)
	}
	waitFor(t, ctx, 10*time.Second, `!!document.querySelector('#table-site') && document.querySelector('#table-agent')?.textContent.includes('Grace Hopper')`)
	if errs := eval[string](t, ctx, `[...document.querySelectorAll('#split-tables .error, #chart-agent-load .error')].map(e => e.textContent).join('; ')`); errs != "" {
		t.Errorf("report tables show errors: %s", errs)
	}
	browsertest.Screenshot(t, ctx, "e2e-supervisor-reports-filtered")

	// Drill down from the chart point to the conversations behind it.
	do(t, ctx, "click the chart point", chromedp.Evaluate[chromedp.Void](
		`[...document.querySelectorAll('#chart-volume rect.hit')].find(r => /New chats 1\b/.test(r.getAttribute('aria-label'))).dispatchEvent(new MouseEvent('click', {bubbles: true}))`))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#drilldown')?.dataset.count === '1'`)
	rowText := eval[string](t, ctx, `document.querySelector('#drilldown tbody tr').textContent`)
	if !strings.Contains(rowText, "Grace Hopper") || !strings.Contains(rowText, "resolved") {
		t.Errorf("drill-down row = %q, want the agent's name and resolved", rowText)
	}
	browsertest.Screenshot(t, ctx, "e2e-supervisor-drilldown")

	// And from the conversation to its transcript with the timeline.
	// The page scrolls smoothly to the drill-down, so a click at screen
	// coordinates could land mid-scroll; click the row element itself.
	do(t, ctx, "open the transcript", chromedp.Evaluate[chromedp.Void](`document.querySelector('#drilldown tbody tr').click()`))
	waitFor(t, ctx, 15*time.Second, fmt.Sprintf(`location.pathname === %s && document.querySelectorAll('#transcript .msg').length === 2`, jsString("/app/conversations/"+convA)))
	msgs := eval[[]string](t, ctx, `[...document.querySelectorAll('#transcript .msg')].map(m => m.firstChild.textContent)`)
	if len(msgs) != 2 || msgs[0] != "Where is my order A-1001?" || msgs[1] != "It ships today, sorry for the wait!" {
		t.Errorf("transcript messages = %q", msgs)
	}
	types := eval[[]string](t, ctx, `[...document.querySelectorAll('#timeline li')].map(li => li.dataset.type)`)
	for _, want := range []string{"conversation.started", "conversation.assigned", "first_reply", "message.sent", "conversation.resolved"} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("timeline %v lacks %s", types, want)
		}
	}
	browsertest.Screenshot(t, ctx, "e2e-supervisor-transcript")

	// Supervisors keep the agents' canned replies.
	do(t, ctx, "open canned replies", chromedp.Navigate(p.base+"/app/admin/canned"))
	waitFor(t, ctx, 15*time.Second, `!!document.querySelector('#new-canned-form') && !!document.querySelector('#canned-list .empty, #canned-table')`)
	do(t, ctx, "add a canned reply",
		chromedp.SendKeys(chromedp.CSS("#canned-shortcut"), "ship"),
		chromedp.SendKeys(chromedp.CSS("#canned-text"), "We ship within 24 hours <b>on workdays</b>."),
		chromedp.Click(chromedp.CSS(`#new-canned-form button[type=submit]`)))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#canned-table tr[data-shortcut="ship"]')?.textContent.includes('<b>on workdays</b>')`)
	var canned struct {
		Canned []struct{ Shortcut, Text string }
	}
	agent.call("GET", "/api/chat/canned", nil, http.StatusOK, &canned)
	if len(canned.Canned) != 1 || canned.Canned[0].Shortcut != "ship" {
		t.Errorf("the agent's canned replies: %+v", canned.Canned)
	}
	browsertest.Screenshot(t, ctx, "e2e-supervisor-canned-replies")

	// The live overview shows the open conversation and the online agent.
	do(t, ctx, "open the overview", chromedp.Navigate(p.base+"/app/overview"))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#ov-open .value')?.textContent === '1' && document.querySelector('#overview-agents')?.textContent.includes('Grace Hopper')`)
	browsertest.Screenshot(t, ctx, "e2e-supervisor-overview")
}

// pressEnter presses Enter in the focused element the way a keyboard
// does: one keyDown carrying the text, so a handler that prevents the
// default also prevents the newline (kb.Enter sends a separate char event
// that types "\r" whatever the keydown handler did).
var pressEnter = chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter",
		WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r"}
	if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, down); err != nil {
		return err
	}
	up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
	_, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, up)
	return err
})

// consoleReply opens the inbox entry whose preview shows visitorText and
// sends answer through the composer (typed, Enter to send). When typed
// is a /shortcut, the canned reply it picks must be answer.
func consoleReply(t *testing.T, ctx context.Context, visitorText, typed, answer string) {
	t.Helper()
	find := `[...document.querySelectorAll('#conv-list button[data-id]')].find(b => b.querySelector('.preview')?.textContent.includes(` + jsString(visitorText) + `))`
	waitFor(t, ctx, 15*time.Second, "!!"+find)
	id := eval[string](t, ctx, find+".dataset.id")
	do(t, ctx, "open the conversation", chromedp.Evaluate[chromedp.Void](find+".click()"))
	waitFor(t, ctx, 15*time.Second, fmt.Sprintf(`document.querySelector('#conv-tabs [aria-selected="true"]')?.dataset.id === %s && [...document.querySelectorAll('#messages .msg.visitor')].some(m => m.textContent.includes(%s))`, jsString(id), jsString(visitorText)))
	do(t, ctx, "type the answer", chromedp.SendKeys(chromedp.CSS("#composer-input"), typed))
	if strings.HasPrefix(typed, "/") {
		waitFor(t, ctx, 10*time.Second, `!document.querySelector('#canned-menu').hidden`)
		do(t, ctx, "pick the canned reply", pressEnter)
		waitFor(t, ctx, 10*time.Second, `document.querySelector('#composer-input').value === `+jsString(answer))
	}
	do(t, ctx, "send", pressEnter)
	// Acked: the message has a seq (pending ones have none).
	waitFor(t, ctx, 15*time.Second, `[...document.querySelectorAll('#messages .msg.mine')].some(m => m.dataset.seq && m.textContent.includes(`+jsString(answer)+`))`)
}

// TestE2EAgentAnswersTwoVisitorsAtOnce: two visitors on a customer page
// of another origin chat through the one-line snippet; the agent's console
// shows both conversations, the agent answers both, each visitor sees its
// own answer (and not the other's).
func TestE2EAgentAnswersTwoVisitorsAtOnce(t *testing.T) {
	agentAnswersTwoVisitors(t, startE2E(t))
}

// The same walk through the scaled deployment: the broker and each role
// as its own process of the built binary, with no data directory shared,
// all state in one PostgreSQL, behind a path-routing gateway.
func TestE2ESeparateRolesOnPostgres(t *testing.T) {
	c := startCluster(t)
	c.start("dashboard-1", "dashboard", "dashboard")
	c.start("chat-1", "chat", "chat")
	c.start("moderate-1", "moderate", "moderation")
	c.start("analytics-1", "analytics", "analytics")
	p := c.asE2E()
	agentAnswersTwoVisitors(t, p)
	// Analytics, in its own process, counts what chat wrote.
	waitUntil(t, 30*time.Second, "analytics to count both conversations", func() bool {
		n, _, _ := p.reportTotals("")
		return n == 2
	})
}

// The widget on a customer page talks to chat node 1, the agent's
// console to chat node 2 (two processes on one PostgreSQL and broker):
// the conversation reaches the agent live and the answer reaches the
// visitor, in Chromium.
func TestE2EWidgetAndConsoleOnDifferentNodes(t *testing.T) {
	c := startCluster(t)
	c.start("dashboard-1", "dashboard", "dashboard")
	n1 := c.start("chat-1", "chat", "chat")
	n2 := c.start("chat-2", "chat", "chat")
	p := c.asE2E()
	p.createStaff("ada@nodes.test", "Ada Agent", "agent")
	page := newTestPage(t, chatSnippet(n1.url(), p.site.Key))
	p.allowOrigin(p.site.ID, page.origin)

	// The console's sockets reach node 2 only.
	consoleBase := c.pinnedGateway("chat", n2)
	agent := browsertest.New(t, 1366, 900)
	loginUI(t, agent, consoleBase, "/app/console", "ada@nodes.test", e2eStaffPassword)
	waitFor(t, agent, 15*time.Second, `document.querySelector('.live-dot')?.classList.contains('open')`)

	visitor := browsertest.New(t, 1024, 768)
	do(t, visitor, "open the customer page", chromedp.Navigate(page.origin+"/"))
	if src := eval[string](t, visitor, `document.querySelector('script[data-site-key]').src`); !strings.HasPrefix(src, n1.url()) {
		t.Fatalf("the widget loads from %s, want node 1 (%s)", src, n1.url())
	}
	visitorSays(t, visitor, "Hello from the widget on node 1")
	waitFor(t, agent, 20*time.Second, `document.querySelectorAll('#conv-list button[data-id]').length === 1`)
	consoleReply(t, agent, "Hello from the widget on node 1", "Answered from the console on node 2", "Answered from the console on node 2")
	visitorSees(t, visitor, "Answered from the console on node 2")
	browsertest.Screenshot(t, visitor, "e2e-nodes-visitor-on-node-1")
	browsertest.Screenshot(t, agent, "e2e-nodes-console-on-node-2")
}

// chatSnippet is the widget's install tag loading from one chat node.
func chatSnippet(base, siteKey string) string {
	return fmt.Sprintf(`<script src="%s/widget.js" data-site-key="%s" async></script>`, base, siteKey)
}

func agentAnswersTwoVisitors(t *testing.T, p *parleyE2E) {
	p.createStaff("ada@e2e.test", "Ada Agent", "agent")
	page := newTestPage(t, p.site.Snippet)
	p.allowOrigin(p.site.ID, page.origin)
	if !strings.Contains(p.site.Snippet, `data-site-key="`+p.site.Key+`"`) {
		t.Fatalf("snippet %q lacks the site key", p.site.Snippet)
	}

	p.admin.call("POST", "/api/chat/canned", map[string]string{"shortcut": "invoice", "text": "Yes, invoices are fine for orders over 50 €."}, http.StatusCreated, nil)

	// The agent signs in first, so the widget finds someone online.
	agent := browsertest.New(t, 1366, 900)
	loginUI(t, agent, p.base, "/app/console", "ada@e2e.test", e2eStaffPassword)
	waitFor(t, agent, 15*time.Second, `document.querySelector('.live-dot')?.classList.contains('open')`)

	visitors := []struct {
		ctx          context.Context
		text, answer string
	}{
		{browsertest.New(t, 1024, 768), "Hi, where is my parcel?", "It left our warehouse this morning."},
		{browsertest.New(t, 1024, 768), "Can I pay by invoice?", "Yes, invoices are fine for orders over 50 €."},
	}
	for i, v := range visitors {
		do(t, v.ctx, "open the customer page", chromedp.Navigate(page.origin+"/"))
		visitorSays(t, v.ctx, v.text)
		browsertest.Screenshot(t, v.ctx, fmt.Sprintf("e2e-visitor-%d-asks", i+1))
	}

	// Both conversations reach the agent's inbox, live.
	waitFor(t, agent, 15*time.Second, `document.querySelectorAll('#conv-list button[data-id]').length === 2`)
	browsertest.Screenshot(t, agent, "e2e-agent-console-inbox")
	consoleReply(t, agent, visitors[0].text, visitors[0].answer, visitors[0].answer)
	consoleReply(t, agent, visitors[1].text, "/invo", visitors[1].answer) // a canned reply
	if n := eval[int](t, agent, `document.querySelectorAll('#conv-tabs [role=tab]').length`); n != 2 {
		t.Errorf("the console has %d conversations open, want both", n)
	}
	browsertest.Screenshot(t, agent, "e2e-agent-console-answered")

	for i, v := range visitors {
		visitorSees(t, v.ctx, v.answer)
		other := visitors[1-i].answer
		if eval[bool](t, v.ctx, widgetJS(`w.textContent.includes(`+jsString(other)+`)`)) {
			t.Errorf("visitor %d sees the other visitor's answer %q", i+1, other)
		}
		browsertest.Screenshot(t, v.ctx, fmt.Sprintf("e2e-visitor-%d-answered", i+1))
	}
}

// TestE2EAdminCreatesSiteAndSnippetWorks: an admin creates a site on the
// Sites page; the snippet the page shows, pasted into a customer page on
// the allowed origin, boots the widget and a visitor's message reaches
// the new site's inbox.
func TestE2EAdminCreatesSiteAndSnippetWorks(t *testing.T) {
	p := startE2E(t)
	page := newTestPage(t, "")

	admin := browsertest.New(t, 1366, 900)
	loginUI(t, admin, p.base, "/app/admin/sites", initialAdminEmail, e2eAdminPassword)
	waitFor(t, admin, 15*time.Second, `!!document.querySelector('#sites-table') && !!document.querySelector('#new-site-form')`)
	do(t, admin, "fill the new site form",
		chromedp.SendKeys(chromedp.CSS("#new-site-name"), "Acme Shop"),
		chromedp.SendKeys(chromedp.CSS("#new-site-origins"), page.origin),
		chromedp.Click(chromedp.CSS(`#new-site-form button[type=submit]`)))
	waitFor(t, admin, 15*time.Second, `document.querySelector('#site-form h2')?.textContent === 'Acme Shop' && document.querySelector('#site-snippet')?.textContent.includes('data-site-key')`)
	snippet := eval[string](t, admin, `document.querySelector('#site-snippet').textContent`)
	key := eval[string](t, admin, `document.querySelector('#site-key').textContent`)
	if !strings.Contains(snippet, p.base+"/widget.js") || !strings.Contains(snippet, key) {
		t.Fatalf("snippet %q does not load %s/widget.js with key %s", snippet, p.base, key)
	}
	if n := eval[int](t, admin, `document.querySelectorAll('#sites-table tbody tr').length`); n != 2 {
		t.Errorf("sites table has %d rows, want the demo site and the new one", n)
	}
	browsertest.Screenshot(t, admin, "e2e-admin-sites")

	var sites struct {
		Sites []siteInfo `json:"sites"`
	}
	p.admin.call("GET", "/api/chat/sites", nil, http.StatusOK, &sites)
	var site siteInfo
	for _, s := range sites.Sites {
		if s.Key == key {
			site = s
		}
	}
	if site.ID == "" || len(site.AllowedOrigins) != 1 || site.AllowedOrigins[0] != page.origin {
		t.Fatalf("the new site as stored: %+v", site)
	}

	// Someone is online (the admin holds the agent role), so the widget offers a chat.
	adminWS := agentSocket(t, p.admin)
	page.setSnippet(snippet)
	visitor := browsertest.New(t, 1024, 768)
	do(t, visitor, "open the customer page", chromedp.Navigate(page.origin+"/"))
	visitorSays(t, visitor, "Hello from the Acme shop page")
	browsertest.Screenshot(t, visitor, "e2e-snippet-widget")
	adminWS.expect("the new conversation at the agent", func(f map[string]any) bool {
		c, _ := f["conversation"].(map[string]any)
		return f["type"] == "conversation" && c != nil && c["site_id"] == site.ID
	})
	var inbox struct {
		Conversations []struct {
			SiteID      string `json:"site_id"`
			LastMessage struct {
				Preview string `json:"preview"`
			} `json:"last_message"`
		} `json:"conversations"`
	}
	p.admin.call("GET", "/api/chat/conversations?scope=all&site_id="+url.QueryEscape(site.ID), nil, http.StatusOK, &inbox)
	if len(inbox.Conversations) != 1 || inbox.Conversations[0].LastMessage.Preview != "Hello from the Acme shop page" {
		t.Fatalf("the new site's inbox: %+v", inbox.Conversations)
	}
}

// flaggedText returns the first candidate the site's policy flags
// (delivered, then queued for review), as the policy test API judges it.
func (p *parleyE2E) flaggedText(candidates ...string) string {
	p.t.Helper()
	for _, text := range candidates {
		var r struct {
			Verdict struct {
				Action string `json:"action"`
			} `json:"verdict"`
		}
		p.admin.call("POST", "/api/moderation/policy/test", map[string]string{"site_id": p.site.ID, "text": text}, http.StatusOK, &r)
		if r.Verdict.Action == "flag" {
			return text
		}
		p.t.Logf("policy verdict for %q: %s", text, r.Verdict.Action)
	}
	p.t.Fatalf("the default policy flags none of %q", candidates)
	return ""
}

// TestE2EModeratorRemovesFlaggedMessage: a visitor's flagged message is
// delivered to the agent's console and queued for review; a moderator
// claims and removes it in the review queue, and it disappears from the
// agent's console live.
func TestE2EModeratorRemovesFlaggedMessage(t *testing.T) {
	p := startE2E(t)
	p.createStaff("ada@e2e.test", "Ada Agent", "agent")
	p.createStaff("mo@e2e.test", "Mo Moderator", "moderator")
	bad := p.flaggedText("you people are idiots", "this is fucking useless", "you are stupid", "answer me you idiot")

	agent := browsertest.New(t, 1366, 900)
	loginUI(t, agent, p.base, "/app/console", "ada@e2e.test", e2eStaffPassword)
	waitFor(t, agent, 15*time.Second, `document.querySelector('.live-dot')?.classList.contains('open')`)

	visitor := newGoVisitor(t, p.base, p.site.Key, p.base)
	conv := visitor.say("v-1", "My order never arrived")
	visitor.say("v-2", bad)
	find := fmt.Sprintf(`document.querySelector('#conv-list button[data-id=%s]')`, jsString(conv))
	waitFor(t, agent, 15*time.Second, "!!"+find)
	do(t, agent, "open the conversation", chromedp.Evaluate[chromedp.Void](find+".click()"))
	hasBad := `[...document.querySelectorAll('#messages .msg.visitor')].some(m => m.textContent.includes(` + jsString(bad) + `))`
	waitFor(t, agent, 15*time.Second, hasBad)

	// The moderation worker judges the message from Kafka and queues it.
	waitUntil(t, 30*time.Second, "the flagged message in the review queue", func() bool {
		var page struct {
			Items []struct {
				Text string `json:"text"`
			} `json:"items"`
		}
		p.admin.call("GET", "/api/moderation/items?status=open", nil, http.StatusOK, &page)
		return len(page.Items) == 1 && page.Items[0].Text == bad
	})

	mod := browsertest.New(t, 1366, 900)
	loginUI(t, mod, p.base, "/app/moderation", "mo@e2e.test", e2eStaffPassword)
	item := `[...document.querySelectorAll('#queue .queue-item')].find(a => a.querySelector('.text')?.textContent === ` + jsString(bad) + `)`
	waitFor(t, mod, 15*time.Second, "!!"+item+` && document.querySelectorAll('#queue .queue-item').length === 1`)
	// The conversation around the item comes with it.
	waitFor(t, mod, 15*time.Second, item+`.querySelector('.context-msgs')?.textContent.includes('My order never arrived')`)
	if n := eval[int](t, mod, item+".querySelectorAll('mark.offending').length"); n == 0 {
		t.Errorf("the offending span is not highlighted")
	}
	browsertest.Screenshot(t, mod, "e2e-moderator-queue")

	do(t, mod, "claim", chromedp.Evaluate[chromedp.Void](item+`.querySelector('[data-action=claim]').click()`))
	waitFor(t, mod, 15*time.Second, item+`?.querySelector('.claim')?.textContent === 'claimed by you'`)
	do(t, mod, "remove", chromedp.Evaluate[chromedp.Void](item+`.querySelector('[data-action=remove]').click()`))
	waitFor(t, mod, 10*time.Second, `document.querySelector('dialog[open] textarea')?.value.startsWith("Breaks the site's rules")`)
	do(t, mod, "confirm with the proposed reason", chromedp.Click(chromedp.CSS(`dialog[open] button[type=submit]`)))
	waitFor(t, mod, 15*time.Second, "!"+item)
	browsertest.Screenshot(t, mod, "e2e-moderator-queue-after-remove")

	// Gone from the agent's console, live, and from the visitor's screen.
	waitFor(t, agent, 15*time.Second, "!("+hasBad+`) && !!document.querySelector('#messages .msg.hidden-msg')`)
	if !eval[bool](t, agent, `document.querySelector('#messages').textContent.includes('My order never arrived')`) {
		t.Errorf("the visitor's other message went missing from the console")
	}
	if eval[bool](t, agent, `document.querySelector('#conv-list').textContent.includes(`+jsString(bad)+`)`) {
		t.Errorf("the inbox preview still shows the removed message")
	}
	browsertest.Screenshot(t, agent, "e2e-agent-console-after-removal")
	// After a reload the console loads the conversation from the server: still gone.
	do(t, agent, "reload the console", chromedp.Navigate(p.base+"/app/console?open="+conv))
	waitFor(t, agent, 15*time.Second, `document.querySelectorAll('#messages .msg').length === 2`)
	if eval[bool](t, agent, `document.querySelector('.console').textContent.includes(`+jsString(bad)+`)`) {
		t.Errorf("after a reload the console shows the removed message")
	}
	visitor.expect("message_hidden at the visitor", ofType("message_hidden"))

	// The decision is in the audit log with who made it.
	do(t, mod, "open the audit log", chromedp.Navigate(p.base+"/app/moderation/audit"))
	waitFor(t, mod, 15*time.Second, `[...document.querySelectorAll('#audit tbody tr')].some(r => r.textContent.includes('mo@e2e.test') && r.textContent.includes('remove'))`)
	browsertest.Screenshot(t, mod, "e2e-moderator-audit")
	do(t, mod, "open the policy editor", chromedp.Navigate(p.base+"/app/moderation/policy"))
	waitFor(t, mod, 15*time.Second, `document.querySelector('#policy-json')?.value.length > 10`)
	do(t, mod, "test a text", chromedp.SendKeys(chromedp.CSS("#policy-test-text"), bad), chromedp.Click(chromedp.CSS("#policy-test")))
	waitFor(t, mod, 15*time.Second, `document.querySelector('#policy-test-result strong')?.textContent === 'flag' && !!document.querySelector('#policy-test-result mark')`)
	browsertest.Screenshot(t, mod, "e2e-moderator-policy")
}
