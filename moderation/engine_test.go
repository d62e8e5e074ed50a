package moderation

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func defaultEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(DefaultPolicy())
	if err != nil {
		t.Fatalf("default engine: %v", err)
	}
	return e
}

// checkSpans asserts that every span lies on rune boundaries of the
// original text and covers something.
func checkSpans(t *testing.T, text string, v Verdict) {
	t.Helper()
	for _, s := range v.Spans {
		if s.Start < 0 || s.End > len(text) || s.Start >= s.End {
			t.Fatalf("span %+v out of range for %q", s, text)
		}
		if !utf8Start(text[s.Start]) || (s.End < len(text) && !utf8Start(text[s.End])) {
			t.Fatalf("span %+v splits a rune of %q", s, text)
		}
	}
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func TestEvasionsAreCaughtWithSpansOnTheOriginalText(t *testing.T) {
	e := defaultEngine(t)
	cases := []struct {
		text, cat, span string // span: the original bytes the first span of cat covers
	}{
		{"what the fuck", CatProfanity, "fuck"},
		{"sh1t happens", CatProfanity, "sh1t"},
		{"@ss", CatProfanity, "@ss"},
		{"f4ck it", CatProfanity, "f4ck"},
		{"fuuuuuuck", CatProfanity, "fuuuuuuck"},
		{"well f u c k", CatProfanity, "f u c k"},
		{"so f.u.c.k.i.n.g slow", CatProfanity, "f.u.c.k.i.n.g"},
		{"ｆｕｃｋ", CatProfanity, "ｆｕｃｋ"},
		{"big 𝐟𝐮𝐜𝐤 up", CatProfanity, "𝐟𝐮𝐜𝐤"},
		{"fuсk (Cyrillic es)", CatProfanity, "fuсk"},
		{"fυck (Greek upsilon)", CatProfanity, "fυck"},
		{"f\u200bu\u200dck", CatProfanity, "f\u200bu\u200dck"},
		{"f\u0336u\u0336c\u0336k\u0336", CatProfanity, "f\u0336u\u0336c\u0336k\u0336"},
		{"ꜰᴜᴄᴋ", CatProfanity, "ꜰᴜᴄᴋ"},
		{"what the f*ck", CatProfanity, "f*ck"},
		{"motherfuckers", CatProfanity, "motherfuckers"},
		{"you are an idiot", CatAbuse, "idiot"},
		{"you're such a useless clown", CatAbuse, "useless"},
		{"y0u are a m0r0n", CatAbuse, "m0r0n"},
		{"I will kill you", CatThreat, "kill you"},
		{"i will k1ll   you", CatThreat, "k1ll   you"},
		{"te voy a matar", CatThreat, "te voy a matar"},
		{"Ich weiß, wo du wohnst", CatThreat, "Ich weiß, wo du wohnst"},
	}
	for _, c := range cases {
		v := e.Check(c.text)
		checkSpans(t, c.text, v)
		if !v.Has(c.cat) {
			t.Errorf("%q: categories %v, want %s", c.text, v.Categories, c.cat)
			continue
		}
		for _, s := range v.Spans {
			if s.Category == c.cat {
				if got := c.text[s.Start:s.End]; got != c.span {
					t.Errorf("%q: %s span covers %q, want %q", c.text, c.cat, got, c.span)
				}
				break
			}
		}
	}
}

func TestInnocentTextStaysClean(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{
		"assessment", "Scunthorpe", "cocktail", "analysis", "class", "classic", "passion", "bass", "Essex",
		"shiitake", "therapist", "cockpit", "Dickens", "peacock", "button", "grasshopper", "the pen is blue",
		"I'll shoot you an email", "this bug is killing me", "kill the process", "Galaxy A55", "Windows 10",
		"mp3", "B2B", "hello hello", "your app is useless", "I feel stupid", "Mi perra está enferma",
		"café con leche", "je suis crevé", "en retard", "MongoDB", "knee-jerk reaction", "summa cum laude",
		"order #4111111111111111", "2024-01-15", "192.168.1.10", "version 1.2.3", "call 911",
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %+v", text, v.Action, v.Categories, v.Spans)
		}
	}
}

