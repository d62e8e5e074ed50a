package chatsvc

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parleychat/parley/sqlstore/sqltest"
	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

// cldrForms are the plural forms CLDR (as golang.org/x/text ships it)
// needs for lang: the forms integers 0..1000 and one-decimal fractions take.
func cldrForms(lang string) []string {
	names := map[plural.Form]string{plural.Other: "other", plural.Zero: "zero", plural.One: "one", plural.Two: "two", plural.Few: "few", plural.Many: "many"}
	tag := language.Make(lang)
	seen := map[string]bool{}
	for i := 0; i <= 1000; i++ {
		seen[names[plural.Cardinal.MatchPlural(tag, i, 0, 0, 0, 0)]] = true
		for f := 1; f <= 9; f++ {
			seen[names[plural.Cardinal.MatchPlural(tag, i, 1, 1, f, f)]] = true
		}
	}
	var out []string
	for _, f := range pluralForms {
		if seen[f] {
			out = append(out, f)
		}
	}
	return out
}

// catalogProblems compares catalog c of lang with the English one: keys
// missing or extra, a different kind (text or plural), different
// placeholders, empty texts, plural forms the language needs but lacks,
// unknown plural forms.
func catalogProblems(ref catalog, lang string, c catalog) []string {
	var out []string
	need := cldrForms(lang)
	for _, key := range sortedKeys(ref) {
		want := ref[key]
		got, ok := c[key]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s.json lacks %q (English: %q)", lang, key, want.Text+strings.Join(formsOf(want), ",")))
			continue
		case (want.Plural == nil) != (got.Plural == nil):
			out = append(out, fmt.Sprintf("%s.json %q: English is plural=%v, this is plural=%v", lang, key, want.Plural != nil, got.Plural != nil))
			continue
		}
		if got.Plural == nil {
			if got.Text == "" {
				out = append(out, fmt.Sprintf("%s.json %q is empty", lang, key))
			}
			if p, w := placeholders(got.Text), placeholders(want.Text); !slices.Equal(p, w) {
				out = append(out, fmt.Sprintf("%s.json %q uses placeholders %v, English %v", lang, key, p, w))
			}
			continue
		}
		for _, f := range need {
			if got.Plural[f] == "" {
				out = append(out, fmt.Sprintf("%s.json %q lacks the plural form %q (%s needs %v)", lang, key, f, lang, need))
			}
		}
		for _, f := range sortedKeys(got.Plural) {
			if !slices.Contains(pluralForms, f) {
				out = append(out, fmt.Sprintf("%s.json %q has an unknown plural form %q", lang, key, f))
			}
			for _, p := range placeholders(got.Plural[f]) {
				if !slices.Contains(messagePlaceholders(want), p) {
					out = append(out, fmt.Sprintf("%s.json %q.%s uses {%s}, which English does not have", lang, key, f, p))
				}
			}
		}
	}
	for _, key := range sortedKeys(c) {
		if _, ok := ref[key]; !ok {
			out = append(out, fmt.Sprintf("%s.json has %q, which en.json lacks", lang, key))
		}
	}
	return out
}

// TestCatalogsComplete fails when a shipped catalog lacks a key of the
// English one (or has one English lacks), when a text's kind or
// placeholders differ from English, or when a plural text misses a form
// its language needs.
func TestCatalogsComplete(t *testing.T) {
	ref := catalogs[referenceLanguage]
	if len(ref) < 50 {
		t.Fatalf("the English catalog has %d keys; it did not load", len(ref))
	}
	for _, l := range shippedLanguages {
		c, ok := catalogs[l.Code]
		if !ok {
			t.Errorf("no catalog for shipped language %s", l.Code)
			continue
		}
		for _, p := range catalogProblems(ref, l.Code, c) {
			t.Error(p)
		}
	}
	if len(catalogs) != len(shippedLanguages) {
		t.Errorf("i18n/ holds %d catalogs, %d languages are shipped", len(catalogs), len(shippedLanguages))
	}
	if textDirection("ar") != "rtl" || textDirection("he") != "rtl" || textDirection("fa") != "rtl" || textDirection("de") != "ltr" {
		t.Error("text directions are wrong")
	}
}

