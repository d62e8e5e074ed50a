package moderation

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/parleychat/parley/ingest"
)

// Engine checks texts against one policy. It is immutable after
// NewEngine and safe for concurrent use.
type Engine struct {
	policy   Policy
	terms    []term
	word     *trie // terms that start at a word boundary
	sub      *trie // "*word" terms that may start inside a word
	pronouns map[string]bool
	linkers  map[string]bool
	regexes  []compiledRule
	links    linkRules
	runMin   int // shortest match of a windowed regex: shorter runs are skipped
	grammar  *intentGrammar
	model    *Model // nil when the policy turns it off
}

type compiledRule struct {
	name, category string
	re             *regexp.Regexp
	filter         regexFilter
}

// NewEngine validates p and compiles it: the default lists of its
// languages, its own block and allow terms, its regexes and link rules.
func NewEngine(p Policy) (*Engine, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	lists, err := loadDefaultLists()
	if err != nil {
		return nil, err
	}
	g, err := loadGrammar()
	if err != nil {
		return nil, err
	}
	e := &Engine{policy: p, pronouns: map[string]bool{}, linkers: map[string]bool{}, links: newLinkRules(p.Links), runMin: 1 << 30, grammar: g}
	seen := map[string]bool{}
	word, sub := newTrieBuilder(), newTrieBuilder()
	class := int16(0) // the intent class of the terms add adds next (+1)
	add := func(raw, category string, allow bool, rule string) error {
		runes, lead, trail, err := parseTerm(raw)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("%s|%t|%t|%t|%s|%d", string(runes), lead, trail, allow, category, class)
		if seen[key] {
			return nil
		}
		seen[key] = true
		id := int32(len(e.terms))
		e.terms = append(e.terms, term{runes: runes, category: category, lead: lead, trail: trail, allow: allow, rule: rule, intent: class, raw: strings.TrimSpace(raw)})
		if lead {
			sub.add(runes, id, trail)
		} else {
			word.add(runes, id, trail)
		}
		return nil
	}
	for _, lang := range p.Languages {
		for _, le := range lists[lang] {
			var err error
			switch le.section {
			case secPronoun, secLinker:
				runes, _, _, perr := parseTerm(le.raw)
				err = perr
				if err == nil && le.section == secPronoun {
					e.pronouns[string(runes)] = true
				} else if err == nil {
					e.linkers[string(runes)] = true
				}
			case secAllow:
				err = add(le.raw, "", true, "allow:"+lang)
			default:
				err = add(le.raw, le.section, false, lang+":"+le.raw)
			}
			if err != nil {
				return nil, fmt.Errorf("default list %s line %d %q: %w", lang, le.line, le.raw, err)
			}
		}
	}
	for _, lang := range p.Languages {
		lex, err := loadLexicon(g, lang)
		if err != nil {
			return nil, err
		}
		for _, le := range lex {
			class = int16(le.class + 1)
			if err := add(le.raw, "", false, ""); err != nil {
				return nil, fmt.Errorf("intent lexicon %s line %d %q: %w", lang, le.line, le.raw, err)
			}
		}
		class = 0
	}
	class = int16(g.numberWord + 1)
	for _, w := range slices.Sorted(maps.Keys(numberWords)) {
		if err := add(w, "", false, ""); err != nil {
			return nil, fmt.Errorf("number word %q: %w", w, err)
		}
	}
	class = 0
	for _, cat := range slices.Sorted(maps.Keys(p.Block)) {
		for _, t := range p.Block[cat] {
			if err := add(t, cat, false, "site:"+strings.TrimSpace(t)); err != nil {
				return nil, fmt.Errorf("block.%s %q: %w", cat, t, err)
			}
		}
	}
	for _, t := range p.Allow {
		if err := add(t, "", true, "site-allow"); err != nil {
			return nil, fmt.Errorf("allow %q: %w", t, err)
		}
	}
	e.word, e.sub = word.freeze(), sub.freeze()
	if p.Model.Threshold > 0 {
		if e.model, err = DefaultModel(); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Regexes {
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("regex %s: %w", r.Name, err)
		}
		f := newRegexFilter(re)
		if f.windowed {
			e.runMin = min(e.runMin, f.minLen)
		}
		e.regexes = append(e.regexes, compiledRule{name: r.Name, category: r.Category, re: re, filter: f})
	}
	return e, nil
}