func TestDirectedAbuseIsWorseThanCasualSwearing(t *testing.T) {
	e := defaultEngine(t)
	casual, directed := e.Check("this fucking app"), e.Check("fuck you")
	if casual.Action != ActionFlag || directed.Action != ActionBlock || directed.Severity <= casual.Severity {
		t.Fatalf("casual %+v, directed %+v", casual, directed)
	}
	// an insult about someone else is flagged, not blocked: round 4's
	// model (third-party insults in its corpus as insults) judges it so
	// again; after round 3's thanks fix it had added abuse on its own
	insult, aimed := e.Check("that idiot courier"), e.Check("you idiot")
	if insult.Action != ActionFlag || !insult.Has(CatInsult) {
		t.Fatalf("undirected insult %s %v, want flag insult", insult.Action, insult.Categories)
	}
	if insult.Has(CatAbuse) || !aimed.Has(CatAbuse) {
		t.Fatalf("undirected insult %v, aimed %v", insult.Categories, aimed.Categories)
	}
	if threat := e.Check("I know where you live"); threat.Severity <= directed.Severity {
		t.Fatalf("threat severity %d not above abuse %d", threat.Severity, directed.Severity)
	}
}

func TestWildcardsAllowListAndCustomTerms(t *testing.T) {
	p := DefaultPolicy()
	p.Languages = nil
	p.Block = map[string][]string{
		CatCustom: {"spoon", "fork*", "*knife", "*ladle*", "kitchen sink"},
	}
	p.Allow = []string{"forklift", "teaspoon"}
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]bool{
		"a spoon":            true,
		"spoons":             false, // whole word only
		"teaspoon":           false, // whole word, and allowed anyway
		"forks":              true,  // word*
		"forklift":           false, // allow beats block
		"penknife":           true,  // *word
		"knifes":             false, // *word must end the word
		"soupladles":         true,  // *word*
		"the kitchen   sink": true,  // phrase across spaces
		"kitchen. sink":      false, // phrases do not cross sentences
		"k.n.i.f.e":          true,
	} {
		v := e.Check(text)
		if got := v.Has(CatCustom); got != want {
			t.Errorf("%q: custom=%v, want %v (%+v)", text, got, want, v.Spans)
		}
		if want && v.Action != ActionBlock {
			t.Errorf("%q: action %s, want block", text, v.Action)
		}
	}
}

func TestPolicyMapsCategoriesToActionsAndRedacts(t *testing.T) {
	p := DefaultPolicy()
	p.Actions[CatProfanity] = ActionRedact
	p.Actions[CatPII] = ActionAllow
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	v := e.Check("oh shit, mail me at ana@example.com")
	if v.Action != ActionRedact || v.Redacted != "oh ****, mail me at ana@example.com" || v.Has(CatPII) {
		t.Fatalf("verdict %+v", v)
	}
	// redact and flag together: flagged, and still delivered redacted
	p.Actions[CatPII] = ActionRedact
	p.Actions[CatProfanity] = ActionFlag
	e, _ = NewEngine(p)
	v = e.Check("shit, card 4111 1111 1111 1111")
	if v.Action != ActionFlag || v.Redacted != "shit, card **** **** **** ****" {
		t.Fatalf("verdict %+v", v)
	}
}

func TestPIIAndLookalikes(t *testing.T) {
	e := defaultEngine(t)
	pii := map[string]string{
		"mail me: ana.b@example.co.uk":        "ana.b@example.co.uk",
		"ana [at] example [dot] com":          "ana [at] example [dot] com",
		"call +44 7700 900123 today":          "+44 7700 900123",
		"my number (415) 555-0134":            "(415) 555-0134",
		"phone 0151 23456789":                 "0151 23456789",
		"card 4111-1111-1111-1111 please":     "4111-1111-1111-1111",
		"amex 3782 822463 10005":              "3782 822463 10005",
		"IBAN: GB82 WEST 1234 5698 7654 32.":  "GB82 WEST 1234 5698 7654 32",
		"iban fr1420041010050500013m02606 ok": "fr1420041010050500013m02606",
	}
	for text, want := range pii {
		v := e.Check(text)
		if !v.Has(CatPII) || text[v.Spans[0].Start:v.Spans[0].End] != want {
			t.Errorf("%q: %+v, want pii %q", text, v.Spans, want)
		}
	}
	for _, text := range []string{
		"card 4111 1111 1111 1112",          // Luhn fails
		"IBAN GB82 WEST 1234 5698 7654 33",  // mod 97 fails
		"order 100-2934-5521",               // reference context
		"tracking 1Z999AA10123456784",       // code with letters
		"paid 1,299.00 on 12.03.2024",       // amounts and dates
		"serial number 4111 2222 3333 4444", // not Luhn
		"my order number is 4839201",        // short
	} {
		if v := e.Check(text); v.Has(CatPII) {
			t.Errorf("%q: unexpected pii %+v", text, v.Spans)
		}
	}
}

