package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// staffPages are the staff app's pages with the element that shows each
// has loaded its data (the console with a conversation open).
var staffPages = []struct{ name, path, ready string }{
	{"console", "/app/console", `(document.querySelector('.conv-list li button')?.click(), !!document.querySelector('.conv-head button') && document.querySelectorAll('.messages .msg').length > 0)`},
	{"reports", "/app/reports", `!!document.querySelector('#report-status')?.dataset.total`},
	{"overview", "/app/overview", `!!document.querySelector('.page[data-page=overview] .stat, .page[data-page=overview] .cards')`},
	{"review queue", "/app/moderation", `!!document.querySelector('#queue .queue-item')`},
	{"audit log", "/app/moderation/audit", `!!document.querySelector('.page[data-page=audit] table, .page[data-page=audit] .empty')`},
	{"policy", "/app/moderation/policy", `document.querySelector('#policy-json')?.value.length > 0`},
	{"canned replies", "/app/admin/canned", `!!document.querySelector('#canned-list .empty, #canned-table')`},
	{"sites", "/app/admin/sites", `!!document.querySelector('#sites-table') && !!document.querySelector('#site-form')`},
	{"users", "/app/admin/users", `!!document.querySelector('#users-table')`},
	{"teams", "/app/admin/teams", `!!document.querySelector('#teams-list table, #teams-list .empty')`},
	{"API tokens", "/app/admin/tokens", `!!document.querySelector('#tokens-list table, #tokens-list .empty') && document.querySelectorAll('#token-sites option').length > 0`},
	{"webhooks", "/app/admin/webhooks", `!!document.querySelector('#webhooks-list table, #webhooks-list .empty') && document.querySelectorAll('#webhook-site option').length > 0`},
}

// TestE2EStaffPagesAccessible runs axe-core on the sign-in page and on
// every page of the staff app with real data behind it (a conversation in
// the inbox, reports, a site open in the editor) and fails on any serious
// or critical violation.
func TestE2EStaffPagesAccessible(t *testing.T) {
	p := startE2E(t)
	v := newGoVisitor(t, p.base, p.site.Key, p.base)
	conv := v.say("c1", "Hello, is anyone there?")
	// A flagged message, so that the review queue and audit log have items.
	v.say("c2", p.flaggedText("you people are idiots", "this is fucking useless", "you are stupid", "answer me you idiot"))

	ctx := browsertest.New(t, 1366, 900)
	do(t, ctx, "open the sign-in page", chromedp.Navigate(p.base+"/login"))
	waitFor(t, ctx, 15*time.Second, `!!document.querySelector('#login-form')`)
	browsertest.Audit(t, ctx, "staff sign-in")
	loginUI(t, ctx, p.base, "/app/console", initialAdminEmail, e2eAdminPassword)
	for _, pg := range staffPages {
		path := pg.path
		if pg.name == "sites" {
			path += "?site=" + p.site.ID
		}
		do(t, ctx, "open "+pg.name, chromedp.Navigate(p.base+path))
		waitFor(t, ctx, 20*time.Second, pg.ready)
		browsertest.Audit(t, ctx, "staff "+pg.name)
	}
	do(t, ctx, "open the transcript", chromedp.Navigate(p.base+"/app/conversations/"+conv))
	waitFor(t, ctx, 20*time.Second, `document.querySelectorAll('#transcript .msg').length > 0 && document.querySelectorAll('#timeline li').length > 0`)
	browsertest.Audit(t, ctx, "staff transcript")
}

