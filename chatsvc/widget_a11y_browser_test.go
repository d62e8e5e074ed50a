package chatsvc

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/browsertest"
	"github.com/parleychat/parley/ingest"
)

// The widget's languages, right-to-left layout and accessibility, checked
// in Chromium with axe-core (browsertest.Audit) and keyboard events only.

// shadowActive is the class of the element focused inside the widget.
const shadowActive = `(document.activeElement && document.activeElement.id === 'parley-widget-host' && ` + shadow + `.activeElement ? ` + shadow + `.activeElement.className + '|' + ` + shadow + `.activeElement.tagName + '|' + (` + shadow + `.activeElement.getAttribute('type') || '') : '')`

// press sends one key (with modifiers) to whatever has focus.
func press(t *testing.T, ctx context.Context, key string, mods ...chromedp.Modifier) {
	t.Helper()
	var opts []chromedp.KeyOption
	if len(mods) > 0 {
		opts = append(opts, chromedp.KeyModifiers(mods...))
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent(key, opts...)); err != nil {
		t.Fatalf("press %q: %v", key, err)
	}
}

// focused reports the widget element that has focus ("class|TAG|type").
func focused(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, shadowActive)
}

// tabUntil presses Tab (Shift+Tab when back) until the focused widget
// element matches want, at most n times.
func tabUntil(t *testing.T, ctx context.Context, back bool, n int, want func(string) bool) string {
	t.Helper()
	var mods []chromedp.Modifier
	if back {
		mods = append(mods, kb.ModifierShift)
	}
	seen := []string{}
	for i := 0; i < n; i++ {
		press(t, ctx, kb.Tab, mods...)
		f := focused(t, ctx)
		if want(f) {
			return f
		}
		seen = append(seen, f)
	}
	t.Fatalf("keyboard focus never reached the wanted control; it went %q", seen)
	return ""
}

func emulate[P any](cmd cdp.Command[P, cdp.Empty], params P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cmd, params)
		return err
	})
}

// widgetPage starts a desktop browser on page and waits for the launcher.
func widgetPage(t *testing.T, page string) context.Context {
	t.Helper()
	ctx := browsertest.New(t, 1280, 800)
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the launcher", shadow+`.querySelector('.launcher')`)
	return ctx
}

// openWidget navigates to page and opens the panel by script (tests of
// what the open panel looks like; the keyboard walk opens it by keys).
func openWidget(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the launcher", shadow+`.querySelector('.launcher')`)
	runJS(t, ctx, shadow+`.querySelector('.launcher').click()`)
	waitJS(t, ctx, "the open panel", `!`+shadow+`.querySelector('.panel').hidden && `+shadow+`.querySelector('.subtitle').textContent !== ''`)
}