func TestLinks(t *testing.T) {
	p := DefaultPolicy()
	p.Links = LinkOptions{BlockDomains: []string{"evil.example"}, AllowDomains: []string{"parley.example"}}
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	for text, cat := range map[string]string{
		"see https://shop.evil.example/x":          CatLink,
		"https://paypa1-login.com/verify":          CatPhishing,
		"http://203.0.113.9/login":                 CatPhishing,
		"https://www.paypal.com@attacker.example/": CatPhishing,
		"go to bit.ly/3xYz":                        CatLink,
		"example[.]com":                            CatSpam,
		"a.com b.com c.com":                        CatSpam,
	} {
		if v := e.Check(text); !v.Has(cat) {
			t.Errorf("%q: %v, want %s", text, v.Categories, cat)
		}
	}
	for _, text := range []string{"docs at https://parley.example/help", "www.google.com", "paypal.com/help"} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v", text, v.Action, v.Categories)
		}
	}
	if v := e.Check("mail bob@evil.example"); v.Has(CatLink) {
		t.Errorf("email domain judged as a link: %v", v.Categories)
	}
	p.Links.BlockUnknown = true
	e, _ = NewEngine(p)
	if v := e.Check("see www.other.example"); !v.Has(CatLink) {
		t.Errorf("block_unknown: %v", v.Categories)
	}
	if v := e.Check("see https://parley.example/"); v.Has(CatLink) {
		t.Errorf("allowed domain flagged: %v", v.Categories)
	}
}

func TestInvalidPoliciesNameTheEntry(t *testing.T) {
	long := strings.Repeat("a", MaxTermBytes+1)
	many := make([]string, MaxBlockTerms+1)
	for i := range many {
		many[i] = "w" + strings.Repeat("x", i%50)
	}
	cases := map[string]string{
		`{"regexes": [{"name": "orders", "pattern": "(unclosed", "category": "spam"}]}`: "regexes[0]",
		`{"block": {"custom": ["ok", "` + long + `"]}}`:                                 "block.custom[1]",
		`{"block": {"custom": ["fo*o"]}}`:                                               "block.custom[0]",
		`{"allow": ["", "x"]}`:                                                          "allow[0]",
		`{"actions": {"profanity": "nuke"}}`:                                            "actions.profanity",
		`{"languages": ["xx"]}`:                                                         "languages[0]",
		`{"links": {"block_domains": ["not a domain"]}}`:                                "links.block_domains[0]",
		`{"flood": {"window_seconds": -1}}`:                                             "flood.window_seconds",
		`{"colour": "red"}`:                                                             "policy",
		`{"model": {"threshold": 0.2}}`:                                                 "model.threshold",
		`{"model": {"threshold": 1.5}}`:                                                 "model.threshold",
		`{"links": {"own_domains": ["acme com"]}}`:                                      "links.own_domains[0]",
	}
	for doc, field := range cases {
		_, err := ParsePolicy([]byte(doc))
		var pe *PolicyError
		if !errors.As(err, &pe) || pe.Field != field {
			t.Errorf("%s: error %v, want field %s", doc, err, field)
		}
	}
	p := DefaultPolicy()
	p.Block = map[string][]string{"custom": many}
	var pe *PolicyError
	if err := p.Validate(); !errors.As(err, &pe) || !strings.Contains(pe.Msg, "more than") {
		t.Errorf("oversized list: %v", err)
	}
}

