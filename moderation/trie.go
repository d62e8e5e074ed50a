package moderation

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// term is one entry of a word list after normalisation.
type term struct {
	runes    []rune // letters, digits and single spaces
	category string
	lead     bool // "*word": may start inside a word
	trail    bool // "word*": may end inside a word
	allow    bool // an allow-list entry
	rule     string
	raw      string // the term as written in its list
	intent   int16  // intent lexicon class + 1; 0 for list terms
}

// maxTermRunes bounds a term's normalised length (and the walk's depth).
const maxTermRunes = 64

// gapRune stands in a term for "_", a gap of exactly one word of the
// text ("burn your _ down"). It is a private-use character, so it sorts
// after every letter and never occurs in normalised text.
const gapRune = '\uE000'

// parseTerm normalises a list entry the way text is normalised, without
// leetspeak: "*Fück*" gives "fuck" with both wildcards. A word that is
// just "_" is a gap that matches any one word of the text.
func parseTerm(raw string) (runes []rune, lead, trail bool, err error) {
	s := strings.TrimSpace(raw)
	if !utf8.ValidString(s) {
		return nil, false, false, errors.New("not valid UTF-8")
	}
	lead = strings.HasPrefix(s, "*")
	s = strings.TrimPrefix(s, "*")
	trail = strings.HasSuffix(s, "*")
	s = strings.TrimSuffix(s, "*")
	if strings.ContainsAny(s, "*") {
		return nil, false, false, errors.New("a wildcard may only start or end a term")
	}
	space := false
	for _, field := range strings.Fields(s) {
		if field == "_" {
			if len(runes) == 0 {
				return nil, false, false, errors.New("a gap \"_\" may not start a term")
			}
			runes = append(runes, ' ', gapRune)
			space = true
			continue
		}
		space = true
		for _, u := range normalise(field, nil) {
			switch u.cls {
			case uLetter, uDigit:
				if space && len(runes) > 0 {
					runes = append(runes, ' ')
				}
				space = false
				runes = append(runes, u.r)
			default:
				space = true
			}
		}
	}
	if len(runes) == 0 {
		return nil, false, false, errors.New("no letters or digits")
	}
	if trail && runes[len(runes)-1] == gapRune {
		return nil, false, false, errors.New("a gap \"_\" may not carry a wildcard")
	}
	if len(runes) > maxTermRunes {
		return nil, false, false, fmt.Errorf("longer than %d characters after normalisation", maxTermRunes)
	}
	return runes, lead, trail, nil
}

// trie is a frozen prefix tree over term runes. Edges of a node are sorted
// by rune in one shared slice.
type trie struct {
	nodes []tnode
	edges []tedge
	refs  []int32 // term indices, referenced by nodes
	// trail[k] is whether term refs[k] may end inside a word, kept beside
	// refs so the walk need not read the term
	trail []bool
	dense []int32 // child tables of nodes with many edges, see tnode.d0
	// starts has a bit for every three letters a term can begin with
	// (see mayStart): most start positions are ruled out without a walk
	starts *[(triBits + 63) / 64]uint64
	// short has a bit for every one or two letters a term can begin with
	// and then leave the word (end, or go on after a space): a start with
	// fewer than three letters before a space needs one of them
	short *[(shortBits + 63) / 64]uint64
	// tri maps three plain letters a-z to the node they lead to from the
	// root (triNone if none), so a walk starting inside a word with
	// three plain letters skips its first three steps; triWalk when a
	// term of one or two letters may end inside a word there ("ab*"), which
	// the full walk must see.
	tri []int32
}

// Values of trie.tri besides node ids.
const (
	triNone = -1
	triWalk = -2
)

// shortBits numbers the starts of one letter (0-25) and of two (26 +
// 26*a + b).
const shortBits = 26 + 26*26

// triBits is the number of three-letter starts over a-z.
const triBits = 26 * 26 * 26

type tnode struct {
	e0, en int32 // edges[e0:e0+en]
	t0, tn int32 // refs[t0:t0+tn]
	d0     int32 // dense[d0:d0+128] maps ASCII runes to children; -1 if none
	gap    int32 // the child over a "_" gap, -1 if none (kept here so the walk need not read the edges)
	// r1 and to1 repeat the only edge of a node with one, so that the walk
	// down a long term reads no edge list
	r1  rune
	to1 int32
}

