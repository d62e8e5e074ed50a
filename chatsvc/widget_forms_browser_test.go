package chatsvc

import (
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/browsertest"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// browserSite creates a site whose widget is installed on a host page of
// its own origin, and returns the page's URL.
func browserSite(t *testing.T, e *env, name string, settings SiteSettings) (string, Site) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + ln.Addr().String()
	site, err := e.svc.CreateSite(context.Background(), SiteInput{Name: name, AllowedOrigins: []string{origin}, Settings: settings}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	// ?lang=xx puts data-language="xx" on the tag (the page chooses the language).
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang := ""
		if l := r.URL.Query().Get("lang"); l != "" {
			lang = fmt.Sprintf(` data-language="%s"`, html.EscapeString(l))
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>%s</title></head>
<body><main><h1>%s</h1><p>A customer's page.</p></main><script src="%s/widget.js" data-site-key="%s"%s async></script></body></html>`, name, name, e.base, site.Key, lang)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return origin, site
}

// fill sets an input or textarea of the widget's shadow DOM by selector.
func fill(t *testing.T, ctx context.Context, selector, value string) {
	t.Helper()
	runJS(t, ctx, `(() => { const n = `+shadow+`.querySelector(`+jsString(selector)+`); n.value = `+jsString(value)+`; n.dispatchEvent(new Event('input', {bubbles: true})); })()`)
}

// TestWidgetFormsInBrowser drives the pre-chat form, the CSAT rating after
// the agent resolves, and the offline form, in Chromium.
func TestWidgetFormsInBrowser(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		page, _ := browserSite(t, e, "Prechat Shop", SiteSettings{Greeting: "Hello!", Prechat: Prechat{Enabled: true,
			Fields: []PrechatField{{Name: "order", Label: "Order number", Required: true}}}})
		// The closed site of the offline form below exists before the
		// agent, who works on every site of the test.
		closed := Hours{Timezone: "UTC", Weekly: make([][]TimeRange, 7)}
		offPage, _ := browserSite(t, e, "Closed Shop", SiteSettings{OfflineMessage: "We are closed. Leave a message.", Hours: closed})
		grace := e.staff("Grace Hopper", access.Agent)
		agent := grace.socket()

		ctx := widgetPage(t, page)
		runJS(t, ctx, shadow+`.querySelector('.launcher').click()`)

		// Pre-chat form: the composer waits until it is filled in.
		waitJS(t, ctx, "the pre-chat form", shadow+`.querySelector('form.prechat') && `+shadow+`.querySelector('.composer').hidden`)
		const name = `Ada <i>Lovelace</i>`
		fill(t, ctx, `form.prechat input[name="name"]`, name)
		fill(t, ctx, `form.prechat input[name="email"]`, "ada@example.com")
		fill(t, ctx, `form.prechat input[name="order"]`, "A-1001")
		browsertest.Screenshot(t, ctx, "widget-prechat")
		runJS(t, ctx, shadow+`.querySelector('form.prechat').requestSubmit()`)
		waitJS(t, ctx, "the composer after the pre-chat form", `!`+shadow+`.querySelector('form.prechat') && !`+shadow+`.querySelector('.composer').hidden`)
		runJS(t, ctx, `(() => { const r = `+shadow+`; r.querySelector('textarea').value = 'My order is late'; r.querySelector('.composer').requestSubmit(); })()`)

		convFrame := agent.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == grace.user.ID })
		conv := convFrame.obj("conversation").str("id")
		if got := convFrame.obj("conversation").obj("visitor"); got.str("name") != name || got.str("email") != "ada@example.com" {
			t.Fatalf("agent's conversation shows visitor %v", got)
		}
		chat.waitFor(t, "conversation.started with the pre-chat answers", hasEvent(ingest.ConversationStarted, conv, func(ev ingest.Event) bool {
			var p ingest.ConversationStartedPayload
			return ev.Into(&p) == nil && p.Channel == ingest.ChannelWidget && p.VisitorName == name && p.Email == "ada@example.com" && p.Fields["order"] == "A-1001"
		}))
		var detail struct {
			Visitor Visitor `json:"visitor"`
		}
		grace.call("GET", "/api/chat/conversations/"+conv, nil, 200, &detail)
		if v := detail.Visitor; v.Name != name || v.Email != "ada@example.com" || v.Fields["order"] != "A-1001" || !strings.HasPrefix(v.PageURL, page) {
			t.Fatalf("agent's visitor context = %+v", v)
		}
		waitJS(t, ctx, "the message acknowledged", shadow+`.querySelector('.msg.mine[data-seq="1"]')`)

		// CSAT: the agent resolves; the visitor rates 4 with a comment.
		grace.call("POST", "/api/chat/conversations/"+conv+"/status", map[string]string{"status": "resolved"}, 200, nil)
		waitJS(t, ctx, "the rating form", shadow+`.querySelector('form.csat .stars input[type=radio]')`)
		runJS(t, ctx, shadow+`.querySelectorAll('form.csat .stars input[type=radio]')[3].click()`)
		const comment = `Quick & kind <script>alert(1)</script>`
		fill(t, ctx, `form.csat textarea`, comment)
		browsertest.Screenshot(t, ctx, "widget-csat")
		runJS(t, ctx, shadow+`.querySelector('form.csat').requestSubmit()`)
		waitJS(t, ctx, "the thanks for the rating", shadow+`.querySelector('form.csat').textContent.includes('Thank you')`)
		chat.waitFor(t, "csat.submitted with rating and comment", hasEvent(ingest.CSATSubmitted, conv, func(ev ingest.Event) bool {
			var p ingest.CSATSubmittedPayload
			return ev.Into(&p) == nil && p.Rating == 4 && p.Comment == comment
		}))
		agent.expect("conversation", func(f frame) bool {
			c := f.obj("conversation")
			return c.str("id") == conv && c.obj("csat").num("rating") == 4 && c.obj("csat").str("comment") == comment
		})

		// Offline form: outside business hours (closed every day) the widget
		// offers the offline form; the message reaches agents as a conversation.
		if err := chromedp.Do(ctx, chromedp.Navigate(offPage)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "the launcher", shadow+`.querySelector('.launcher')`)
		runJS(t, ctx, shadow+`.querySelector('.launcher').click()`)
		waitJS(t, ctx, "the offline form", shadow+`.querySelector('form.offline-form') && `+shadow+`.querySelector('.composer').hidden && `+
			shadow+`.querySelector('form.offline-form p').textContent === 'We are closed. Leave a message.'`)
		fill(t, ctx, `form.offline-form input[name="name"]`, "Bob")
		fill(t, ctx, `form.offline-form input[name="email"]`, "bob@example.com")
		fill(t, ctx, `form.offline-form textarea`, "Please call me back")
		browsertest.Screenshot(t, ctx, "widget-offline")
		runJS(t, ctx, shadow+`.querySelector('form.offline-form').requestSubmit()`)
		waitJS(t, ctx, "the thanks for the offline message", shadow+`.querySelector('.thanks')`)
		offConv := agent.expect("conversation", func(f frame) bool {
			c := f.obj("conversation")
			return c.str("channel") == ingest.ChannelOffline && c.obj("visitor").str("email") == "bob@example.com"
		}).obj("conversation").str("id")
		chat.waitFor(t, "the offline conversation and its message", func(evs []ingest.Event) bool {
			return hasEvent(ingest.ConversationStarted, offConv, func(ev ingest.Event) bool {
				var p ingest.ConversationStartedPayload
				return ev.Into(&p) == nil && p.Channel == ingest.ChannelOffline && p.VisitorName == "Bob" && p.Email == "bob@example.com"
			})(evs) && hasEvent(ingest.MessageSent, offConv, nil)(evs)
		})
		var msgs struct {
			Messages []Message `json:"messages"`
		}
		grace.call("GET", "/api/chat/conversations/"+offConv+"/messages", nil, 200, &msgs)
		if len(msgs.Messages) != 1 || msgs.Messages[0].Text != "Please call me back" {
			t.Fatalf("offline conversation holds %+v", msgs.Messages)
		}
	})
}