func TestDefaultListsParseAndCoverEveryLanguage(t *testing.T) {
	lists, err := loadDefaultLists()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range Languages {
		secs := map[string]int{}
		for _, le := range lists[lang] {
			secs[le.section]++
			if _, _, _, err := parseTerm(le.raw); err != nil {
				t.Errorf("%s line %d %q: %v", lang, le.line, le.raw, err)
			}
		}
		for _, want := range []string{CatProfanity, CatInsult, CatAbuse, CatThreat, CatSpam, CatPhishing, secPronoun} {
			if secs[want] == 0 {
				t.Errorf("%s has no [%s] terms", lang, want)
			}
		}
	}
	e := defaultEngine(t)
	if e.Terms() < 1000 {
		t.Errorf("default engine has %d terms", e.Terms())
	}
	if !slices.Equal(DefaultPolicy().Languages, Languages) {
		t.Errorf("default languages %v", DefaultPolicy().Languages)
	}
}

// TestGeneralisationRules covers the rules added after the held-out set
// exposed their absence: one-word gaps in terms, dots glued between words,
// a trailing leet digit, and insults used as a vocative.
func TestGeneralisationRules(t *testing.T) {
	p := DefaultPolicy()
	p.Block = map[string][]string{CatCustom: {"refund _ now"}}
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text, action, cat string
	}{
		{"refund it now", ActionBlock, CatCustom},                  // gap of one word
		{"refund now", ActionAllow, ""},                            // the gap needs a word
		{"refund my money now", ActionAllow, ""},                   // and exactly one
		{"I'll burn your shop down", ActionBlock, CatThreat},       // default list gap
		{"shoot you an email tomorrow", ActionAllow, ""},           // allow beats block
		{"someone should shoot you", ActionBlock, CatThreat},       //
		{"fuck.you", ActionBlock, CatAbuse},                        // glued dot is no sentence break
		{"I waited. You are fast", ActionAllow, ""},                //
		{"h1jo de put4", ActionBlock, CatAbuse},                    // trailing leet digit
		{"my Galaxy A55 and an mp3 player", ActionAllow, ""},       // digit blocks stay numbers
		{"Shut up and do your job, moron.", ActionBlock, CatAbuse}, // vocative
		{"Idiot!", ActionBlock, CatAbuse},
		{"The driver is an idiot.", ActionFlag, CatInsult},          // about someone else
		{"You're a lying scammer", ActionBlock, CatAbuse},           // adjective linker
		{"I returned it at Dick's Sporting Goods", ActionAllow, ""}, // a name, not aimed
	}
	for _, c := range cases {
		v := e.Check(c.text)
		checkSpans(t, c.text, v)
		if v.Action != c.action || (c.cat != "" && !v.Has(c.cat)) {
			t.Errorf("%q: %s %v, want %s %s", c.text, v.Action, v.Categories, c.action, c.cat)
		}
	}
	for _, bad := range []string{"_ refund", "refund _*"} {
		if _, _, _, err := parseTerm(bad); err == nil {
			t.Errorf("parseTerm(%q) accepted a misplaced gap", bad)
		}
	}
}

// One word said for half of a long message is spam; short repeats and
// varied text are not.
func TestRepeatedWordsSpam(t *testing.T) {
	e := defaultEngine(t)
	for text, want := range map[string]bool{
		strings.Repeat("buy ", 16):                                       true,
		strings.Repeat("order now ", 10):                                 true, // two words, each half
		strings.Repeat("please ", 9) + "help me with my order today":     false,
		"one two three four five six seven eight nine ten eleven twelve": false,
		strings.Repeat("win ", 12) + strings.Repeat("x", 3) + " " + strings.Join(strings.Fields(strings.Repeat("a b c d e f g h i j k l m n ", 1)), " "): false,
	} {
		got := false
		for _, s := range e.Check(text).Spans {
			got = got || s.Rule == "spam:repeated-words"
		}
		if got != want {
			t.Errorf("%q: repeated-words %v, want %v", text, got, want)
		}
	}
}