// denseMinEdges is the number of edges from which a node gets a direct
// table for ASCII runes (the root and the first levels of large lists)
// instead of a search over its edges.
const denseMinEdges = 6

type tedge struct {
	r  rune
	to int32
}

type trieBuilder struct {
	kids   []map[rune]int32
	terms  [][]int32
	trail  map[int32]bool // term id → "word*"
	starts [(triBits + 63) / 64]uint64
	short  [(shortBits + 63) / 64]uint64
}

func newTrieBuilder() *trieBuilder {
	return &trieBuilder{kids: []map[rune]int32{{}}, terms: [][]int32{nil}, trail: map[int32]bool{}}
}

// markStart records the first three letters of a term. A term shorter
// than three letters, or with a space, gap or a character outside a-z
// among them, marks every continuation of the letters before it; a term
// that does not start with a-z needs no mark, as symbols other than
// plain letters always start a walk.
func (b *trieBuilder) markStart(runes []rune) {
	letter := func(k int) (int, bool) {
		if k >= len(runes) || runes[k] < 'a' || runes[k] > 'z' {
			return 0, false
		}
		return int(runes[k] - 'a'), true
	}
	a, ok := letter(0)
	if !ok {
		return // only a symbol that is no plain letter starts it, and those always walk
	}
	short := func(i int) { b.short[i>>6] |= 1 << (i & 63) }
	lo, hi := a*676, a*676+676
	if c1, ok := letter(1); ok {
		lo, hi = lo+c1*26, lo+c1*26+26
		if c2, ok := letter(2); ok {
			lo, hi = lo+c2, lo+c2+1
		} else {
			short(26 + a*26 + c1) // "ab", "ab cd"
		}
	} else {
		short(a) // "a", "a b"
	}
	for i := lo; i < hi; i++ {
		b.starts[i>>6] |= 1 << (i & 63)
	}
}

func (b *trieBuilder) add(runes []rune, id int32, trail bool) {
	b.markStart(runes)
	if trail {
		b.trail[id] = true
	}
	n := int32(0)
	for _, r := range runes {
		next, ok := b.kids[n][r]
		if !ok {
			next = int32(len(b.kids))
			b.kids = append(b.kids, map[rune]int32{})
			b.terms = append(b.terms, nil)
			b.kids[n][r] = next
		}
		n = next
	}
	b.terms[n] = append(b.terms[n], id)
}

