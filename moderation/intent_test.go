package moderation

import (
	"strings"
	"testing"
	"time"
)

// TestIntentRulesCatchHarmInOrdinaryWords checks one example of each
// grammar family per language, written for this test, and that the span
// covers the words that carry the intent.
func TestIntentRulesCatchHarmInOrdinaryWords(t *testing.T) {
	e := defaultEngine(t)
	cases := []struct{ text, cat, span string }{
		{"I know which depot you work at", CatThreat, "I know which depot you work"},
		{"something might happen to your van", CatThreat, "something might happen to your"},
		{"hope your shop burns down", CatThreat, "hope your shop burns"},
		{"Sé dónde vives, ten cuidado", CatThreat, ""},
		{"Vou te encontrar", CatThreat, ""},
		{"Ich werde dich finden", CatThreat, ""},
		{"Je vais te retrouver", CatThreat, ""},
		{"immigrants are all thieves", CatHate, "immigrants are all thieves"},
		{"people like you shouldn't be allowed to work here", CatHate, ""},
		{"Las mujeres no deberían trabajar en soporte", CatHate, ""},
		{"your voice is really sexy", CatHarassment, "your voice is really sexy"},
		{"send me a selfie of you please", CatHarassment, ""},
		{"are you even able to read?", CatAbuse, "you even able to read"},
		{"who hired you honestly", CatAbuse, ""},
		{"to verify your account send me your password", CatPhishing, ""},
		{"Install AnyDesk so I can fix your bank account", CatPhishing, ""},
		{"Best SEO services for your store, rank first on Google", CatSpam, ""},
		{"Damn, the parcel is late", CatProfanity, ""},
	}
	for _, c := range cases {
		v := e.Check(c.text)
		checkSpans(t, c.text, v)
		if !v.Has(c.cat) {
			t.Errorf("%q: categories %v, want %s", c.text, v.Categories, c.cat)
			continue
		}
		if c.span == "" {
			continue
		}
		for _, s := range v.Spans {
			if s.Category == c.cat && c.text[s.Start:s.End] != c.span {
				t.Errorf("%q: %s span %q, want %q", c.text, c.cat, c.text[s.Start:s.End], c.span)
			}
		}
	}
}

// TestIntentVetoes keeps negation, reported speech, quotation, allow-list
// phrases and self-deprecation clean.
func TestIntentVetoes(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{
		"I would never hurt you, I just want my refund",
		"the courier said he would kill me if I complained, is that allowed?",
		"someone wrote 'you people are animals' in a review, please remove it",
		"I'll shoot you an email with the photos",
		"I feel like an idiot, I typed the wrong address",
		"I know where your office is, can I return it in person?",
		"You'll regret discontinuing the blue one, it was the best",
		"Are all of them waterproof?",
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %+v", text, v.Action, v.Categories, v.Spans)
		}
	}
}

func TestGrammarErrorsNameTheLine(t *testing.T) {
	for _, doc := range []string{
		"[threat]\nbad rule without colon",
		"no: category",
		"[threat]\nr: a ~99 b",
		"[threat]\nr: a? b",
		"[Threat]\nr: a",
	} {
		if _, err := parseGrammar(doc); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: error %v", doc, err)
		}
	}
}

func TestEvasionsOfIntent(t *testing.T) {
	e := defaultEngine(t)
	cases := map[string]string{
		"ΥΟU ΑRΕ ΑΝ ΙDΙΟΤ":      CatAbuse,     // Greek capitals
		"Ι ΚΝΟW WΗΕRΕ ΥΟU LΙVΕ": CatThreat,    // Greek capitals
		"you are an i-d-i-o-t":  CatAbuse,     // a separator between every letter
		"S-c-h-e-i-ß-e":         CatProfanity, // ß folds to two letters
		"Ⓨⓞⓤ ⓐⓡⓔ ⓐ ⓒⓛⓞⓦⓝ":       CatAbuse,
	}
	for text, cat := range cases {
		if v := e.Check(text); !v.Has(cat) {
			t.Errorf("%q: %v, want %s", text, v.Categories, cat)
		}
	}
}