// TestWidgetKeyboardAndScreenReader: a visitor using only the keyboard
// opens the widget, sends a message, hears the agent's answer through the
// live region (and not the backlog after a reload), closes with Escape
// (focus back on the launcher) and submits a rating; axe-core finds no
// serious or critical violation closed, open and on the rating form. The
// site's pale colour gets dark text.
func TestWidgetKeyboardAndScreenReader(t *testing.T) {
	e := newEnv(t, "sqlite")
	chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
	page, _ := browserSite(t, e, "Keyboard Shop", SiteSettings{Color: "#fde047", Greeting: "Hello! Ask us anything."})
	grace := e.staff("Grace Hopper", access.Agent)
	agent := grace.socket()

	ctx := widgetPage(t, page)
	browsertest.Audit(t, ctx, "widget closed")
	// A yellow that fails 4.5:1 with white gets dark ink; the check runs in the widget.
	waitJS(t, ctx, "the site's colour", `getComputedStyle(`+shadow+`.querySelector('.launcher')).backgroundColor === 'rgb(253, 224, 71)'`)
	if c := browsertest.Eval[string](t, ctx, `getComputedStyle(`+shadow+`.querySelector('.launcher')).color`); c != "rgb(17, 24, 39)" {
		t.Fatalf("text on the pale site colour is %s, want the dark ink", c)
	}

	// Tab reaches the launcher; Enter opens the panel with focus in the composer.
	if f := tabUntil(t, ctx, false, 5, func(f string) bool { return strings.HasPrefix(f, "launcher|") }); f == "" {
		t.Fatal("no launcher focus")
	}
	// Focus is visible: a dark ring with a light gap, on any background.
	if ring := browsertest.Eval[[]string](t, ctx, `(() => { const s = getComputedStyle(`+shadow+`.querySelector('.launcher')); return [s.outlineStyle, s.outlineColor, s.boxShadow]; })()`); ring[0] != "solid" || ring[1] != "rgb(17, 24, 39)" || !strings.Contains(ring[2], "rgb(255, 255, 255)") {
		t.Fatalf("the focused launcher's ring: %q", ring)
	}
	press(t, ctx, kb.Enter)
	waitJS(t, ctx, "the composer focused", shadowActive+`.startsWith('|TEXTAREA')`)
	if got := browsertest.Eval[string](t, ctx, shadow+`.querySelector('.launcher').getAttribute('aria-expanded')`); got != "true" {
		t.Fatalf("launcher aria-expanded = %s after opening", got)
	}
	browsertest.Audit(t, ctx, "widget open")
	browsertest.Screenshot(t, ctx, "widget-keyboard-open")

	if err := chromedp.Do(ctx, chromedp.KeyEvent("Where is my parcel?")); err != nil {
		t.Fatal(err)
	}
	press(t, ctx, kb.Enter)
	conv := agent.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == grace.user.ID }).obj("conversation").str("id")
	waitJS(t, ctx, "the message acknowledged", shadow+`.querySelector('.msg.mine[data-seq="1"] .text')?.textContent === 'Where is my parcel?'`)
	agent.send(map[string]any{"type": "send", "client_id": "a1", "conversation_id": conv, "text": "It arrives tomorrow."})
	agent.expect("ack", byClient("a1"))
	// The answer is announced once through the live region; the log itself
	// is not live (so a reload's backlog is not read out).
	waitJS(t, ctx, "the answer announced", shadow+`.querySelector('.sr-only[aria-live=polite]').textContent === 'Grace Hopper: It arrives tomorrow.'`)
	if live := browsertest.Eval[string](t, ctx, shadow+`.querySelector('.log').getAttribute('aria-live') || ''`); live != "" {
		t.Fatalf("the message log is aria-live=%q; it would read the backlog out", live)
	}

	// Escape closes and gives focus back to the launcher.
	press(t, ctx, kb.Escape)
	waitJS(t, ctx, "the panel closed, focus on the launcher", shadow+`.querySelector('.panel').hidden && `+shadowActive+`.startsWith('launcher|')`)

	// After a reload the history is shown but nothing is announced.
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the history after a reload", shadow+`?.querySelectorAll('.msg[data-seq]').length === 2`)
	if n := browsertest.Eval[int](t, ctx, shadow+`.querySelector('.sr-only[aria-live=polite]').childNodes.length`); n != 0 {
		t.Fatalf("the live region announced %d backlog messages", n)
	}

	// The agent resolves; the visitor rates by keyboard alone.
	grace.call("POST", "/api/chat/conversations/"+conv+"/status", map[string]string{"status": "resolved"}, 200, nil)
	waitJS(t, ctx, "the rating form", shadow+`.querySelector('form.csat input[type=radio]')`)
	tabUntil(t, ctx, false, 5, func(f string) bool { return strings.HasPrefix(f, "launcher|") })
	press(t, ctx, kb.Enter)
	waitJS(t, ctx, "the composer focused", shadowActive+`.startsWith('|TEXTAREA')`)
	// Backwards from the composer: the rating's submit button, comment, then the stars.
	tabUntil(t, ctx, true, 8, func(f string) bool { return strings.Contains(f, "|INPUT|radio") })
	// Shift+Tab into a group with nothing checked lands on the last star;
	// arrows move the choice: ArrowLeft picks 4 of 5.
	press(t, ctx, kb.ArrowLeft)
	waitJS(t, ctx, "4 stars picked", shadow+`.querySelector('form.csat input[type=radio]:checked')?.value === '4'`)
	browsertest.Audit(t, ctx, "widget rating form")
	browsertest.Screenshot(t, ctx, "widget-keyboard-csat")
	tabUntil(t, ctx, false, 2, func(f string) bool { return strings.HasPrefix(f, "|TEXTAREA") })
	if err := chromedp.Do(ctx, chromedp.KeyEvent("Quick answer")); err != nil {
		t.Fatal(err)
	}
	tabUntil(t, ctx, false, 2, func(f string) bool { return strings.HasPrefix(f, "send|BUTTON|submit") })
	press(t, ctx, kb.Enter)
	chat.waitFor(t, "csat.submitted from the keyboard", hasEvent(ingest.CSATSubmitted, conv, func(ev ingest.Event) bool {
		var p ingest.CSATSubmittedPayload
		return ev.Into(&p) == nil && p.Rating == 4 && p.Comment == "Quick answer"
	}))
	waitJS(t, ctx, "the thanks, focused", shadowActive+`.startsWith('|P')`)
}

