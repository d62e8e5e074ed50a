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

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

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
	waitFor(t, ctx, 10*time.Second, `[...document.querySelectorAll('#chart-volume rect.hit')].some(r => /New 1\b/.test(r.getAttribute('aria-label')))`)
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
		`[...document.querySelectorAll('#chart-volume rect.hit')].find(r => /New 1\b/.test(r.getAttribute('aria-label'))).dispatchEvent(new MouseEvent('click', {bubbles: true}))`))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#drilldown')?.dataset.count === '1'`)
	rowText := eval[string](t, ctx, `document.querySelector('#drilldown tbody tr').textContent`)
	if !strings.Contains(rowText, "Grace Hopper") || !strings.Contains(rowText, "resolved") {
		t.Errorf("drill-down row = %q, want the agent's name and resolved", rowText)
	}
	browsertest.Screenshot(t, ctx, "e2e-supervisor-drilldown")

	// And from the conversation to its transcript with the timeline.
	do(t, ctx, "open the transcript", chromedp.Click(chromedp.CSS("#drilldown tbody tr")))
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

	// The live overview shows the open conversation and the online agent.
	do(t, ctx, "open the overview", chromedp.Navigate(p.base+"/app/overview"))
	waitFor(t, ctx, 15*time.Second, `document.querySelector('#ov-open .value')?.textContent === '1' && document.querySelector('#overview-agents')?.textContent.includes('Grace Hopper')`)
	browsertest.Screenshot(t, ctx, "e2e-supervisor-overview")
}

// consoleReply opens the inbox entry whose preview shows visitorText and
// sends answer through the composer (typed, Enter to send).
func consoleReply(t *testing.T, ctx context.Context, visitorText, answer string) {
	t.Helper()
	find := `[...document.querySelectorAll('#conv-list button[data-id]')].find(b => b.querySelector('.preview')?.textContent.includes(` + jsString(visitorText) + `))`
	waitFor(t, ctx, 15*time.Second, "!!"+find)
	id := eval[string](t, ctx, find+".dataset.id")
	do(t, ctx, "open the conversation", chromedp.Evaluate[chromedp.Void](find+".click()"))
	waitFor(t, ctx, 15*time.Second, fmt.Sprintf(`document.querySelector('#conv-tabs [aria-selected="true"]')?.dataset.id === %s && [...document.querySelectorAll('#messages .msg.visitor')].some(m => m.textContent.includes(%s))`, jsString(id), jsString(visitorText)))
	do(t, ctx, "type the answer",
		chromedp.SendKeys(chromedp.CSS("#composer-input"), answer),
		chromedp.SendKeys(chromedp.CSS("#composer-input"), kb.Enter))
	// Acked: the message has a seq (pending ones have none).
	waitFor(t, ctx, 15*time.Second, `[...document.querySelectorAll('#messages .msg.mine')].some(m => m.dataset.seq && m.textContent.includes(`+jsString(answer)+`))`)
}

// TestE2EAgentAnswersTwoVisitorsAtOnce: two visitors on a customer page
// of another origin chat through the one-line snippet; the agent's console
// shows both conversations, the agent answers both, each visitor sees its
// own answer (and not the other's).
func TestE2EAgentAnswersTwoVisitorsAtOnce(t *testing.T) {
	p := startE2E(t)
	p.createStaff("ada@e2e.test", "Ada Agent", "agent")
	page := newTestPage(t, p.site.Snippet)
	p.allowOrigin(p.site.ID, page.origin)
	if !strings.Contains(p.site.Snippet, `data-site-key="`+p.site.Key+`"`) {
		t.Fatalf("snippet %q lacks the site key", p.site.Snippet)
	}

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
	for _, v := range visitors {
		consoleReply(t, agent, v.text, v.answer)
	}
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
