package moderation

import (
	"bufio"
	"embed"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/parleychat/parley/ingest"
)

// Intent rules catch harm carried by ordinary words: "I know which branch
// you work at", "people like you shouldn't be hired", "are you even
// capable of thinking". Each language has a lexicon (intent/<lang>.txt)
// that sorts words and phrases into classes (first person, second person,
// harm verbs, modal and future markers, identity groups, body words, ...);
// intent/grammar.txt holds small grammars per family (threat, hate,
// harassment, abuse, ...) written over those classes, so one rule serves
// every language whose lexicon fills its classes. Lexicon entries are
// compiled into the engine's word trie like list terms, so they get the
// same normalisation and evasion handling and cost no extra pass.

//go:embed intent/*.txt
var intentFS embed.FS

// classSet is a set of lexicon classes.
type classSet [4]uint64

const maxClasses = 256

func (c *classSet) add(i int)     { c[i>>6] |= 1 << (i & 63) }
func (c classSet) has(i int) bool { return c[i>>6]&(1<<(i&63)) != 0 }
func (c classSet) meets(o classSet) bool {
	return c[0]&o[0] != 0 || c[1]&o[1] != 0 || c[2]&o[2] != 0 || c[3]&o[3] != 0
}

// covers reports whether every class of o is in c.
func (c classSet) covers(o classSet) bool {
	return c[0]&o[0] == o[0] && c[1]&o[1] == o[1] && c[2]&o[2] == o[2] && c[3]&o[3] == o[3]
}

// ruleElem is one element of a grammar rule: a token matching any of its
// classes, found at most gap tokens after the previous element.
type ruleElem struct {
	classes    classSet
	optional   bool
	endAfter   bool // "$": the element ends its clause
	startAfter bool // "^" before it: the element starts its clause
	gap        int
}

// msgNeed is a "+class" condition: hits of classes anywhere in the text,
// at least count of them.
type msgNeed struct {
	classes classSet
	count   int
}

// intentRule is one compiled grammar rule.
type intentRule struct {
	name     string
	category string
	elems    []ruleElem
	need     classSet // classes every match needs (one per required single-class element)
	needAny  []classSet
	needMsg  []msgNeed
}

// intentGrammar is the compiled grammar and its class names.
type intentGrammar struct {
	classes map[string]int
	names   []string
	rules   []intentRule
	byClass []ruleSet // rules indexed under a class they need
	always  ruleSet   // rules that need no single class
	neg     int       // the class that vetoes a rule near its match ("never", "not")
	report  int       // reported speech ("he said", "told me"): vetoes what follows
	// pseudo-classes the engine sets from the text itself
	doubt                                     int // "is this a scam?": a customer asking, not a scam
	link, emojiFlirt, emojiMoney, emojiThreat int
	emojiSexual, money, riskyLink             int
	numberWord                                int      // "seven", "sieben": digits spelled out (PII)
	you, your                                 int      // second person, and its possessive
	accusation, moneyComplaint                int      // "thieves", "charged me twice": a customer's complaint (round 5)
	promo                                     classSet // classes that make a text promotional
}

// Default gap between two rule elements, in words.
const defaultGap = 2

var (
	grammarOnce sync.Once
	grammar     *intentGrammar
	grammarErr  error
)

// loadGrammar parses intent/grammar.txt once.
func loadGrammar() (*intentGrammar, error) {
	grammarOnce.Do(func() {
		b, err := intentFS.ReadFile("intent/grammar.txt")
		if err != nil {
			grammarErr = fmt.Errorf("read intent grammar: %w", err)
			return
		}
		grammar, grammarErr = parseGrammar(string(b))
	})
	return grammar, grammarErr
}

