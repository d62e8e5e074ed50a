package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// TestE2EModeratorTeachesFromTheQueue walks item 4 of issue 12 in the
// browser: the review queue says which detector decided each item (the
// lists, or the in-process model with its version), one click puts a
// matched domain on the site's allow list and a matched term on its block
// list (the policy changes and the next message is judged by it), and
// after approve/remove decisions the precision report shows the share
// moderators removed, with the labels export for retraining.
func TestE2EModeratorTeachesFromTheQueue(t *testing.T) {
	p := startE2E(t)
	p.createStaff("mo@e2e.test", "Mo Moderator", "moderator")
	link := p.flaggedText("pictures of the damage: bit.ly/3xDmgPic")
	swear := p.flaggedText("damn, wrong card again")
	byModel := "you are a waste of everyone's time and money" // no list term or rule: the model blocks it
	var judged struct {
		Verdict struct {
			Action  string `json:"action"`
			Sources []struct {
				Source  string `json:"source"`
				Decided bool   `json:"decided"`
			} `json:"sources"`
		} `json:"verdict"`
	}
	p.admin.call("POST", "/api/moderation/policy/test", map[string]string{"site_id": p.site.ID, "text": byModel}, http.StatusOK, &judged)
	if judged.Verdict.Action != "block" || len(judged.Verdict.Sources) != 1 || !strings.HasPrefix(judged.Verdict.Sources[0].Source, "model:parley-lr@") {
		t.Fatalf("the model-only text is judged %+v", judged.Verdict)
	}

	visitor := newGoVisitor(t, p.base, p.site.Key, p.base)
	visitor.say("v-1", "Hello, my card keeps failing")
	for i, text := range []string{link, swear, byModel} {
		visitor.say("v-"+string(rune('2'+i)), text)
	}
	waitUntil(t, 30*time.Second, "three items in the review queue", func() bool {
		var page struct {
			Items []struct{ Text string } `json:"items"`
		}
		p.admin.call("GET", "/api/moderation/items?status=open", nil, http.StatusOK, &page)
		return len(page.Items) == 3
	})

	mod := browsertest.New(t, 1366, 1000)
	loginUI(t, mod, p.base, "/app/moderation", "mo@e2e.test", e2eStaffPassword)
	item := func(text string) string {
		return `[...document.querySelectorAll('#queue .queue-item')].find(a => a.querySelector('.text')?.textContent === ` + jsString(text) + `)`
	}
	waitFor(t, mod, 15*time.Second, `document.querySelectorAll('#queue .queue-item').length === 3`)
	// which detector decided
	waitFor(t, mod, 10*time.Second, item(byModel)+`.querySelector('.sources')?.textContent.includes('model parley-lr@')`)
	for _, text := range []string{link, swear} {
		if got := eval[string](t, mod, item(text)+`.querySelector('.sources').textContent`); !strings.Contains(got, "rules") {
			t.Errorf("item %q shows sources %q", text, got)
		}
	}
	if n := eval[int](t, mod, item(byModel)+`.querySelectorAll('[data-action=allow-list]').length`); n != 0 {
		t.Errorf("the model's item offers %d list actions; it matched no term", n)
	}
	browsertest.Screenshot(t, mod, "e2e-moderator-queue-sources")

	// one click: the shortener's domain on the allow list, the swear word on the block list
	do(t, mod, "allow the domain", chromedp.Evaluate[chromedp.Void](item(link)+`.querySelector('[data-match="bit.ly"] [data-action=allow-list]').click()`))
	waitFor(t, mod, 10*time.Second, `[...document.querySelectorAll('#toasts .toast')].some(t => t.textContent.includes('bit.ly is on the allow list'))`)
	do(t, mod, "block the term", chromedp.Evaluate[chromedp.Void](item(swear)+`.querySelector('[data-match="damn"] [data-action=block-list]').click()`))
	waitFor(t, mod, 10*time.Second, `[...document.querySelectorAll('#toasts .toast')].some(t => t.textContent.includes('damn is on the block list'))`)
	browsertest.Screenshot(t, mod, "e2e-moderator-teach")
	var policy struct {
		Policy struct {
			Block map[string][]string `json:"block"`
			Links struct {
				AllowDomains []string `json:"allow_domains"`
			} `json:"links"`
		} `json:"policy"`
		Stored bool `json:"stored"`
	}
	p.admin.call("GET", "/api/moderation/policy/"+p.site.ID, nil, http.StatusOK, &policy)
	if !policy.Stored || !slices.Contains(policy.Policy.Links.AllowDomains, "bit.ly") || !slices.Contains(policy.Policy.Block["custom"], "damn") {
		t.Fatalf("policy after the list actions %+v", policy)
	}
	for text, want := range map[string]string{"more pictures: bit.ly/3xDmgPic": "allow", "damn it": "block"} {
		p.admin.call("POST", "/api/moderation/policy/test", map[string]string{"site_id": p.site.ID, "text": text}, http.StatusOK, &judged)
		if judged.Verdict.Action != want {
			t.Errorf("after the list actions %q is judged %s, want %s", text, judged.Verdict.Action, want)
		}
	}
	var audit struct {
		Entries []struct{ Action, Detail string } `json:"entries"`
	}
	p.admin.call("GET", "/api/moderation/audit?site_id="+p.site.ID, nil, http.StatusOK, &audit)
	if len(audit.Entries) < 2 || audit.Entries[0].Action != "block_term" || audit.Entries[1].Action != "allow_domain" {
		t.Fatalf("audit after the list actions %+v", audit.Entries)
	}

	// decisions: approve the link, remove the other two → precision 2 of 3
	decide := func(text, action string) {
		t.Helper()
		do(t, mod, action+" "+text, chromedp.Evaluate[chromedp.Void](item(text)+`.querySelector('[data-action=`+action+`]').click()`))
		waitFor(t, mod, 10*time.Second, `!!document.querySelector('dialog[open] textarea')?.value`)
		do(t, mod, "confirm "+action, chromedp.Click(chromedp.CSS(`dialog[open] button[type=submit]`)))
		waitFor(t, mod, 15*time.Second, "!"+item(text))
	}
	decide(link, "approve")
	decide(swear, "remove")
	decide(byModel, "remove")
	do(t, mod, "open the precision report", chromedp.Evaluate[chromedp.Void](`document.querySelector('#precision').open = true`))
	site := `document.querySelector('#precision .site-precision[data-site=` + jsString(p.site.ID) + `]')`
	waitFor(t, mod, 15*time.Second, site+`?.querySelector('.precision-value')?.textContent === '67%' && `+site+`.textContent.includes('2 of 3 removed')`)
	if got := eval[string](t, mod, site+`.textContent`); !strings.Contains(got, "model parley-lr@") || !strings.Contains(got, "link") {
		t.Errorf("precision report lacks the model source or the link category: %q", got)
	}
	if href := eval[string](t, mod, `document.querySelector('#labels-export').getAttribute('href')`); href != "/api/moderation/labels" {
		t.Errorf("labels export link %q", href)
	}
	browsertest.Screenshot(t, mod, "e2e-moderator-precision")

	code, body := p.admin.request("GET", "/api/moderation/labels", nil, false)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if code != http.StatusOK || len(lines) != 3 || !strings.Contains(string(body), `"label":"clean"`) || !strings.Contains(string(body), `"label":"abuse"`) {
		t.Fatalf("labels export: %d %s", code, body)
	}
}