// TestCatalogCheckCatchesGaps: the completeness check reports each kind of
// gap in catalogs written to a temporary directory, and a malformed
// catalog does not load.
func TestCatalogCheckCatchesGaps(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, "i18n", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "i18n"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("en.json", `{"a": "A {name}", "b": "B", "n": {"one": "one", "other": "{count}"}}`)
	write("ar.json", `{"a": "أ {nom}", "n": {"one": "واحد", "other": "{count}", "lots": "x"}, "z": "extra"}`)
	got, err := loadCatalogs(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(catalogProblems(got["en"], "ar", got["ar"]), "\n")
	for _, want := range []string{
		`ar.json lacks "b"`,
		`ar.json "a" uses placeholders [nom], English [name]`,
		`ar.json "n" lacks the plural form "zero"`, `ar.json "n" lacks the plural form "few"`,
		`ar.json "n" has an unknown plural form "lots"`,
		`ar.json has "z", which en.json lacks`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("the check missed %s; it reported:\n%s", want, problems)
		}
	}
	write("bad.json", `{"a": 3}`)
	if _, err := loadCatalogs(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("a malformed catalog: %v", err)
	}
}

// keyLiteralRE finds string literals in widget.js that look like catalog keys.
var keyLiteralRE = regexp.MustCompile(`"([a-z]+(?:\.[a-z_]+)+)"`)

// TestWidgetUsesCatalogKeys fails when widget.js names a text that the
// English catalog lacks, or builds a key at run time (which this check
// could not see).
func TestWidgetUsesCatalogKeys(t *testing.T) {
	src, err := widgetFS.ReadFile("widget/widget.js")
	if err != nil {
		t.Fatal(err)
	}
	ref := catalogs[referenceLanguage]
	namespaces := map[string]bool{}
	for k := range ref {
		namespaces[k[:strings.IndexByte(k, '.')]] = true
	}
	used := map[string]bool{}
	for _, m := range keyLiteralRE.FindAllStringSubmatch(string(src), -1) {
		key := m[1]
		if !namespaces[key[:strings.IndexByte(key, '.')]] {
			continue
		}
		used[key] = true
		if _, ok := ref[key]; !ok {
			t.Errorf("widget.js uses %q, which i18n/en.json lacks", key)
		}
	}
	if dyn := regexp.MustCompile(`"[a-z]+\.[a-z_.]*"\s*\+`).FindAllString(string(src), -1); len(dyn) > 0 {
		t.Errorf("widget.js builds catalog keys at run time (%v); name each key as a literal", dyn)
	}
	if len(used) < 40 {
		t.Errorf("widget.js names only %d catalog keys; its texts do not come from the catalog", len(used))
	}
	// English visitor-facing words must not be hard-coded in the widget.
	for _, s := range []string{"Write a message", "Open chat", "How did we do", "joined the chat", "in line", "Thank you"} {
		if strings.Contains(string(src), s) {
			t.Errorf("widget.js still has the English text %q", s)
		}
	}
}

func TestMatchLanguage(t *testing.T) {
	multi := SiteSettings{DefaultLanguage: "de", Languages: []string{"en", "es", "ar"}}
	single := SiteSettings{DefaultLanguage: "fr"}
	cases := []struct {
		st    SiteSettings
		prefs []string
		want  string
	}{
		{multi, []string{"es-MX", "en"}, "es"},
		{multi, []string{"ja", "en-GB"}, "en"},
		{multi, []string{"ar-EG"}, "ar"},
		{multi, []string{"ja"}, "de"},
		{multi, []string{"!!", ""}, "de"},
		{multi, nil, "de"},
		{single, []string{"es"}, "fr"},
		{SiteSettings{}, []string{"es"}, "en"},
	}
	for _, c := range cases {
		if got := c.st.matchLanguage(c.prefs); got != c.want {
			t.Errorf("%v with languages %v: got %s, want %s", c.prefs, c.st.siteLanguages(), got, c.want)
		}
	}
}