// parseGrammar reads rules: "[category]" headers, then lines
// "name: elem elem ...". An element is a class name, alternatives
// "a|b", "?" after it makes it optional, and "~N" before it sets how many
// words may come between it and the previous element (default 2).
func parseGrammar(text string) (*intentGrammar, error) {
	g := &intentGrammar{classes: map[string]int{}}
	class := func(name string) (int, error) {
		if i, ok := g.classes[name]; ok {
			return i, nil
		}
		if len(g.names) == maxClasses {
			return 0, fmt.Errorf("more than %d classes", maxClasses)
		}
		g.classes[name] = len(g.names)
		g.names = append(g.names, name)
		return len(g.names) - 1, nil
	}
	var err error
	if g.neg, err = class("neg"); err != nil {
		return nil, err
	}
	if g.report, err = class("report"); err != nil {
		return nil, err
	}
	if g.doubt, err = class("doubt"); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name string
		to   *int
	}{{"link", &g.link}, {"emoji_flirt", &g.emojiFlirt}, {"emoji_money", &g.emojiMoney}, {"emoji_threat", &g.emojiThreat}, {"number_word", &g.numberWord},
		{"emoji_sexual", &g.emojiSexual}, {"amount", &g.money}, {"risky_link", &g.riskyLink}} {
		if *p.to, err = class(p.name); err != nil {
			return nil, err
		}
	}
	if g.you, err = class("you"); err != nil {
		return nil, err
	}
	if g.your, err = class("your"); err != nil {
		return nil, err
	}
	for _, name := range []string{"promo", "offer", "amount", "emoji_money", "spam_phrase", "earn"} {
		i, err := class(name)
		if err != nil {
			return nil, err
		}
		g.promo.add(i)
	}
	category := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			category = strings.Trim(line, "[]")
			if !categoryRe.MatchString(category) {
				return nil, fmt.Errorf("intent grammar line %d: bad category [%s]", n, category)
			}
			continue
		}
		name, body, ok := strings.Cut(line, ":")
		if !ok || category == "" {
			return nil, fmt.Errorf("intent grammar line %d: want \"name: elements\" under a [category]", n)
		}
		r := intentRule{name: strings.TrimSpace(name), category: category}
		gap, startNext := defaultGap, false
		for _, f := range strings.Fields(body) {
			if strings.HasPrefix(f, "~") {
				if gap, err = strconv.Atoi(f[1:]); err != nil || gap < 0 || gap > 12 {
					return nil, fmt.Errorf("intent grammar line %d: bad gap %q", n, f)
				}
				continue
			}
			if f == "^" {
				startNext = true
				continue
			}
			if f == "$" {
				if len(r.elems) == 0 {
					return nil, fmt.Errorf("intent grammar line %d: \"$\" needs an element before it", n)
				}
				r.elems[len(r.elems)-1].endAfter = true
				continue
			}
			if rest, ok := strings.CutPrefix(f, "+"); ok {
				need := msgNeed{count: 1}
				if names, count, ok := strings.Cut(rest, "*"); ok {
					if need.count, err = strconv.Atoi(count); err != nil || need.count < 1 || need.count > 20 {
						return nil, fmt.Errorf("intent grammar line %d: bad count %q", n, f)
					}
					rest = names
				}
				for _, a := range strings.Split(rest, "|") {
					i, err := class(a)
					if err != nil {
						return nil, fmt.Errorf("intent grammar line %d: %w", n, err)
					}
					need.classes.add(i)
				}
				r.needMsg = append(r.needMsg, need)
				continue
			}
			el := ruleElem{gap: gap, startAfter: startNext}
			gap, startNext = defaultGap, false
			if strings.HasSuffix(f, "?") {
				el.optional = true
				f = strings.TrimSuffix(f, "?")
			}
			alts := strings.Split(f, "|")
			for _, a := range alts {
				i, err := class(a)
				if err != nil {
					return nil, fmt.Errorf("intent grammar line %d: %w", n, err)
				}
				el.classes.add(i)
			}
			if !el.optional {
				if len(alts) == 1 {
					r.need.add(g.classes[alts[0]])
				} else {
					r.needAny = append(r.needAny, el.classes)
				}
			}
			r.elems = append(r.elems, el)
		}
		if (len(r.elems) == 0 && len(r.needMsg) == 0) || (len(r.elems) > 0 && r.elems[0].optional) {
			return nil, fmt.Errorf("intent grammar line %d: a rule needs a first element that is not optional", n)
		}
		if len(r.elems) > 8 {
			return nil, fmt.Errorf("intent grammar line %d: more than 8 elements", n)
		}
		g.rules = append(g.rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(g.rules) > maxRules {
		return nil, fmt.Errorf("intent grammar: %d rules; the limit is %d", len(g.rules), maxRules)
	}
	// classes the engine reads but no rule names: numbered after the
	// rules' classes, since the model's class features are class numbers
	// and a class added before them would renumber the rest
	if g.accusation, err = class("accusation"); err != nil {
		return nil, err
	}
	if g.moneyComplaint, err = class("money_complaint"); err != nil {
		return nil, err
	}
	// index each rule under one class it cannot match without, so a text
	// only tries the rules whose classes it has
	g.byClass = make([]ruleSet, len(g.names))
	for ri, r := range g.rules {
		placed := false
		for c := range g.names {
			if r.need.has(c) {
				g.byClass[c].add(ri)
				placed = true
				break
			}
		}
		if !placed {
			g.always.add(ri)
		}
	}
	return g, nil
}