// TestWidgetLanguagesInBrowser: the widget in each shipped language (a
// screenshot each), chosen by the page (data-language) or by the browser
// (Arabic); Arabic is laid out right to left, and each message takes its
// own direction (dir="auto"). Axe audits the Arabic widget.
func TestWidgetLanguagesInBrowser(t *testing.T) {
	e := newEnv(t, "sqlite")
	page, _ := browserSite(t, e, "Global Shop", SiteSettings{
		Color: "#0f766e", Greeting: "Hello! Ask us anything.", ReplyTime: "a few minutes",
		Languages: []string{"en", "es", "pt", "de", "fr", "ar"},
		Translations: map[string]SiteTexts{
			"es": {Greeting: "¡Hola! Pregúntanos lo que quieras.", ReplyTime: "unos minutos"},
			"pt": {Greeting: "Olá! Pergunte-nos o que quiser.", ReplyTime: "alguns minutos"},
			"de": {Greeting: "Hallo! Fragen Sie uns alles.", ReplyTime: "wenigen Minuten"},
			"fr": {Greeting: "Bonjour ! Posez-nous vos questions.", ReplyTime: "quelques minutes"},
			"ar": {Greeting: "مرحبًا! اسألنا عن أي شيء.", ReplyTime: "بضع دقائق"},
		},
	})
	grace := e.staff("Grace Hopper", access.Agent)
	agent := grace.socket()
	want := map[string]struct{ placeholder, subtitle string }{
		"en": {"Write a message…", "We usually reply in a few minutes"},
		"es": {"Escribe un mensaje…", "Solemos responder en unos minutos"},
		"pt": {"Escreva uma mensagem…", "Costumamos responder em alguns minutos"},
		"de": {"Nachricht schreiben…", "Wir antworten meist innerhalb von wenigen Minuten"},
		"fr": {"Écrivez un message…", "Nous répondons généralement en quelques minutes"},
		"ar": {"اكتب رسالة…", "نرد عادةً خلال بضع دقائق"},
	}
	for _, lang := range []string{"en", "es", "pt", "de", "fr", "ar"} {
		t.Run(lang, func(t *testing.T) {
			ctx := browsertest.New(t, 1280, 800)
			url := page + "/?lang=" + lang
			if lang == "ar" {
				// Arabic comes from the browser's preferences instead of the page.
				ua := browsertest.Eval[string](t, ctx, `navigator.userAgent`)
				if err := chromedp.Do(ctx, emulate(emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "ar-EG,ar;q=0.9"})); err != nil {
					t.Fatal(err)
				}
				url = page + "/"
			}
			openWidget(t, ctx, url)
			w := want[lang]
			got := browsertest.Eval[[]string](t, ctx, `(() => { const r = `+shadow+`; return [r.querySelector('.parley').lang, r.querySelector('textarea').placeholder, r.querySelector('.subtitle').textContent]; })()`)
			if got[0] != lang || got[1] != w.placeholder || got[2] != w.subtitle {
				t.Fatalf("widget in %s shows lang=%q placeholder %q subtitle %q", lang, got[0], got[1], got[2])
			}
			text := map[string]string{"ar": "طلبي رقم 1234 لم يصل", "en": "Where is order 1234?"}[lang]
			if text == "" {
				text = "Order 1234?"
			}
			runJS(t, ctx, `(() => { const r = `+shadow+`; r.querySelector('textarea').value = `+jsString(text)+`; r.querySelector('.composer').requestSubmit(); })()`)
			waitJS(t, ctx, "the message acknowledged", shadow+`.querySelector('.msg.mine[data-seq="1"]')`)
			conv := agent.expect("conversation", func(f frame) bool {
				c := f.obj("conversation")
				return c.obj("assignee").str("id") == grace.user.ID && c.obj("last_message").str("preview") == text
			}).obj("conversation").str("id")
			answer := map[string]string{"ar": "Your order #1234 ships today — سيصل غدًا"}[lang]
			if answer == "" {
				answer = "It ships today."
			}
			agent.send(map[string]any{"type": "send", "client_id": "a-" + lang, "conversation_id": conv, "text": answer})
			agent.expect("ack", byClient("a-"+lang))
			waitJS(t, ctx, "the answer", `[...`+shadow+`.querySelectorAll('.msg.theirs .text')].some(n => n.textContent === `+jsString(answer)+`)`)
			waitJS(t, ctx, "the joined notice", shadow+`.querySelector('.notice').textContent.includes('Grace Hopper')`)
			browsertest.Screenshot(t, ctx, "widget-lang-"+lang)
			// Resolved, so that the agent's limit leaves room for the next language.
			defer grace.call("POST", "/api/chat/conversations/"+conv+"/status", map[string]string{"status": "resolved"}, 200, nil)
			if lang != "ar" {
				return
			}
			// Mirrored: launcher at the bottom left, own messages on the left, the
			// close button at the left of the header.
			layout := browsertest.Eval[map[string]float64](t, ctx, `(() => { const r = `+shadow+`; const rect = (s) => r.querySelector(s).getBoundingClientRect();
				return {launcher: rect('.launcher').left, panel: rect('.panel').left, mine: rect('.msg.mine').left, theirs: rect('.msg.theirs').right,
				  close: rect('.close').left, title: rect('.title').left, width: innerWidth}; })()`)
			if layout["launcher"] > 100 || layout["panel"] > 100 || layout["mine"] > layout["panel"]+40 || layout["close"] > layout["title"] {
				t.Fatalf("the Arabic widget is not mirrored: %v", layout)
			}
			dirs := browsertest.Eval[[]string](t, ctx, `(() => { const r = `+shadow+`; return [r.querySelector('.parley').dir,
				getComputedStyle(r.querySelector('.msg.mine .text')).direction, getComputedStyle([...r.querySelectorAll('.msg.theirs .text')].pop()).direction]; })()`)
			if dirs[0] != "rtl" || dirs[1] != "rtl" || dirs[2] != "ltr" {
				t.Fatalf("directions: widget %s, Arabic message %s, message starting in English %s", dirs[0], dirs[1], dirs[2])
			}
			// Times are written the language's way (Intl.DateTimeFormat: م/ص, not PM/AM).
			if meta := browsertest.Eval[string](t, ctx, shadow+`.querySelector('.msg.mine .meta').textContent`); !strings.ContainsAny(meta, "مص") {
				t.Errorf("Arabic message time %q is not in Arabic", meta)
			}
			browsertest.Audit(t, ctx, "widget in Arabic")
		})
	}
}