// TestSiteLanguageSettings: the admin API refuses unknown languages, keys,
// plural forms and placeholders with a message naming them, and normalises
// what it accepts.
func TestSiteLanguageSettings(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		admin := e.staff("Admin", "admin")
		bad := []struct {
			settings map[string]any
			want     string
		}{
			{map[string]any{"default_language": "xx"}, `default_language "xx" is not a shipped language (en, es, pt, de, fr, ar)`},
			{map[string]any{"languages": []string{"en", "klingon"}}, `languages[1] "klingon" is not a shipped language`},
			{map[string]any{"strings": map[string]any{"it": map[string]string{"launcher.open": "Apri"}}}, `strings: language "it" is not shipped`},
			{map[string]any{"strings": map[string]any{"es": map[string]string{"launcher.opne": "Abrir"}}}, `strings.es["launcher.opne"]: unknown key`},
			{map[string]any{"strings": map[string]any{"es": map[string]string{"notice.joined": "{nombre} está aquí"}}}, `strings.es["notice.joined"]: unknown placeholder {nombre} (the message has {name})`},
			{map[string]any{"strings": map[string]any{"es": map[string]string{"queue.ahead": "Espere"}}}, `strings.es["queue.ahead"]: queue.ahead counts something; override each plural form instead (queue.ahead.one, queue.ahead.many, queue.ahead.other)`},
			{map[string]any{"strings": map[string]any{"de": map[string]string{"queue.ahead.few": "x"}}}, `strings.de["queue.ahead.few"]: queue.ahead has no "few" form in de (it has one, other)`},
			{map[string]any{"strings": map[string]any{"en": map[string]string{"composer.send_label": strings.Repeat("x", 1001)}}}, `strings.en["composer.send_label"]: 1001 characters, at most 1000`},
			{map[string]any{"translations": map[string]any{"xx": map[string]string{"greeting": "hi"}}}, `translations: language "xx" is not shipped`},
			{map[string]any{"bot": map[string]any{"faq": []map[string]any{{"keywords": []string{"a"}, "answer": "b", "language": "zz"}}}}, `bot.faq[0].language "zz" is not a shipped language`},
		}
		for _, c := range bad {
			var out apiError
			admin.call("PUT", "/api/chat/sites/"+e.site.ID, map[string]any{"name": "Shop", "allowed_origins": []string{testOrigin}, "settings": c.settings}, 400, &out)
			if out.Code != CodeBadRequest || !strings.Contains(out.Message, c.want) {
				t.Errorf("settings %v: got %q, want it to contain %q", c.settings, out.Message, c.want)
			}
		}
		var site Site
		admin.call("PUT", "/api/chat/sites/"+e.site.ID, map[string]any{"name": "Shop", "allowed_origins": []string{testOrigin}, "settings": map[string]any{
			"default_language": " DE ", "languages": []string{"es", "ar", "es"},
			"strings":      map[string]any{"es": map[string]string{"launcher.open": "¡Hablemos!", "queue.ahead.one": "Falta {count}"}},
			"translations": map[string]any{"es": map[string]string{"greeting": "¡Hola!"}},
		}}, 200, &site)
		st := site.Settings
		if st.DefaultLanguage != "de" || !slices.Equal(st.Languages, []string{"de", "es", "ar"}) || st.Strings["es"]["launcher.open"] != "¡Hablemos!" {
			t.Fatalf("saved settings: default %q, languages %v, strings %v", st.DefaultLanguage, st.Languages, st.Strings)
		}
	})
}