// scratchPool holds the buffers of checks in progress; every engine shares
// it, so a process keeps about one set of buffers per running check.
var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

// putScratch returns sc to the pool unless one huge text grew it.
func putScratch(sc *scratch) {
	if cap(sc.units) <= 1<<16 {
		scratchPool.Put(sc)
	}
}

// Policy returns the policy the engine was built from.
func (e *Engine) Policy() Policy { return e.policy }

// Terms returns how many list terms the engine matches.
func (e *Engine) Terms() int { return len(e.terms) }

// Check judges text with the engine's fast rules: lists, regexes, PII,
// links and single-message spam signs. Flood detection needs history and
// the classifier needs I/O; Service adds them.
func (e *Engine) Check(text string) Verdict {
	sc := scratchPool.Get().(*scratch)
	defer putScratch(sc)
	spans, _ := e.spansWith(sc, text)
	v := e.verdict(text, spans)
	if len(sc.hosts) > 0 {
		v.hosts = slices.Clone(sc.hosts)
	}
	v.promo = sc.promo
	return v
}

// Combine returns the verdict of text with extra spans (flood, a
// classifier's labels) added to v's.
func (e *Engine) Combine(text string, v Verdict, extra ...ingest.Span) Verdict {
	spans := append(slices.Clone(v.Spans), extra...)
	return e.verdict(text, spans)
}

// spans finds every span of text and reports the matcher's work.
func (e *Engine) spans(text string) ([]ingest.Span, int) {
	sc := scratchPool.Get().(*scratch)
	defer putScratch(sc)
	return e.spansWith(sc, text)
}