// maxRules bounds the grammar so a rule set fits a ruleSet.
const maxRules = 256

// ruleSet is a set of rule indices.
type ruleSet [maxRules / 64]uint64

func (s *ruleSet) add(i int) { s[i>>6] |= 1 << (i & 63) }

// lexiconEntry is one word or phrase of a language's intent lexicon.
type lexiconEntry struct {
	class int
	raw   string
	line  int
}

// loadLexicon parses intent/<lang>.txt: "[class]" headers, one term per
// line. Every class must be one the grammar uses, so that a typo in a
// lexicon is an error rather than a silently dead word.
func loadLexicon(g *intentGrammar, lang string) ([]lexiconEntry, error) {
	b, err := intentFS.ReadFile("intent/" + lang + ".txt")
	if err != nil {
		return nil, fmt.Errorf("read intent lexicon %s: %w", lang, err)
	}
	var out []lexiconEntry
	class := -1
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			name := strings.Trim(line, "[]")
			i, ok := g.classes[name]
			if !ok {
				return nil, fmt.Errorf("intent lexicon %s line %d: class [%s] is not used by the grammar", lang, n, name)
			}
			class = i
			continue
		}
		if class < 0 {
			return nil, fmt.Errorf("intent lexicon %s line %d: term before any [class]", lang, n)
		}
		out = append(out, lexiconEntry{class: class, raw: line, line: n})
	}
	return out, sc.Err()
}

// intentHit is a lexicon match: tokens s..e (inclusive) of one class.
type intentHit struct {
	s, e  int32
	class int32
}

// intentSpans runs the grammar over the lexicon hits of one text and
// appends a span per rule match. Spans inside an allow-list match and
// matches vetoed by negation or reported speech are left out.
func (e *Engine) intentSpans(sc *scratch, text string, facts textFacts, links int, risky bool, spans []ingest.Span) []ingest.Span {
	g := e.grammar
	hits := sc.hits
	if g == nil {
		return spans
	}
	sc.extra = classSet{}
	slices.SortFunc(hits, func(a, b intentHit) int {
		if a.s != b.s {
			return int(a.s - b.s)
		}
		return int(a.e - b.e)
	})
	var present classSet
	for _, h := range hits {
		present.add(int(h.class))
	}
	extra := e.pseudoClasses(text, facts, links, risky)
	sc.extra = extra
	for i := range extra {
		present[i] |= extra[i]
	}
	sc.promo = present.meets(g.promo)
	// sentence of each token: rules do not cross sentence breaks
	sent := sc.sent[:0]
	id := int32(0)
	for t := range sc.tokens {
		if t > 0 && sc.tokens[t].brkBefore {
			id++
		}
		sent = append(sent, id)
	}
	sc.sent = sent
	m := intentMatcher{hits: hits, sent: sent, neg: g.neg, report: g.report, clauseEnd: func(t int32) bool { return clauseEndAfter(sc, text, t) }}
	cand := g.always
	for c := range present {
		for b := present[c]; b != 0; b &= b - 1 {
			k := c*64 + bits.TrailingZeros64(b)
			if k < len(g.byClass) {
				for w := range cand {
					cand[w] |= g.byClass[k][w]
				}
			}
		}
	}
	for w := range cand {
		for b := cand[w]; b != 0; b &= b - 1 {
			ri := w*64 + bits.TrailingZeros64(b)
			spans = e.tryRule(sc, text, &m, ri, present, extra, hits, spans)
		}
	}
	sc.hits = hits
	return spans
}