// TestVisitorI18nEndpoint: the widget gets the language matching the
// browser among the site's, its direction and the catalog with the site's
// overrides; other origins and unknown keys are refused.
func TestVisitorI18nEndpoint(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		if _, err := e.svc.UpdateSite(ctx, e.site.ID, SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, Settings: SiteSettings{
			Languages: []string{"es", "ar"},
			Strings:   map[string]map[string]string{"es": {"launcher.open": "¡Hablemos!", "queue.ahead.one": "Solo {count} delante"}},
		}}, "admin"); err != nil {
			t.Fatal(err)
		}
		var got visitorI18n
		get := func(langs, origin string, want int, out any) {
			t.Helper()
			doJSON(t, http.DefaultClient, "GET", e.base+"/api/chat/visitor/i18n?site_key="+e.site.Key+"&langs="+langs, nil, want, out, map[string]string{"Origin": origin})
		}
		get("es-AR,en", testOrigin, 200, &got)
		if got.Lang != "es" || got.Dir != "ltr" || got.Messages["launcher.open"].Text != "¡Hablemos!" ||
			got.Messages["queue.ahead"].Plural["one"] != "Solo {count} delante" || got.Messages["queue.ahead"].Plural["other"] != catalogs["es"]["queue.ahead"].Plural["other"] ||
			got.Messages["composer.send_label"].Text != "Enviar mensaje" || !slices.Equal(got.Languages, []string{"en", "es", "ar"}) {
			t.Fatalf("es answer: lang %s dir %s languages %v launcher %q queue %v", got.Lang, got.Dir, got.Languages, got.Messages["launcher.open"].Text, got.Messages["queue.ahead"])
		}
		get("ar", testOrigin, 200, &got)
		if got.Lang != "ar" || got.Dir != "rtl" || got.Messages["composer.send_label"].Text != "أرسل الرسالة" {
			t.Fatalf("ar answer: %s %s %q", got.Lang, got.Dir, got.Messages["composer.send_label"].Text)
		}
		get("ja", testOrigin, 200, &got)
		if got.Lang != "en" {
			t.Fatalf("an unsupported browser language got %s, want the site's default", got.Lang)
		}
		var ae apiError
		get("es", "https://evil.example", 403, &ae)
		if ae.Code != CodeOriginNotAllowed {
			t.Fatalf("foreign origin: %+v", ae)
		}
		doJSON(t, http.DefaultClient, "GET", e.base+"/api/chat/visitor/i18n?site_key=pk_nope", nil, 404, &ae, nil)
		if ae.Code != CodeUnknownSite || !strings.Contains(ae.Message, `"pk_nope"`) {
			t.Fatalf("unknown site: %+v", ae)
		}
		// Admins get every catalog for the override editor.
		var langs struct {
			Languages []LanguageInfo     `json:"languages"`
			Catalogs  map[string]catalog `json:"catalogs"`
		}
		e.staff("Admin", "admin").call("GET", "/api/chat/languages", nil, 200, &langs)
		codes := make([]string, len(langs.Languages))
		for i, l := range langs.Languages {
			codes[i] = l.Code
		}
		sort.Strings(codes)
		if !slices.Equal(codes, []string{"ar", "de", "en", "es", "fr", "pt"}) || len(langs.Catalogs["ar"]) != len(catalogs["en"]) || langs.Languages[5].Dir != "rtl" {
			t.Fatalf("languages: %+v (%d Arabic texts)", langs.Languages, len(langs.Catalogs["ar"]))
		}
		e.staff("Agent", "agent").call("GET", "/api/chat/languages", nil, 403, nil)
	})
}