// TestWidgetFormsAccessible: axe-core on the pre-chat and offline forms
// (in French and English), every control at least 44 px on a phone, no
// animation with reduced motion, and a usable panel at 200% zoom.
func TestWidgetFormsAccessible(t *testing.T) {
	e := newEnv(t, "sqlite")
	prechat, _ := browserSite(t, e, "Prechat Shop", SiteSettings{Languages: []string{"fr"}, Prechat: Prechat{Enabled: true,
		Fields: []PrechatField{{Name: "order", Label: "Order number", Required: true}}}})
	closed := Hours{Timezone: "UTC", Weekly: make([][]TimeRange, 7)}
	offline, _ := browserSite(t, e, "Closed Shop", SiteSettings{Hours: closed})
	e.staff("Grace Hopper", access.Agent).socket() // someone online: the pre-chat form, not the offline one

	ctx := browsertest.New(t, 1280, 800)
	openWidget(t, ctx, prechat+"/?lang=fr")
	waitJS(t, ctx, "the pre-chat form in French", shadow+`.querySelector('form.prechat button[type=submit]')?.textContent === 'Démarrer le chat'`)
	browsertest.Audit(t, ctx, "widget pre-chat form")
	browsertest.Screenshot(t, ctx, "widget-prechat-fr")
	openWidget(t, ctx, offline)
	waitJS(t, ctx, "the offline form", shadow+`.querySelector('form.offline-form textarea')`)
	browsertest.Audit(t, ctx, "widget offline form")

	// Phone: every control of the open panel is a 44 px touch target.
	phone := browsertest.New(t, 390, 844)
	if err := chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch)); err != nil {
		t.Fatal(err)
	}
	openWidget(t, phone, offline)
	waitJS(t, phone, "the offline form", shadow+`.querySelector('form.offline-form textarea')`)
	small := browsertest.Eval[[]string](t, phone, `[...`+shadow+`.querySelectorAll('button, input:not([type=file]), textarea, .star')].filter(n => n.offsetParent !== null)
		.map(n => [n.className || n.tagName, n.getBoundingClientRect()]).filter(([, r]) => r.width < 44 || r.height < 44).map(([n, r]) => n + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))`)
	if len(small) > 0 {
		t.Errorf("touch targets under 44 px on a phone: %v", small)
	}
	runJS(t, phone, shadow+`.querySelector('.close').click()`)
	openWidget(t, phone, prechat+"/?lang=fr")
	runJS(t, phone, `(() => { const r = `+shadow+`; r.querySelectorAll('form.prechat input').forEach(i => i.value = i.type === 'email' ? 'ada@example.com' : 'Ada'); r.querySelector('form.prechat').requestSubmit(); })()`)
	waitJS(t, phone, "the composer", `!`+shadow+`.querySelector('.composer').hidden`)
	runJS(t, phone, shadow+`.querySelector('.composer .icon').click()`)
	small = browsertest.Eval[[]string](t, phone, `[...`+shadow+`.querySelectorAll('button, textarea')].filter(n => n.offsetParent !== null)
		.map(n => [n.className || n.tagName, n.getBoundingClientRect()]).filter(([, r]) => r.width < 44 || r.height < 44).map(([n, r]) => n + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))`)
	if len(small) > 0 {
		t.Errorf("touch targets under 44 px in the composer and emoji picker: %v", small)
	}

	// Reduced motion: the panel does not animate.
	anim := func(ctx context.Context) string {
		return browsertest.Eval[string](t, ctx, `getComputedStyle(`+shadow+`.querySelector('.panel')).animationName`)
	}
	if a := anim(ctx); a != "pop" {
		t.Fatalf("without a preference the panel animates %q, want pop", a)
	}
	reduce := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}}
	if err := chromedp.Do(ctx, emulate(emulation.SetEmulatedMedia, reduce)); err != nil {
		t.Fatal(err)
	}
	if a := anim(ctx); a != "none" {
		t.Fatalf("with prefers-reduced-motion the panel animates %q", a)
	}

	// 200% zoom of a 1280 x 800 window: 640 x 400 CSS pixels at scale 2. The
	// panel fills the window, and its header, form and button stay inside
	// it without horizontal scrolling.
	zoom := browsertest.New(t, 1280, 800)
	if err := chromedp.Do(zoom, chromedp.EmulateViewport(640, 400, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	openWidget(t, zoom, offline)
	waitJS(t, zoom, "the offline form", shadow+`.querySelector('form.offline-form textarea')`)
	fit := browsertest.Eval[map[string]float64](t, zoom, `(() => { const r = `+shadow+`; const p = r.querySelector('.panel').getBoundingClientRect();
		const f = r.querySelector('form.offline-form');
		return {w: p.width, h: p.height, scroll: f.scrollWidth - f.clientWidth, close: r.querySelector('.close').getBoundingClientRect().right, vw: innerWidth}; })()`)
	if fit["w"] != 640 || fit["h"] != 400 || fit["scroll"] > 0 || fit["close"] > fit["vw"] {
		t.Errorf("at 200%% zoom: %v", fit)
	}
	// The submit button is reachable by scrolling the form.
	runJS(t, zoom, shadow+`.querySelector('form.offline-form button[type=submit]').scrollIntoView()`)
	waitJS(t, zoom, "the submit button in view", `(() => { const b = `+shadow+`.querySelector('form.offline-form button[type=submit]').getBoundingClientRect(); return b.bottom <= innerHeight && b.top >= 0; })()`)
	browsertest.Screenshot(t, zoom, "widget-zoom-200")
}
