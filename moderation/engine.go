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
	e := &Engine{policy: p, pronouns: map[string]bool{}, linkers: map[string]bool{}, links: newLinkRules(p.Links), runMin: 1 << 30}
	seen := map[string]bool{}
	word, sub := newTrieBuilder(), newTrieBuilder()
	add := func(raw, category string, allow bool, rule string) error {
		runes, lead, trail, err := parseTerm(raw)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("%s|%t|%t|%t|%s", string(runes), lead, trail, allow, category)
		if seen[key] {
			return nil
		}
		seen[key] = true
		id := int32(len(e.terms))
		e.terms = append(e.terms, term{runes: runes, category: category, lead: lead, trail: trail, allow: allow, rule: rule})
		if lead {
			sub.add(runes, id)
		} else {
			word.add(runes, id)
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
	spans, _ := e.spans(text)
	return e.verdict(text, spans)
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
	sc.units = normalise(text, sc.units[:0])
	buildStream(sc)
	work := 0
	sc.matches = findAll(e.word, e.terms, sc.syms, sc.tokens, false, sc.matches[:0], &work)
	sc.matches = findAll(e.sub, e.terms, sc.syms, sc.tokens, true, sc.matches, &work)

	var spans []ingest.Span
	for _, m := range sc.matches {
		t := &e.terms[m.term]
		if t.allow || e.allowed(sc, m) {
			continue
		}
		cat := t.category
		switch cat {
		case secDirected:
			if !e.directed(sc, m) {
				continue
			}
			cat = CatAbuse
		case CatInsult:
			if e.directed(sc, m) || e.vocative(sc, text, m) {
				cat = CatAbuse
			}
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
			Start: int(sc.syms[s].start), End: int(sc.syms[end].end), Category: cat, Rule: t.rule,
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
	spans = findPII(e.policy.PII, text, spans)
	var emails []ingest.Span
	for _, s := range spans {
		if s.Rule == "pii:email" {
			emails = append(emails, s)
		}
	}
	spans, links := e.links.findLinks(text, emails, spans)
	if links >= 3 {
		spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: CatSpam, Rule: "spam:many-links"})
	}
	if repeatedWords(sc) {
		spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: CatSpam, Rule: "spam:repeated-words"})
	}
	return spans, work
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
			return true
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

// repeatedWords spots a message that is mostly one word said many times.
func repeatedWords(sc *scratch) bool {
	words := 0
	for _, tk := range sc.tokens {
		if tk.word {
			words++
		}
	}
	if words < 10 {
		return false
	}
	counts := make(map[uint64]int, words)
	for _, tk := range sc.tokens {
		if !tk.word {
			continue
		}
		h := uint64(14695981039346656037) // FNV-1a over the word's first candidates
		for i := tk.first; i <= tk.last; i++ {
			h = (h ^ uint64(sc.syms[i].c[0])) * 1099511628211
		}
		counts[h]++
		if c := counts[h]; c >= 10 && c*2 >= words {
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