func (e *Engine) spansWith(sc *scratch, text string) ([]ingest.Span, int) {
	sc.hosts, sc.promo = sc.hosts[:0], false
	sc.units = normalise(text, sc.units[:0])
	buildStream(sc)
	work := 0
	sc.matches = findAll(e.word, e.terms, sc.syms, sc.tokens, sc.keys, false, sc.matches[:0], &work)
	sc.matches = findAll(e.sub, e.terms, sc.syms, sc.tokens, sc.keys, true, sc.matches, &work)

	var spans []ingest.Span
	// the lexicon hits first: a list term's vetoes read hits that follow
	// it ("pay with gift cards, is that allowed?")
	sc.hits = sc.hits[:0]
	for _, m := range sc.matches {
		if t := &e.terms[m.term]; t.intent > 0 {
			h := intentHit{s: sc.syms[m.s].tok, e: sc.syms[m.e].tok, class: int32(t.intent - 1)}
			if int(h.class) == e.grammar.you && possessive(sc, int(h.s)) {
				h.class = int32(e.grammar.your) // "o serviço de vocês": your service
			}
			sc.hits = append(sc.hits, h)
		}
	}
	for _, m := range sc.matches {
		t := &e.terms[m.term]
		if t.intent > 0 {
			continue
		}
		if t.allow || e.allowed(sc, m) {
			continue
		}
		cat := t.category
		switch cat {
		case secDirected:
			if !e.directed(sc, m) && !e.wholeMessage(sc, m) {
				continue
			}
			cat = CatAbuse
		case CatInsult:
			if e.directed(sc, m) || e.vocative(sc, text, m) {
				cat = CatAbuse
			}
		}
		if vetoable(cat) {
			// "the driver called me an idiot", "I felt like an idiot",
			// "a user keeps sending me 'send nudes'"
			if e.reported(sc, sc.syms[m.s].tok) || quoted(text, int(sc.syms[m.s].start), int(sc.syms[m.e].end)) {
				continue
			}
			if insulting(cat) && e.selfAimed(sc, text, sc.syms[m.s].tok, sc.syms[m.e].tok) {
				continue // "what an idiot I am"
			}
			if insulting(cat) && e.moneyAccusation(sc, sc.syms[m.s].tok, sc.syms[m.e].tok) {
				continue // "you're thieves, you charged me twice"
			}
		}
		if (cat == CatPhishing || cat == CatSpam) && e.aboutAScam(sc, text, m) {
			continue
		}
		if cat == CatProfanity && e.hasClass(sc, e.grammar.report) && quoted(text, int(sc.syms[m.s].start), int(sc.syms[m.e].end)) {
			continue // "someone wrote 't'es une merde', how do I block them?"
		}
		s, end := m.s, m.e
		// a wildcard match covers the whole word it is part of
		for t.lead && s > 0 && wordSym(sc.syms[s-1].kind) {
			s--
		}
		for t.trail && int(end)+1 < len(sc.syms) && wordSym(sc.syms[end+1].kind) {
			end++
		}
		spans = append(spans, ingest.Span{
			Start: int(sc.syms[s].start), End: int(sc.syms[end].end), Category: cat, Rule: t.rule, Match: t.raw,
		})
	}
	if len(e.regexes) > 0 {
		sc.runs = nonSpaceRuns(text, max(e.runMin, 1), sc.runs[:0])
		for i := range e.regexes {
			r := &e.regexes[i]
			sc.found = findRegex(r, text, sc.runs, sc.found[:0])
			for _, ix := range sc.found {
				if ix[1] > ix[0] {
					spans = append(spans, ingest.Span{Start: ix[0], End: ix[1], Category: r.category, Rule: "regex:" + r.name})
				}
			}
		}
	}
	numberWords := 0
	for _, h := range sc.hits {
		if int(h.class) == e.grammar.numberWord {
			numberWords++
		}
	}
	sc.words = appendWindows(sc.words[:0], text, notSpaceSet)
	facts := factsOf(text)
	spans = findPII(e.policy.PII, text, facts, sc.words, spans, numberWords >= 3)
	var emails []ingest.Span
	for _, s := range spans {
		if s.Rule == "pii:email" {
			emails = append(emails, s)
		}
	}
	spans, links, risky := e.links.findLinks(text, facts.brackets, sc.words, emails, spans, &sc.hosts)
	if links >= 3 {
		spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: CatSpam, Rule: "spam:many-links"})
	}
	spans = e.intentSpans(sc, text, facts, links, risky, spans)
	if facts.nonASCII && symbolRun(text) {
		spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: CatSpam, Rule: "spam:repeated-symbol"})
	}
	if repeatedWords(sc) {
		spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: CatSpam, Rule: "spam:repeated-words"})
	}
	if e.model != nil {
		// the model adds what the rules missed; where they agree, the
		// rules' spans say more
		if h, ok := e.model.judge(sc, e.policy.Model.Threshold); ok && !hasCategory(spans, h.category) &&
			!(vetoable(h.category) && e.reportsQuote(sc, text)) &&
			!(insulting(h.category) && e.moneyAccusation(sc, 0, int32(len(sc.tokens)))) {
			spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: h.category,
				Rule: fmt.Sprintf("model:%.2f", h.score), Source: "model:" + e.model.Label()})
		}
	}
	return spans, work
}

// aboutAScam reports a customer asking about or reporting a scam rather
// than running one, for a scam or spam list term m: the text doubts
// ("is this a scam", "is it fake", "how do I report") and asks or
// reports, or it reports a quotation that holds the term ("I got an
// email 'your account will be suspended'").
func (e *Engine) aboutAScam(sc *scratch, text string, m match) bool {
	doubt, report := e.hasClass(sc, e.grammar.doubt), e.hasClass(sc, e.grammar.report)
	if doubt && (report || strings.IndexByte(text, '?') >= 0) {
		return true
	}
	// a quotation the writer doubts or says they received ("I got an
	// email 'your account will be suspended', it's fake right")
	return (report || doubt) && quoted(text, int(sc.syms[m.s].start), int(sc.syms[m.e].end))
}

// hasClass reports a lexicon hit of class c in the text.
func (e *Engine) hasClass(sc *scratch, c int) bool {
	for _, h := range sc.hits {
		if int(h.class) == c {
			return true
		}
	}
	return false
}

// possessive reports a second-person pronoun at token k made possessive
// by "de" before it ("o serviço de vocês", "el servicio de ustedes").
func possessive(sc *scratch, k int) bool {
	return k > 0 && !sc.tokens[k].brkBefore && tokenText(sc, k-1) == "de"
}