// TestBotSpeaksVisitorLanguage: a Spanish widget gets the site's Spanish
// greeting, FAQ answers, the catalog's (overridden) fallback, the Spanish
// away message and a Spanish block reason; an English visitor on the same
// site gets none of the Spanish-only answers.
func TestBotSpeaksVisitorLanguage(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Moderator = wordModerator{} })
		in := SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, Settings: SiteSettings{
			Greeting: "Hello!", Languages: []string{"es"},
			Strings: map[string]map[string]string{"es": {"bot.fallback": "No lo sé; te paso con alguien."}},
			Translations: map[string]SiteTexts{"es": {Greeting: "¡Hola!", BotGreeting: "Hola, soy Robo.",
				AwayMessage: "Ahora no hay nadie; te responderemos pronto."}},
			Bot: BotSettings{Enabled: true, Name: "Robo", Greeting: "Hi, I am Robo.", AwayMessage: "Nobody is here right now.",
				FAQ: []FAQ{
					{Keywords: []string{"opening hours"}, Answer: "We are open 9 to 5.", Language: "en"},
					{Keywords: []string{"horario"}, Answer: "Abrimos de 9 a 17.", Language: "es"},
					{Keywords: []string{"parking"}, Answer: "P1 / P2"},
				}},
		}}
		if _, err := e.svc.UpdateSite(context.Background(), e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		visitor := func(lang string) *wsClient {
			tok, _ := e.visitorSession("")
			h := http.Header{}
			h.Set("Origin", testOrigin)
			return dial(t, e.ws+"/ws/visitor?token="+tok+"&lang="+lang, h)
		}
		said := func(v *wsClient) string { return v.expect("message", nil).obj("message").str("text") }
		ask := func(v *wsClient, id, text string) {
			v.send(map[string]any{"type": "send", "client_id": id, "text": text})
			v.expect("ack", byClient(id))
		}

		es := visitor("es-ES")
		hello := es.expect("hello", nil).obj("site")
		if hello.str("lang") != "es" || hello.str("greeting") != "¡Hola!" || hello.str("dir") != "ltr" {
			t.Fatalf("Spanish hello: %v", hello)
		}
		ask(es, "q1", "¿Cuál es su horario?")
		if g, a := said(es), said(es); g != "Hola, soy Robo." || a != "Abrimos de 9 a 17." {
			t.Fatalf("the bot said %q then %q to a Spanish visitor", g, a)
		}
		ask(es, "q2", "parking?")
		if a := said(es); a != "P1 / P2" {
			t.Fatalf("an entry for every language answered %q", a)
		}
		es.send(map[string]any{"type": "send", "client_id": "q3", "text": "eres un badword"})
		if r := es.expect("blocked", byClient("q3")).str("reason"); r != "Tu mensaje no se entregó porque se marcó como abuso." {
			t.Fatalf("Spanish block reason %q", r)
		}
		ask(es, "q4", "opening hours")
		if a, away := said(es), said(es); a != "No lo sé; te paso con alguien." || away != "Ahora no hay nadie; te responderemos pronto." {
			t.Fatalf("Spanish fallback %q and away message %q", a, away)
		}

		en := visitor("")
		if l := en.expect("hello", nil).obj("site").str("lang"); l != "en" {
			t.Fatalf("a widget without a language speaks %q", l)
		}
		ask(en, "e1", "horario")
		if g, a := said(en), said(en); g != "Hi, I am Robo." || a != "I do not know that one yet, so I am bringing in a human." {
			t.Fatalf("the bot said %q then %q to an English visitor", g, a)
		}
		// "agente" hands over in Spanish, from the catalog's phrases.
		es2 := visitor("es")
		es2.expect("hello", nil)
		ask(es2, "h1", "quiero hablar con una persona")
		if g, a := said(es2), said(es2); g != "Hola, soy Robo." || a != "Claro, te paso con una persona." {
			t.Fatalf("Spanish hand-over: %q then %q", g, a)
		}
	})
}

// BenchmarkVisitorCatalog measures building a widget's texts (English,
// the language's catalog, the site's overrides) for one i18n request.
func BenchmarkVisitorCatalog(b *testing.B) {
	st := SiteSettings{Languages: []string{"es", "ar"}, Strings: map[string]map[string]string{"ar": {"launcher.open": "تحدث معنا", "queue.ahead.few": "{count}"}}}
	b.ReportAllocs()
	for b.Loop() {
		if c := st.visitorCatalog(st.matchLanguage([]string{"ar-EG", "en"})); len(c) == 0 {
			b.Fatal("empty catalog")
		}
	}
}

// TestSiteTextsFallBack: a translation replaces the texts it has; the
// others, and every text of the default language, are the site's fields.
func TestSiteTextsFallBack(t *testing.T) {
	st := SiteSettings{Greeting: "Hello", ReplyTime: "an hour", Bot: BotSettings{AwayMessage: "Away"},
		Translations: map[string]SiteTexts{"es": {Greeting: "Hola"}, "en": {Greeting: "Ignored"}}}
	if got := st.texts("es"); got.Greeting != "Hola" || got.ReplyTime != "an hour" || got.AwayMessage != "Away" {
		t.Errorf("es texts: %+v", got)
	}
	if got := st.texts("en"); got.Greeting != "Hello" {
		t.Errorf("the default language's greeting is %q, want the site's field", got.Greeting)
	}
	if got := st.texts("ar"); got.Greeting != "Hello" {
		t.Errorf("an untranslated language's greeting is %q", got.Greeting)
	}
	if got := st.visitorText("de", "notice.joined", "name", "Grace"); got != "Grace ist dem Chat beigetreten" {
		t.Errorf("German notice: %q", got)
	}
	if got := st.blockedReason("fr", []string{"spam", "my_rule"}); got != "Votre message n’a pas été distribué car il a été signalé comme spam, my_rule." {
		t.Errorf("French block reason with a custom category: %q", got)
	}
}