func TestOwnDomainsAreAllowedAndTheirLookalikesArePhishing(t *testing.T) {
	p := DefaultPolicy()
	p.Links.OwnDomains = []string{"acme.com"}
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	if v := e.Check("our help pages: https://help.acme.com/returns"); v.Action != ActionAllow {
		t.Fatalf("own domain: %+v", v)
	}
	for _, text := range []string{"log in at https://acme-support.xyz/login", "reset at acrne.com/reset"} {
		if v := e.Check(text); !v.Has(CatPhishing) {
			t.Errorf("%q: %v, want phishing", text, v.Categories)
		}
	}
	bad := DefaultPolicy()
	bad.Links.OwnDomains = []string{"not a domain"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "links.own_domains[0]") {
		t.Fatalf("invalid own domain: %v", err)
	}
}

func TestBrandLookalikesAndRiskyDomains(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{"http://rnicrosoft-login.com", "netfl1x-account.com/verify", "paypai.com/login"} {
		if v := e.Check(text); !v.Has(CatPhishing) {
			t.Errorf("%q: %v, want phishing", text, v.Categories)
		}
	}
	for _, text := range []string{"see https://www.microsoft.com/store", "my stream.example.com page", "https://steampowered.com"} {
		if v := e.Check(text); v.Has(CatPhishing) {
			t.Errorf("%q: %v, want no phishing", text, v.Categories)
		}
	}
	if v := e.Check("Huge discount on sneakers, 70% off at kicks-sale.shop"); !v.Has(CatSpam) {
		t.Errorf("promotion on a cheap TLD: %v", v.Categories)
	}
	if v := e.Check("🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥"); !v.Has(CatSpam) {
		t.Errorf("emoji run: %v", v.Categories)
	}
	if v := e.Check("thanks!!!!!!!!!!!!!!!!"); v.Action != ActionAllow {
		t.Errorf("exclamation marks are not spam: %v", v.Categories)
	}
}

func TestNewlySeenDomainWithPromotionIsSpam(t *testing.T) {
	e := defaultEngine(t)
	d := newMemDomains()
	now := time.Now()
	promo := "Exclusive offer for new customers, visit example-deals.com"
	if v := newDomainSpam(d, e, "s1", "see example-deals.com for the manual", e.Check("see example-deals.com for the manual"), now); v.Has(CatSpam) {
		t.Fatalf("a plain link is not spam: %v", v.Categories)
	}
	// the site has now seen the domain: promotion with it is judged by the rules alone
	if v := newDomainSpam(d, e, "s1", promo, e.Check(promo), now); v.Has(CatSpam) && !e.Check(promo).Has(CatSpam) {
		t.Fatalf("a known domain made it spam: %+v", v)
	}
	// another site has never seen it
	v := newDomainSpam(d, e, "s2", promo, e.Check(promo), now)
	if !v.Has(CatSpam) {
		t.Fatalf("promotion with a domain new to the site: %+v", v)
	}
	found := false
	for _, s := range v.Spans {
		found = found || (s.Rule == "link:new-domain-promo" && s.Match == "example-deals.com")
	}
	if !found && !e.Check(promo).Has(CatSpam) {
		t.Fatalf("spans %+v lack the new-domain span", v.Spans)
	}
}

func TestMemDomainsStaysBounded(t *testing.T) {
	d := newMemDomains()
	now := time.Now()
	for i := range memDomainsPerSite + 100 {
		d.FirstSeen("s", strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String()+".com", now.Add(time.Duration(i)*time.Second))
	}
	if n := len(d.sites["s"]); n > memDomainsPerSite {
		t.Fatalf("%d domains kept", n)
	}
	if !d.FirstSeen("s", "fresh.com", now) || d.FirstSeen("s", "fresh.com", now.Add(time.Hour)) {
		t.Fatal("first and second sighting")
	}
}