// reportsQuote reports a text that quotes someone and says so ("someone
// wrote 'you people are animals' in a review"): the model judges a whole
// text and cannot tell the quotation from the writer, so what it finds
// there about people does not count, as the rules' matches inside a
// quotation do not.
func (e *Engine) reportsQuote(sc *scratch, text string) bool {
	return e.hasClass(sc, e.grammar.report) && hasQuotation(text)
}

func hasCategory(spans []ingest.Span, cat string) bool {
	for _, s := range spans {
		if s.Category == cat {
			return true
		}
	}
	return false
}

func wordSym(k symKind) bool { return k != sSpace && k != sBreak }

// allowed reports whether an allow-list match covers block match m.
func (e *Engine) allowed(sc *scratch, m match) bool {
	for _, a := range sc.matches {
		if e.terms[a.term].allow && a.s <= m.s && a.e >= m.e {
			return true
		}
	}
	return false
}

// directed reports whether the words before match m aim it at the
// reader: a pronoun followed by at most four linker words ("you are such
// a", "eres un", "du bist ein"), within one sentence.
func (e *Engine) directed(sc *scratch, m match) bool {
	t := int(sc.syms[m.s].tok)
	linkers := 0
	for k := t - 1; k >= 0; k-- {
		if sc.tokens[k+1].brkBefore {
			return false
		}
		w := tokenText(sc, k)
		if e.pronouns[w] {
			// French "du" right before a word of another list is the
			// article ("désolé du retard", "du porc"), not German "du"
			if w == "du" && linkers == 0 && !strings.HasPrefix(e.terms[m.term].rule, "de:") {
				return false
			}
			// "o serviço de vocês é um lixo": the insult is about the service
			return !possessive(sc, k)
		}
		// two-word pronouns ("t es" from "t'es")
		if k > 0 && !sc.tokens[k].brkBefore && e.pronouns[tokenText(sc, k-1)+" "+w] {
			return true
		}
		if !e.linkers[w] || linkers == 4 {
			return false
		}
		linkers++
	}
	return false
}

// wholeMessage reports whether match m is the whole message but for at
// most one linker word before it ("stupid!", "buuuurro", "so useless").
func (e *Engine) wholeMessage(sc *scratch, m match) bool {
	first, last := int(sc.syms[m.s].tok), int(sc.syms[m.e].tok)
	if last != len(sc.tokens)-1 || first > 1 {
		return false
	}
	for k := 0; k < first; k++ {
		if !e.linkers[tokenText(sc, k)] {
			return false
		}
	}
	return true
}

// reported reports a reported-speech word (intent class "report") earlier
// in the sentence of token tok.
func (e *Engine) reported(sc *scratch, tok int32) bool {
	for _, h := range sc.hits {
		if int(h.class) != e.grammar.report || h.s >= tok {
			continue
		}
		broken := false
		for k := h.s + 1; k <= tok; k++ {
			if sc.tokens[k].brkBefore {
				broken = true
				break
			}
		}
		if !broken {
			return true
		}
	}
	return false
}

// vocative reports whether insult match m addresses the reader by itself:
// it fills a whole clause, with only linker words before it ("Idiot.",
// "do your job, moron", "stupid bitch", "such a clown!"). "The driver is
// an idiot" is not: "is" is no linker.
func (e *Engine) vocative(sc *scratch, text string, m match) bool {
	clauseEdge := func(k int) bool {
		if k < 0 || k >= len(sc.syms) {
			return true
		}
		switch s := sc.syms[k]; s.kind {
		case sBreak:
			return true
		case sSpace:
			return strings.IndexByte(text[s.start:s.end], ',') >= 0
		}
		return false
	}
	if !clauseEdge(int(m.e) + 1) {
		return false
	}
	first := int(sc.syms[m.s].tok)
	for k, linkers := first-1, 0; ; k-- {
		tk := sc.tokens[k+1]
		if k < 0 || clauseEdge(int(tk.first)-1) {
			return true
		}
		if !e.linkers[tokenText(sc, k)] || linkers == 4 {
			return false
		}
		linkers++
	}
}

