package chatsvc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/browsertest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// hostPage serves a customer's page on its own origin that installs the
// widget with one script tag.
func hostPage(t *testing.T, chatBase, siteKey string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop</title><style>body{font-family:serif;margin:0;padding:40px;background:#fafaf9} button{background:red}</style></head>
<body><h1>Example shop</h1><p id="content">Products and prices. The page's own CSS must not leak into the widget.</p>
<script src="%s/widget.js" data-site-key="%s" async></script></body></html>`, chatBase, siteKey)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

const shadow = `document.querySelector('#parley-widget-host').shadowRoot`

// waitJS polls a boolean expression in the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	browsertest.WaitJS(t, ctx, 20*time.Second, expr)
}

func runJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr)); err != nil {
		t.Fatalf("run %s: %v", expr, err)
	}
}

// TestWidgetInBrowser embeds the widget in a page on another origin; the
// visitor and an agent exchange messages both ways; screenshots at desktop
// and phone sizes.
func TestWidgetInBrowser(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		page := hostPage(t, e.base, "")
		site, err := e.svc.CreateSite(context.Background(), SiteInput{Name: "Example Shop", AllowedOrigins: []string{page},
			Settings: SiteSettings{Color: "#0f766e", Greeting: "Hi! Ask us anything.", ReplyTime: "a few minutes"}}, "admin")
		if err != nil {
			t.Fatal(err)
		}
		page = hostPage(t, e.base, site.Key)
		// the second listener has a new port: allow that origin instead
		if _, err := e.svc.UpdateSite(context.Background(), site.ID, SiteInput{Name: site.Name, AllowedOrigins: []string{page}, Settings: site.Settings}, "admin"); err != nil {
			t.Fatal(err)
		}
		grace := e.staff("Grace Hopper", access.Agent)
		agent := grace.socket()

		ctx := widgetPage(t, page)
		runJS(t, ctx, shadow+`.querySelector('.launcher').click()`)
		waitJS(t, ctx, "the site's name and greeting", shadow+`.querySelector('.title').textContent === 'Example Shop' && `+shadow+`.querySelector('.greeting').textContent === 'Hi! Ask us anything.'`)

		const visitorText = `Where is my order? <b>bold?</b>`
		runJS(t, ctx, `(() => { const r = `+shadow+`; r.querySelector('textarea').value = `+jsString(visitorText)+`; r.querySelector('.composer').requestSubmit(); })()`)
		conv := agent.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == grace.user.ID }).obj("conversation").str("id")
		agent.send(map[string]any{"type": "subscribe", "ref": "s", "conversation_id": conv})
		got := agent.expect("messages", byRef("s")).list("messages")
		if len(got) != 1 || got[0].str("text") != visitorText {
			t.Fatalf("agent got %v", got)
		}
		waitJS(t, ctx, "the visitor's message acknowledged", shadow+`.querySelector('.msg.mine[data-seq="1"]')`)

		const agentText = `Hi! It ships today <img src=x onerror="window.pwned=1">`
		agent.send(map[string]any{"type": "send", "client_id": "a1", "conversation_id": conv, "text": agentText})
		agent.expect("ack", byClient("a1"))
		waitJS(t, ctx, "the agent's answer", `[...`+shadow+`.querySelectorAll('.msg.theirs .text')].some(n => n.textContent === `+jsString(agentText)+`)`)
		// markup from users is text: no element was created, nothing ran
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!`+shadow+`.querySelector('.log img, .log b') && !window.pwned`))
		if err != nil || !ok {
			t.Fatalf("user markup was rendered as HTML (%v)", err)
		}
		// the agent sees the read receipt once the open widget shows the message
		agent.expect("receipt", func(f frame) bool { return f.str("kind") == "read" && f.num("up_to_seq") == 2 })
		// the host page's CSS (red buttons, serif) does not reach the widget
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`getComputedStyle(`+shadow+`.querySelector('.send')).backgroundColor !== 'rgb(255, 0, 0)'`))
		if err != nil || !ok {
			t.Fatalf("host CSS leaked into the widget (%v)", err)
		}
		browsertest.Screenshot(t, ctx, "widget-desktop")

		// reload: history survives (token in localStorage) without duplicates
		if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "history after a reload", shadow+`.querySelectorAll('.msg[data-seq]').length === 2`)

		// a phone-sized visitor in a separate browser context
		phone := browsertest.New(t, 390, 844)
		if err := chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(page)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, phone, "the launcher on a phone", shadow+`.querySelector('.launcher')`)
		runJS(t, phone, shadow+`.querySelector('.launcher').click()`)
		runJS(t, phone, `(() => { const r = `+shadow+`; r.querySelector('textarea').value = 'Hello from my phone 📱'; r.querySelector('.composer').requestSubmit(); })()`)
		phoneConv := agent.expect("conversation", func(f frame) bool {
			c := f.obj("conversation")
			return c.str("id") != conv && c.obj("assignee").str("id") == grace.user.ID
		}).obj("conversation").str("id")
		agent.send(map[string]any{"type": "send", "client_id": "a2", "conversation_id": phoneConv, "text": "Hello phone!"})
		agent.expect("ack", byClient("a2"))
		waitJS(t, phone, "the answer on the phone", `[...`+shadow+`.querySelectorAll('.msg.theirs .text')].some(n => n.textContent === 'Hello phone!')`)
		w, err := chromedp.Run(phone, chromedp.Evaluate[float64](shadow+`.querySelector('.panel').getBoundingClientRect().width`))
		if err != nil || w != 390 {
			t.Fatalf("phone panel width %v (%v), want the full screen", w, err)
		}
		browsertest.Screenshot(t, phone, "widget-phone")
	})
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`", "$", `\$`)
	return "`" + r.Replace(s) + "`"
}