// tryRule matches rule ri of the grammar against the hits of a text and
// appends its span, if any.
func (e *Engine) tryRule(sc *scratch, text string, m *intentMatcher, ri int, present, extra classSet, hits []intentHit, spans []ingest.Span) []ingest.Span {
	g := e.grammar
	r := &g.rules[ri]
	if !present.covers(r.need) {
		return spans
	}
	for _, any := range r.needAny {
		if !present.meets(any) {
			return spans
		}
	}
	if (r.category == CatPhishing || r.category == CatSpam) && present.has(g.doubt) {
		return spans
	}
	for _, need := range r.needMsg {
		if !present.meets(need.classes) || (need.count > 1 && countHits(hits, need.classes, extra) < need.count) {
			return spans
		}
	}
	if len(r.elems) == 0 {
		// a rule of conditions alone judges the whole text
		if !overlapsCategory(spans, 0, len(text), r.category) {
			spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: r.category, Rule: "intent:" + r.name})
		}
		return spans
	}
	for hi := range hits {
		if !r.elems[0].classes.has(int(hits[hi].class)) {
			continue
		}
		if r.elems[0].startAfter && hits[hi].s > 0 && !clauseEndAfter(sc, text, hits[hi].s-1) {
			continue
		}
		m.used = m.used[:0]
		end, found := m.match(r, 1, hi, 0)
		if !found {
			continue
		}
		first, last := hits[hi].s, end
		if vetoable(r.category) && m.vetoed(first, last, present) {
			continue
		}
		if insulting(r.category) && e.selfAimed(sc, text, first, last) {
			continue // "ich bin so ein Idiot"
		}
		if r.category == CatPhishing && m.negatedCommand(first, present, func(t int32) bool { return t == 0 || clauseEndAfter(sc, text, t-1) }) {
			continue // "please don't send me the password by email"
		}
		start, stop := int(sc.syms[sc.tokens[first].first].start), int(sc.syms[sc.tokens[last].last].end)
		if e.touchesAllow(sc, sc.tokens[first].first, sc.tokens[last].last) || overlapsCategory(spans, start, stop, r.category) ||
			(vetoable(r.category) && quoted(text, start, stop)) {
			continue
		}
		return append(spans, ingest.Span{Start: start, End: stop, Category: r.category, Rule: "intent:" + r.name}) // one span per rule and text is enough
	}
	return spans
}

// intentMatcher walks one rule over the hits of a text.
type intentMatcher struct {
	hits        []intentHit
	sent        []int32
	used        []int32 // tokens consumed by the elements of the current match
	neg, report int
	clauseEnd   func(t int32) bool
}

// match tries to place elements k... of r after hit prev, element k
// allowed slack more words of gap (left by skipped optional elements); it
// returns the last token of the match.
func (m *intentMatcher) match(r *intentRule, k, prev, slack int) (int32, bool) {
	p := m.hits[prev]
	if slack == 0 {
		if k > 0 && r.elems[k-1].endAfter && !m.clauseEnd(p.e) {
			return 0, false
		}
		m.used = append(m.used, p.s, p.e)
	}
	if k == len(r.elems) {
		return p.e, true
	}
	el := &r.elems[k]
	mark := len(m.used)
	for j := prev + 1; j < len(m.hits); j++ {
		h := m.hits[j]
		if h.s <= p.e {
			continue
		}
		if int(h.s-p.e-1) > el.gap+slack || m.sent[h.s] != m.sent[p.e] {
			break
		}
		if !el.classes.has(int(h.class)) || (el.startAfter && h.s > 0 && !m.clauseEnd(h.s-1)) {
			continue
		}
		if end, ok := m.match(r, k+1, j, 0); ok {
			return end, true
		}
		m.used = m.used[:mark]
	}
	if el.optional {
		// skip the element: the next one may start as far as this one could
		return m.match(r, k+1, prev, slack+el.gap+1)
	}
	return 0, false
}

