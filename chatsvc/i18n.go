package chatsvc

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

// Visitor-facing texts come from message catalogs, one JSON file per
// language in i18n/ (docs/widget.md). A value is a text with {placeholders}
// or, for texts that count something, an object of CLDR plural forms
// ("zero", "one", "two", "few", "many", "other") that the widget picks
// with Intl.PluralRules. English is the reference: every other catalog has
// exactly its keys (TestCatalogsComplete).

//go:embed i18n/*.json
var catalogFS embed.FS

// message is one catalog entry: a text, or its plural forms.
type message struct {
	Text   string
	Plural map[string]string
}

func (m *message) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return json.Unmarshal(b, &m.Plural)
	}
	return json.Unmarshal(b, &m.Text)
}

func (m message) MarshalJSON() ([]byte, error) {
	if m.Plural != nil {
		return json.Marshal(m.Plural)
	}
	return json.Marshal(m.Text)
}

// catalog maps keys to messages for one language.
type catalog map[string]message

// referenceLanguage is the catalog every other one is checked against and
// the last fallback for a missing text.
const referenceLanguage = "en"

// shippedLanguages lists the languages Parley ships, in the order the
// admin UI offers them, with their own names.
var shippedLanguages = []LanguageInfo{
	{Code: "en", Name: "English"},
	{Code: "es", Name: "Español"},
	{Code: "pt", Name: "Português"},
	{Code: "de", Name: "Deutsch"},
	{Code: "fr", Name: "Français"},
	{Code: "ar", Name: "العربية"},
}

// LanguageInfo describes a shipped language.
type LanguageInfo struct {
	Code string `json:"code"`
	Name string `json:"name"`
	Dir  string `json:"dir"`
}

// pluralForms are CLDR's plural categories.
var pluralForms = []string{"zero", "one", "two", "few", "many", "other"}

var catalogs = mustLoadCatalogs(catalogFS)

func mustLoadCatalogs(fsys fs.FS) map[string]catalog {
	out, err := loadCatalogs(fsys)
	if err != nil {
		panic("chatsvc: " + err.Error())
	}
	for i := range shippedLanguages {
		shippedLanguages[i].Dir = textDirection(shippedLanguages[i].Code)
		if _, ok := out[shippedLanguages[i].Code]; !ok {
			panic("chatsvc: no catalog i18n/" + shippedLanguages[i].Code + ".json")
		}
	}
	return out
}

// loadCatalogs reads every i18n/*.json; the file name is the language.
func loadCatalogs(fsys fs.FS) (map[string]catalog, error) {
	files, err := fs.Glob(fsys, "i18n/*.json")
	if err != nil {
		return nil, fmt.Errorf("list catalogs: %w", err)
	}
	out := map[string]catalog{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read catalog %s: %w", f, err)
		}
		var c catalog
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", f, err)
		}
		out[strings.TrimSuffix(path.Base(f), ".json")] = c
	}
	return out, nil
}

// rtlScripts are the scripts written right to left.
var rtlScripts = map[string]bool{"Arab": true, "Hebr": true, "Syrc": true, "Thaa": true, "Nkoo": true, "Adlm": true, "Rohg": true}

// textDirection is "rtl" for languages whose likely script runs right to
// left (Arabic, Hebrew, Persian, Urdu...), else "ltr".
func textDirection(lang string) string {
	script, _ := language.Make(lang).Script()
	if rtlScripts[script.String()] {
		return "rtl"
	}
	return "ltr"
}

func shippedCodes() []string {
	out := make([]string, len(shippedLanguages))
	for i, l := range shippedLanguages {
		out[i] = l.Code
	}
	return out
}

func isShipped(code string) bool {
	_, ok := catalogs[code]
	return ok
}

// SiteTexts are a site's own visitor-facing texts in one language.
type SiteTexts struct {
	Greeting       string `json:"greeting,omitempty"`
	ReplyTime      string `json:"reply_time,omitempty"`
	OfflineMessage string `json:"offline_message,omitempty"`
	BotGreeting    string `json:"bot_greeting,omitempty"`
	AwayMessage    string `json:"away_message,omitempty"`
}

// defaultLanguage is the site's language, English when unset.
func (st *SiteSettings) defaultLanguage() string {
	if st.DefaultLanguage == "" {
		return referenceLanguage
	}
	return st.DefaultLanguage
}