// TestE2EAdminSetsSiteLanguages: an admin sees that a pale site colour
// fails contrast with white text, offers Spanish, overrides one of
// Parley's Spanish texts and adds a Spanish greeting in the Sites page; a
// wrong placeholder is refused with the server's message; the widget on a
// Spanish page then uses both.
func TestE2EAdminSetsSiteLanguages(t *testing.T) {
	p := startE2E(t)
	page := newTestPage(t, strings.Replace(p.site.Snippet, " async", ` data-language="es" async`, 1))
	p.allowOrigin(p.site.ID, page.origin)

	ctx := browsertest.New(t, 1366, 900)
	loginUI(t, ctx, p.base, "/app/admin/sites", initialAdminEmail, e2eAdminPassword)
	do(t, ctx, "open the site", chromedp.Navigate(p.base+"/app/admin/sites?site="+p.site.ID))
	waitFor(t, ctx, 15*time.Second, `!!document.querySelector('#site-form #site-languages')`)
	if ok := eval[string](t, ctx, `document.querySelector('#site-color-contrast').dataset.ok`); ok != "true" {
		t.Fatalf("the default indigo is flagged: %s", eval[string](t, ctx, `document.querySelector('#site-color-contrast').textContent`))
	}
	do(t, ctx, "pick a pale colour", chromedp.SetValue(chromedp.CSS("#site-color"), "#fde047"), chromedp.Evaluate[chromedp.Void](
		`document.querySelector('#site-color').dispatchEvent(new Event('input', {bubbles: true}))`))
	note := eval[string](t, ctx, `document.querySelector('#site-color-contrast').textContent`)
	if !strings.Contains(note, "fails WCAG AA") || !strings.Contains(note, "dark text") {
		t.Fatalf("pale colour note: %q", note)
	}
	do(t, ctx, "offer Spanish and edit its texts",
		chromedp.Click(chromedp.CSS(`#site-languages input[name=languages][value=es]`)),
		chromedp.SetValue(chromedp.CSS("#site-text-lang"), "es"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#site-text-lang').dispatchEvent(new Event('change', {bubbles: true}))`))
	waitFor(t, ctx, 5*time.Second, `!!document.querySelector('#ov-es-launcher_open')`)
	do(t, ctx, "a wrong placeholder",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#site-overrides').open = true`),
		chromedp.SendKeys(chromedp.CSS("#ov-es-notice_joined"), "{nombre} está aquí"),
		chromedp.Click(chromedp.CSS("#save-site")))
	waitFor(t, ctx, 10*time.Second, `document.querySelector('#site-form .error')?.textContent.includes('unknown placeholder {nombre}')`)
	browsertest.Audit(t, ctx, "staff sites with language settings")
	browsertest.Screenshot(t, ctx, "e2e-admin-site-languages")
	do(t, ctx, "fix it, override the launcher and greet in Spanish",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#ov-es-notice_joined').value = ''`),
		chromedp.SendKeys(chromedp.CSS("#ov-es-launcher_open"), "¿Hablamos?"),
		chromedp.SendKeys(chromedp.CSS("#site-tr-greeting"), "¡Hola! ¿En qué te ayudamos?"),
		chromedp.Click(chromedp.CSS("#save-site")))
	waitFor(t, ctx, 10*time.Second, `[...document.querySelectorAll('.toast')].some(t => t.textContent.startsWith('Saved'))`)

	visitor := browsertest.New(t, 1280, 800)
	do(t, visitor, "open the Spanish page", chromedp.Navigate(page.origin+"/"))
	waitFor(t, visitor, 15*time.Second, widgetJS(`w.querySelector('.launcher')?.getAttribute('aria-label') === '¿Hablamos?'`))
	do(t, visitor, "open the widget", chromedp.Evaluate[chromedp.Void](widgetJS(`w.querySelector('.launcher').click()`)))
	waitFor(t, visitor, 15*time.Second, widgetJS(`w.querySelector('.greeting')?.textContent === '¡Hola! ¿En qué te ayudamos?' && w.querySelector('.composer textarea').placeholder === 'Escribe un mensaje…' && w.querySelector('form.offline-form button[type=submit]')?.textContent === 'Enviar mensaje'`))
	if ink := eval[string](t, visitor, widgetJS(`getComputedStyle(w.querySelector('.header')).color`)); ink != "rgb(17, 24, 39)" {
		t.Errorf("header text on the pale colour is %s, want the dark ink", ink)
	}
	browsertest.Screenshot(t, visitor, "e2e-widget-spanish-override")
}