// vetoed reports a negation word near the match that is not part of it
// ("I would never hurt you"), or reported speech before or inside it in
// the same sentence ("the driver said he would kill you all").
func (m *intentMatcher) vetoed(first, last int32, present classSet) bool {
	if !present.has(m.neg) && !present.has(m.report) {
		return false
	}
	for _, h := range m.hits {
		if m.sent[h.s] != m.sent[first] || h.s > last {
			continue
		}
		switch int(h.class) {
		case m.neg:
			if h.s+3 >= first && !m.consumed(h) {
				return true
			}
		case m.report:
			// before the match, or inside it and not part of it ("me
			// mandou 'sei onde você mora'": the rule's "me" is the
			// report's; "Ihr Fahrer hat mich dumm genannt")
			if h.s < first || (h.s <= last && (h.s > first || h.e > first) && !m.consumed(h)) {
				return true
			}
		}
	}
	return false
}

// negatedCommand reports a negation word right before a match that
// opens its clause, or follows one word that does ("don't send me your
// password", "please never share the code"): the writer warns, nobody
// fishes. A negation later in a clause ("if you don't send the code
// ...") does not count.
func (m *intentMatcher) negatedCommand(first int32, present classSet, clauseStart func(t int32) bool) bool {
	if !present.has(m.neg) {
		return false
	}
	for _, h := range m.hits {
		if int(h.class) != m.neg || h.e+1 != first || m.sent[h.s] != m.sent[first] {
			continue
		}
		if clauseStart(h.s) || (h.s > 0 && clauseStart(h.s-1)) {
			return true
		}
	}
	return false
}

func (m *intentMatcher) consumed(h intentHit) bool {
	for i := 0; i+1 < len(m.used); i += 2 {
		if h.s >= m.used[i] && h.e <= m.used[i+1] {
			return true
		}
	}
	return false
}

// touchesAllow reports whether an allow-list match overlaps syms s..e:
// "shoot you an email" keeps "I'll shoot you an email" clean.
func (e *Engine) touchesAllow(sc *scratch, s, end int32) bool {
	for _, a := range sc.matches {
		if e.terms[a.term].allow && a.s <= end && a.e >= s {
			return true
		}
	}
	return false
}

// overlapsCategory reports whether a span of category cat already
// overlaps [start, end): the list term found there is the more precise.
func overlapsCategory(spans []ingest.Span, start, end int, cat string) bool {
	for _, s := range spans {
		if s.Category == cat && s.Start < end && s.End > start {
			return true
		}
	}
	return false
}

// countHits counts the hits of classes, plus one for each pseudo-class
// of extra among them.
func countHits(hits []intentHit, classes, extra classSet) int {
	n := 0
	for _, h := range hits {
		if classes.has(int(h.class)) {
			n++
		}
	}
	for i := range classes {
		for b := classes[i] & extra[i]; b != 0; b &= b - 1 {
			n++
		}
	}
	return n
}

// clauseEndAfter reports whether token t ends its clause: nothing
// follows, a sentence break does, or a comma or dash separates it from
// the next word.
func clauseEndAfter(sc *scratch, text string, t int32) bool {
	if int(t)+1 >= len(sc.tokens) {
		return true
	}
	next := sc.tokens[t+1]
	if next.brkBefore {
		return true
	}
	gap := text[sc.syms[sc.tokens[t].last].end:sc.syms[next.first].start]
	return strings.ContainsAny(gap, ",;!-–—()")
}

// Emoji that carry intent where words do not.
var (
	flirtEmoji  = []rune{'😉', '😘', '😏', '😍', '🥵', '💋', '🤤', '😈', '🥰', '😻', '😜'}
	sexualEmoji = []rune{'🍆', '🍑', '💦', '👅', '🫦'}
	moneyEmoji  = []rune{'💰', '💵', '💸', '🤑', '💲', '💎', '🚀', '📈'}
	threatEmoji = []rune{'🔪', '🔫', '💣', '⚰', '☠', '💀', '🩸', '🪓', '🗡', '⚔'}
)