// siteLanguages lists the languages the widget may speak on the site,
// the default first.
func (st *SiteSettings) siteLanguages() []string {
	out := []string{st.defaultLanguage()}
	for _, l := range st.Languages {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// matchLanguage picks the site's language for a visitor whose browser
// prefers prefs (BCP 47 tags, most wanted first): the best match among the
// site's languages, or the site's default when it allows one language,
// nothing matches or the tags do not parse.
func (st *SiteSettings) matchLanguage(prefs []string) string {
	langs := st.siteLanguages()
	if len(langs) == 1 {
		return langs[0]
	}
	var want []language.Tag
	for _, p := range prefs {
		if tag, err := language.Parse(strings.TrimSpace(p)); err == nil {
			want = append(want, tag)
		}
	}
	if len(want) == 0 {
		return langs[0]
	}
	supported := make([]language.Tag, len(langs))
	for i, l := range langs {
		supported[i] = language.Make(l)
	}
	_, i, conf := language.NewMatcher(supported).Match(want...)
	if conf == language.No {
		return langs[0]
	}
	return langs[i]
}

// texts returns the site's own texts in lang, each falling back to the
// default-language text the site's settings hold. The default language's
// texts are those fields themselves (a translation into it is not used).
func (st *SiteSettings) texts(lang string) SiteTexts {
	out := SiteTexts{Greeting: st.Greeting, ReplyTime: st.ReplyTime, OfflineMessage: st.OfflineMessage,
		BotGreeting: st.Bot.Greeting, AwayMessage: st.Bot.AwayMessage}
	tr, ok := st.Translations[lang]
	if !ok || lang == st.defaultLanguage() {
		return out
	}
	pick := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	pick(&out.Greeting, tr.Greeting)
	pick(&out.ReplyTime, tr.ReplyTime)
	pick(&out.OfflineMessage, tr.OfflineMessage)
	pick(&out.BotGreeting, tr.BotGreeting)
	pick(&out.AwayMessage, tr.AwayMessage)
	return out
}

// visitorText renders a (non-plural) catalog text in lang for a visitor of
// the site: the site's override, the shipped catalog of lang, then English.
// args are name, value pairs for the {placeholders}. st may be nil.
func (st *SiteSettings) visitorText(lang, key string, args ...string) string {
	text, ok := "", false
	if st != nil {
		text, ok = st.Strings[lang][key]
	}
	if !ok {
		if m, found := catalogs[lang][key]; found && m.Plural == nil {
			text, ok = m.Text, true
		}
	}
	if !ok {
		text = catalogs[referenceLanguage][key].Text
	}
	for i := 0; i+1 < len(args); i += 2 {
		text = strings.ReplaceAll(text, "{"+args[i]+"}", args[i+1])
	}
	return text
}

// visitorCatalog is what the widget gets for lang: English, overlaid by the
// shipped catalog of lang, overlaid by the site's overrides.
func (st *SiteSettings) visitorCatalog(lang string) catalog {
	out := make(catalog, len(catalogs[referenceLanguage]))
	for k, m := range catalogs[referenceLanguage] {
		out[k] = m
	}
	for k, m := range catalogs[lang] {
		out[k] = m
	}
	for k, v := range st.Strings[lang] {
		if base, form, ok := pluralOverride(out, k); ok {
			forms := make(map[string]string, len(out[base].Plural)+1)
			for f, t := range out[base].Plural {
				forms[f] = t
			}
			forms[form] = v
			out[base] = message{Plural: forms}
			continue
		}
		out[k] = message{Text: v}
	}
	return out
}

// pluralOverride splits an override key "queue.ahead.few" into a plural
// message of c and one of its forms.
func pluralOverride(c catalog, key string) (base, form string, ok bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return "", "", false
	}
	base, form = key[:i], key[i+1:]
	if m, found := c[base]; found && m.Plural != nil && slices.Contains(pluralForms, form) {
		return base, form, true
	}
	return "", "", false
}

var placeholderRE = regexp.MustCompile(`\{([a-z_]+)\}`)

// placeholders lists the {names} a text uses.
func placeholders(text string) []string {
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

// messagePlaceholders lists the placeholders of every form of m.
func messagePlaceholders(m message) []string {
	if m.Plural == nil {
		return placeholders(m.Text)
	}
	var all strings.Builder
	for _, t := range m.Plural {
		all.WriteString(t)
	}
	return placeholders(all.String())
}

const (
	maxOverrideChars = 1000
	maxSiteTextChars = 2000
)

// checkLanguages validates and normalises the language settings: the
// default and allowed languages must be shipped, overrides must name
// shipped languages and existing keys with the message's placeholders, and
// per-language texts must name shipped languages.
func (st *SiteSettings) checkLanguages() error {
	shipped := strings.Join(shippedCodes(), ", ")
	st.DefaultLanguage = strings.ToLower(strings.TrimSpace(st.DefaultLanguage))
	if st.DefaultLanguage != "" && !isShipped(st.DefaultLanguage) {
		return fmt.Errorf("default_language %q is not a shipped language (%s)", st.DefaultLanguage, shipped)
	}
	var langs []string
	for i, l := range st.Languages {
		l = strings.ToLower(strings.TrimSpace(l))
		if !isShipped(l) {
			return fmt.Errorf("languages[%d] %q is not a shipped language (%s)", i, l, shipped)
		}
		if !slices.Contains(langs, l) {
			langs = append(langs, l)
		}
	}
	if len(langs) > 0 && !slices.Contains(langs, st.defaultLanguage()) {
		langs = append([]string{st.defaultLanguage()}, langs...)
	}
	st.Languages = langs
	ref := catalogs[referenceLanguage]
	for _, lang := range sortedKeys(st.Strings) {
		if !isShipped(lang) {
			return fmt.Errorf("strings: language %q is not shipped (%s)", lang, shipped)
		}
		own := catalogs[lang]
		for _, key := range sortedKeys(st.Strings[lang]) {
			text := st.Strings[lang][key]
			where := fmt.Sprintf("strings.%s[%q]", lang, key)
			want, known := ref[key]
			if base, form, ok := pluralOverride(ref, key); ok {
				if _, has := own[base].Plural[form]; !has {
					return fmt.Errorf("%s: %s has no %q form in %s (it has %s)", where, base, form, lang, strings.Join(formsOf(own[base]), ", "))
				}
				want, known = ref[base], true
			} else if known && want.Plural != nil {
				return fmt.Errorf("%s: %s counts something; override each plural form instead (%s)", where, key, strings.Join(prefixed(key, formsOf(own[key])), ", "))
			}
			if !known {
				return fmt.Errorf("%s: unknown key (the keys are those of i18n/en.json, see docs/widget.md)", where)
			}
			if n := len([]rune(text)); n > maxOverrideChars {
				return fmt.Errorf("%s: %d characters, at most %d", where, n, maxOverrideChars)
			}
			allowed := messagePlaceholders(want)
			for _, p := range placeholders(text) {
				if !slices.Contains(allowed, p) {
					return fmt.Errorf("%s: unknown placeholder {%s} (the message has %s)", where, p, describePlaceholders(allowed))
				}
			}
		}
	}
	for _, lang := range sortedKeys(st.Translations) {
		if !isShipped(lang) {
			return fmt.Errorf("translations: language %q is not shipped (%s)", lang, shipped)
		}
		tr := st.Translations[lang]
		for name, v := range map[string]string{"greeting": tr.Greeting, "reply_time": tr.ReplyTime, "offline_message": tr.OfflineMessage,
			"bot_greeting": tr.BotGreeting, "away_message": tr.AwayMessage} {
			if n := len([]rune(v)); n > maxSiteTextChars {
				return fmt.Errorf("translations.%s.%s: %d characters, at most %d", lang, name, n, maxSiteTextChars)
			}
		}
	}
	for i := range st.Bot.FAQ {
		l := strings.ToLower(strings.TrimSpace(st.Bot.FAQ[i].Language))
		if l != "" && !isShipped(l) {
			return fmt.Errorf("bot.faq[%d].language %q is not a shipped language (%s)", i, l, shipped)
		}
		st.Bot.FAQ[i].Language = l
	}
	return nil
}

func formsOf(m message) []string {
	var out []string
	for _, f := range pluralForms {
		if _, ok := m.Plural[f]; ok {
			out = append(out, f)
		}
	}
	return out
}

func prefixed(prefix string, forms []string) []string {
	out := make([]string, len(forms))
	for i, f := range forms {
		out[i] = prefix + "." + f
	}
	return out
}

func describePlaceholders(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return "{" + strings.Join(names, "}, {") + "}"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// blockedReason tells a visitor in lang why a message was not delivered.
func (st *SiteSettings) blockedReason(lang string, categories []string) string {
	if len(categories) == 0 {
		return st.visitorText(lang, "blocked.rules")
	}
	names := make([]string, len(categories))
	for i, c := range categories {
		names[i] = c
		if _, ok := catalogs[referenceLanguage]["category."+c]; ok {
			names[i] = st.visitorText(lang, "category."+c)
		}
	}
	return st.visitorText(lang, "blocked.flagged", "categories", strings.Join(names, ", "))
}

// handoverPhrases are the phrases that send a bot conversation to a human:
// the site's own, or the catalog's for lang and for English.
func (st *SiteSettings) handoverPhrases(lang string) []string {
	if len(st.Bot.HandoverPhrases) > 0 {
		return st.Bot.HandoverPhrases
	}
	out := strings.Split(st.visitorText(lang, "bot.handover_phrases"), "|")
	if lang != referenceLanguage {
		out = append(out, strings.Split(catalogs[referenceLanguage]["bot.handover_phrases"].Text, "|")...)
	}
	return out
}

// visitorLang is the language the visitor's widget speaks (from its open
// socket), or the site's default when the visitor is not connected.
func (s *Service) visitorLang(site *Site, visitorID string) string {
	if lang := s.hub.visitorLang(visitorID); lang != "" {
		return lang
	}
	return site.Settings.defaultLanguage()
}