// symbolRun spots a run of one emoji or symbol repeated at least 12
// times ("🔥🔥🔥🔥..."), a mark of spam; ASCII punctuation ("!!!!") is
// frustration, not spam, and does not count.
func symbolRun(text string) bool {
	run, last := 0, rune(0)
	for i := 0; i < len(text); {
		if text[i] < 0xE2 {
			if text[i] != ' ' {
				run, last = 0, 0
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if r == 0xFE0F || r == 0x200D {
			continue // variation selector, joiner
		}
		if r == last {
			run++
		} else {
			run, last = 1, r
		}
		if run >= 12 && classify(r) == uOther {
			return true
		}
	}
	return false
}

// repeatedWords spots a message that is mostly one word said many times:
// at least ten words, one of them at least ten times and half of all.
// Words are counted in 64 buckets of their hash first (a bucket counts at
// least as many as any word in it, so a quiet bucket rules its words
// out); only a bucket that could hold such a word is counted exactly, by
// a majority vote over its words.
func repeatedWords(sc *scratch) bool {
	var buckets [64]int32
	words := int32(0)
	for i := range sc.tokens {
		tk := &sc.tokens[i]
		if tk.word {
			words++
			buckets[tk.hash&63]++
		}
	}
	if words < 10 {
		return false
	}
	for b, n := range buckets {
		if n < 10 || n*2 < words {
			continue
		}
		votes, cand := 0, uint64(0)
		for i := range sc.tokens {
			tk := &sc.tokens[i]
			if !tk.word || tk.hash&63 != uint64(b) {
				continue
			}
			switch {
			case votes == 0:
				cand, votes = tk.hash, 1
			case tk.hash == cand:
				votes++
			default:
				votes--
			}
		}
		c := int32(0)
		for i := range sc.tokens {
			if tk := &sc.tokens[i]; tk.word && tk.hash == cand {
				c++
			}
		}
		if c >= 10 && c*2 >= words {
			return true
		}
	}
	return false
}

// verdict turns spans into a verdict under the engine's policy.
func (e *Engine) verdict(text string, spans []ingest.Span) Verdict {
	v := Verdict{Action: ActionAllow}
	kept := spans[:0:0]
	for _, s := range spans {
		if e.policy.actionFor(s.Category) != ActionAllow {
			kept = append(kept, s)
		}
	}
	slices.SortFunc(kept, func(a, b ingest.Span) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End), cmp.Compare(a.Category, b.Category))
	})
	kept = slices.CompactFunc(kept, func(a, b ingest.Span) bool {
		return a.Start == b.Start && a.End == b.End && a.Category == b.Category
	})
	redact := false
	for _, s := range kept {
		a := e.policy.actionFor(s.Category)
		if actionRank(a) > actionRank(v.Action) {
			v.Action = a
		}
		if a == ActionRedact {
			redact = true
		}
		v.Severity = max(v.Severity, severityOf(s.Category))
		if !slices.Contains(v.Categories, s.Category) {
			v.Categories = append(v.Categories, s.Category)
		}
	}
	slices.Sort(v.Categories)
	if len(kept) > 0 {
		v.Spans = kept
	}
	for i := range kept {
		if kept[i].Source == "" {
			kept[i].Source = SourceRules
		}
		src := ingest.VerdictSource{Category: kept[i].Category, Source: kept[i].Source,
			Decided: e.policy.actionFor(kept[i].Category) == v.Action}
		if !slices.Contains(v.Sources, src) {
			v.Sources = append(v.Sources, src)
		}
	}
	if redact && v.Action != ActionBlock {
		v.Redacted = e.redact(text, kept)
	}
	return v
}

// redact masks, rune by rune, every span whose category is redacted.
func (e *Engine) redact(text string, spans []ingest.Span) string {
	var b strings.Builder
	b.Grow(len(text))
	masked := make([]bool, len(text))
	for _, s := range spans {
		if e.policy.actionFor(s.Category) != ActionRedact {
			continue
		}
		for i := max(0, s.Start); i < min(len(text), s.End); i++ {
			masked[i] = true
		}
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if masked[i] && r != ' ' {
			b.WriteByte('*')
		} else {
			b.WriteString(text[i : i+size])
		}
		i += size
	}
	return b.String()
}