// pseudoClasses returns the classes a text has by other means than
// words: links and emoji.
func (e *Engine) pseudoClasses(text string, facts textFacts, links int, risky bool) classSet {
	var c classSet
	g := e.grammar
	if links > 0 {
		c.add(g.link)
	}
	if risky {
		c.add(g.riskyLink)
	}
	if facts.moneySign && moneyAmount(text) {
		c.add(g.money)
	}
	if !facts.nonASCII {
		return c
	}
	for i := 0; i < len(text); i++ {
		if text[i] < 0xE2 {
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case slices.Contains(flirtEmoji, r):
			c.add(g.emojiFlirt)
		case slices.Contains(sexualEmoji, r):
			c.add(g.emojiSexual)
			c.add(g.emojiFlirt)
		case slices.Contains(moneyEmoji, r):
			c.add(g.emojiMoney)
		case slices.Contains(threatEmoji, r):
			c.add(g.emojiThreat)
		}
		i += size - 1
	}
	return c
}

// moneyAmount reports a price or percentage: a currency sign or "%"
// next to a digit ("$300", "19€", "90%").
func moneyAmount(text string) bool {
	for i := 0; i < len(text); i++ {
		c := text[i]
		var sym int
		switch {
		case c == '$' || c == '%':
			sym = 1
		case c == 0xE2 && i+2 < len(text) && text[i+1] == 0x82 && text[i+2] == 0xAC: // €
			sym = 3
		case c == 0xC2 && i+1 < len(text) && text[i+1] == 0xA3: // £
			sym = 2
		default:
			continue
		}
		before := i > 0 && (isDigit(text[i-1]) || (i > 1 && text[i-1] == ' ' && isDigit(text[i-2])))
		after := i+sym < len(text) && isDigit(text[i+sym])
		if before || after {
			return true
		}
		i += sym - 1
	}
	return false
}

// vetoable reports the categories that negation, reported speech and
// quotation can cancel: what someone says about a person. Scams and spam
// stay what they are when negated ("if you do not pay now ...").
func vetoable(cat string) bool {
	switch cat {
	case CatThreat, CatAbuse, CatInsult, CatHate, CatHarassment, CatSexual:
		return true
	}
	return false
}

// quoted reports whether [start, end) lies inside a quotation that does
// not make up the whole text: a user quoting what someone else wrote
// ("a seller keeps messaging me 'send nudes', how do I block them?").
func quoted(text string, start, end int) bool {
	return quotations(text, func(open, close int) bool { return start >= open && end <= close })
}

// hasQuotation reports a quotation that does not make up the whole text.
func hasQuotation(text string) bool {
	return quotations(text, func(int, int) bool { return true })
}

// quotations calls found with the byte range of each quotation of text
// that is not the whole text, until it returns true; it reports whether
// one did. An apostrophe ("don't", "l'adresse") opens and closes nothing.
func quotations(text string, found func(open, close int) bool) bool {
	open := -1
	var closeWith string
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case open < 0:
			switch r {
			case '"', '\'', '“', '‘', '«', '„':
				if r == '\'' && i > 0 && text[i-1] != ' ' {
					break // an apostrophe ("don't")
				}
				open = i + size
				closeWith = map[rune]string{'"': `"`, '\'': "'", '“': "”", '‘': "’", '«': "»", '„': "“"}[r]
			}
		case strings.HasPrefix(text[i:], closeWith) || ((closeWith == "”" || closeWith == "“") && r == '"'):
			// a typed '"' closes a curly opening too ("„ich weiß, wo du wohnst"")
			if closeWith == "'" && i+1 < len(text) && isAlpha(text[i+1]) {
				break // an apostrophe inside the quotation
			}
			if (open > size || i+size < len(text)) && found(open, i) {
				return true
			}
			open = -1
		}
		i += size
	}
	return false
}