func (b *trieBuilder) freeze() *trie {
	// number the nodes breadth first, so that the first levels, which
	// every walk reads, sit together in memory
	order := make([]int32, 0, len(b.kids)) // new id → builder id
	newID := make([]int32, len(b.kids))    // builder id → new id
	order = append(order, 0)
	for q := 0; q < len(order); q++ {
		kids := b.kids[order[q]]
		keys := make([]rune, 0, len(kids))
		for r := range kids {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		for _, r := range keys {
			newID[kids[r]] = int32(len(order))
			order = append(order, kids[r])
		}
	}
	t := &trie{nodes: make([]tnode, len(b.kids))}
	starts, short := b.starts, b.short
	t.starts, t.short = &starts, &short
	t.tri = make([]int32, triBits)
	trailing := func(n int32) bool {
		for _, id := range b.terms[n] {
			if b.trail[id] {
				return true
			}
		}
		return false
	}
	for k := range t.tri {
		t.tri[k] = triNone
		n1, ok := b.kids[0]['a'+rune(k/676)]
		if !ok {
			continue
		}
		n2, ok := b.kids[n1]['a'+rune(k/26%26)]
		if !ok {
			continue
		}
		if trailing(n1) || trailing(n2) {
			t.tri[k] = triWalk
			continue
		}
		if n3, ok := b.kids[n2]['a'+rune(k%26)]; ok {
			t.tri[k] = newID[n3]
		}
	}
	for i, old := range order {
		kids := b.kids[old]
		nd := &t.nodes[i]
		nd.e0 = int32(len(t.edges))
		keys := make([]rune, 0, len(kids))
		for r := range kids {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		for _, r := range keys {
			t.edges = append(t.edges, tedge{r: r, to: newID[kids[r]]})
		}
		nd.en = int32(len(keys))
		nd.r1, nd.to1 = -1, -1
		if len(keys) == 1 {
			nd.r1, nd.to1 = keys[0], newID[kids[keys[0]]]
		}
		nd.d0 = -1
		nd.gap = -1
		if g, ok := kids[gapRune]; ok {
			nd.gap = newID[g]
		}
		if len(keys) >= denseMinEdges {
			nd.d0 = int32(len(t.dense))
			for range 128 {
				t.dense = append(t.dense, -1)
			}
			for _, r := range keys {
				if r < 128 {
					t.dense[nd.d0+r] = newID[kids[r]]
				}
			}
		}
		nd.t0 = int32(len(t.refs))
		t.refs = append(t.refs, b.terms[old]...)
		for _, id := range b.terms[old] {
			t.trail = append(t.trail, b.trail[id])
		}
		nd.tn = int32(len(b.terms[old]))
	}
	return t
}

// child returns the node reached from n over r, or -1.
func (t *trie) child(n int32, r rune) int32 {
	nd := &t.nodes[n]
	if nd.d0 >= 0 && r < 128 && r >= 0 {
		return t.dense[nd.d0+r]
	}
	if nd.en <= 1 {
		if nd.r1 == r {
			return nd.to1
		}
		return -1
	}
	es := t.edges[nd.e0 : nd.e0+nd.en]
	if len(es) <= 8 {
		for _, e := range es {
			if e.r == r {
				return e.to
			}
		}
		return -1
	}
	lo, hi := 0, len(es)
	for lo < hi {
		m := (lo + hi) / 2
		if es[m].r < r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(es) && es[lo].r == r {
		return es[lo].to
	}
	return -1
}

// match is a term found at syms[s..e] (inclusive).
type match struct {
	s, e int32
	term int32
}

// walker matches one trie against the stream from one start position. The
// walk branches only over leet candidates (at most 3), the length a run of
// repeated letters stands for (at most 3) and masks (at most 2 per match),
// and its depth is bounded by the longest term, so the work per start
// position is bounded and a whole check is linear in the text.
type walker struct {
	syms   []sym
	tokens []token
	t      *trie
	terms  []term
	start  int32
	out    []match
	work   int
}

const maxMasks = 2

// anyVowel are the candidates of a digit that imitates a vowel.
var anyVowel = [...]rune{'a', 'e', 'i', 'o', 'u'}

func (w *walker) step(node, i int32, masks, real int) {
	var nd *tnode
	var s *sym
	// Most of a walk is plain letters (one candidate, no run, no leet, no
	// split-letter boundary) under nodes without a gap: those steps follow
	// one edge each and are taken in this loop instead of a call each.
	for {
		w.work++
		nd = &w.t.nodes[node]
		if nd.tn > 0 && i > w.start && (masks == 0 || (real >= 2 && real >= masks)) {
			last := &w.syms[i-1]
			for k, ti := range w.t.refs[nd.t0 : nd.t0+nd.tn] {
				if last.bAfter || w.t.trail[int(nd.t0)+k] {
					w.out = append(w.out, match{s: w.start, e: i - 1, term: ti})
				}
			}
		}
		if nd.en == 0 || int(i) >= len(w.syms) {
			return
		}
		s = &w.syms[i]
		if nd.gap >= 0 || s.kind != sChar || s.c[1] != 0 || s.vowel || s.run != 1 ||
			(s.bBefore && i > w.start && w.syms[i-1].bAfter && w.syms[i-1].kind == sChar) {
			break
		}
		c := w.t.child(node, s.c[0])
		if c < 0 {
			return
		}
		if s.real {
			real++
		}
		node, i = c, i+1
	}
	// a gap skips one whole word
	if nd.gap >= 0 && s.bBefore && s.tok >= 0 && (s.kind == sChar || s.kind == sLit) {
		w.step(nd.gap, w.tokens[s.tok].last+1, masks, real)
	}
	// inside split letters ("f u c k y o u") a term's space matches the
	// boundary between two letters
	if i > w.start && s.kind == sChar && s.bBefore && w.syms[i-1].bAfter && w.syms[i-1].kind == sChar {
		if c := w.t.child(node, ' '); c >= 0 {
			w.step(c, i, masks, real)
		}
	}
	switch s.kind {
	case sSpace:
		if c := w.t.child(node, ' '); c >= 0 {
			w.step(c, i+1, masks, real)
		}
	case sMask:
		if masks >= maxMasks {
			return
		}
		for _, e := range w.t.edges[nd.e0 : nd.e0+nd.en] {
			if e.r != ' ' {
				w.step(e.to, i+1, masks+1, real)
			}
		}
	case sLit:
		if c := w.t.child(node, s.c[0]); c >= 0 {
			w.step(c, i+1, masks, real)
		}
	case sChar:
		run := int32(s.run)
		cands := s.c[:]
		if s.vowel {
			cands = anyVowel[:]
		}
		for _, c := range cands {
			if c == 0 {
				break
			}
			n := node
			for k := int32(1); k <= min(run, 3); k++ {
				if n = w.t.child(n, c); n < 0 {
					break
				}
				add := 0
				if s.real {
					add = int(run)
				}
				w.step(n, i+run, masks, real+add)
			}
		}
	}
}

// plainLetter reports a symbol that is one letter a-z and nothing else:
// no leet candidates, no repeated run, no mask.
func plainLetter(s *sym) bool {
	return s.kind == sChar && s.c[1] == 0 && !s.vowel && s.run == 1 && s.c[0] >= 'a' && s.c[0] <= 'z'
}

// Start keys say, per position of the stream, what the start bitsets
// need to rule a walk out: the index of the three plain letters there
// (0 to triBits-1), of one or two plain letters that end their word
// (triBits + a short index), or walkAlways for anything no bitset knows
// (leet, runs, masks, split letters, digits). They are computed once per
// text and serve both tries.
const walkAlways = -1

// startKey is the start key of syms[i] given the plain-letter marks
// (0-25, -1 for none) of i, i+1 and i+2; buildStream computes the keys
// going backwards over the stream, when runs are known.
func startKey(syms []sym, i int, a, next1, next2 int32) int32 {
	switch {
	case a < 0:
		return walkAlways
	case next1 >= 0 && next2 >= 0:
		return a*676 + next1*26 + next2
	case next1 >= 0:
		return shortKey(syms, i, 2, triBits+26+a*26+next1)
	}
	return shortKey(syms, i, 1, triBits+a)
}

// shortKey is the key of n plain letters at i that end their word, or
// walkAlways when the word goes on with something no bitset knows
// (leet, a mask, a repeated letter, a split letter).
func shortKey(syms []sym, i, n int, key int32) int32 {
	if e := i + n; e < len(syms) && (syms[e].kind == sChar || syms[e].kind == sLit || syms[e].kind == sMask || !syms[e-1].bAfter) {
		return walkAlways
	}
	return key
}

// mayStart reports whether a term can start where the start key was
// taken: the bitset of three-letter starts or of short starts decides;
// walkAlways leaves it to the walk.
func (t *trie) mayStart(key int32) bool {
	switch {
	case key == walkAlways:
		return true
	case key < triBits:
		return t.starts[key>>6]&(1<<(key&63)) != 0
	}
	key -= triBits
	return t.short[key>>6]&(1<<(key&63)) != 0
}

// findAll appends every match of t in syms (keys: their start keys).
// Whole-word tries start only at word starts; the leading-wildcard trie
// starts at every letter.
func findAll(t *trie, terms []term, syms []sym, tokens []token, keys []int32, anywhere bool, out []match, work *int) []match {
	if t == nil || len(t.nodes) == 0 || t.nodes[0].en == 0 {
		return out
	}
	w := walker{syms: syms, tokens: tokens, t: t, terms: terms, out: out}
	for i := range syms {
		s := &syms[i]
		if s.kind != sChar && s.kind != sLit {
			continue
		}
		if !anywhere && !s.bBefore {
			continue
		}
		if !t.mayStart(keys[i]) {
			continue
		}
		w.start = int32(i)
		// three plain letters inside a word: their node is looked up at
		// once (a term shorter than three letters cannot end there)
		if k := keys[i]; k >= 0 && k < triBits && !syms[i].bAfter && !syms[i+1].bAfter {
			switch n := t.tri[k]; n {
			case triNone:
				continue
			case triWalk:
			default:
				w.work += 3
				w.step(n, int32(i)+3, 0, 3)
				continue
			}
		}
		w.start = int32(i)
		w.step(0, int32(i), 0, 0)
	}
	*work += w.work
	return w.out
}
