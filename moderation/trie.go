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
	dense []int32 // child tables of nodes with many edges, see tnode.d0
}

type tnode struct {
	e0, en int32 // edges[e0:e0+en]
	t0, tn int32 // refs[t0:t0+tn]
	d0     int32 // dense[d0:d0+128] maps ASCII runes to children; -1 if none
}

// denseMinEdges is the number of edges from which a node gets a direct
// table for ASCII runes (the root and the first levels of large lists)
// instead of a search over its edges.
const denseMinEdges = 12

type tedge struct {
	r  rune
	to int32
}

type trieBuilder struct {
	kids  []map[rune]int32
	terms [][]int32
}

func newTrieBuilder() *trieBuilder {
	return &trieBuilder{kids: []map[rune]int32{{}}, terms: [][]int32{nil}}
}

func (b *trieBuilder) add(runes []rune, id int32) {
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
	t := &trie{nodes: make([]tnode, len(b.kids))}
	for i, kids := range b.kids {
		nd := &t.nodes[i]
		nd.e0 = int32(len(t.edges))
		keys := make([]rune, 0, len(kids))
		for r := range kids {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		for _, r := range keys {
			t.edges = append(t.edges, tedge{r: r, to: kids[r]})
		}
		nd.en = int32(len(keys))
		nd.d0 = -1
		if len(keys) >= denseMinEdges {
			nd.d0 = int32(len(t.dense))
			for range 128 {
				t.dense = append(t.dense, -1)
			}
			for _, r := range keys {
				if r < 128 {
					t.dense[nd.d0+r] = kids[r]
				}
			}
		}
		nd.t0 = int32(len(t.refs))
		t.refs = append(t.refs, b.terms[i]...)
		nd.tn = int32(len(b.terms[i]))
	}
	return t
}

// child returns the node reached from n over r, or -1.
func (t *trie) child(n int32, r rune) int32 {
	nd := &t.nodes[n]
	if nd.d0 >= 0 && r < 128 && r >= 0 {
		return t.dense[nd.d0+r]
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
	w.work++
	nd := &w.t.nodes[node]
	if nd.tn > 0 && i > w.start && (masks == 0 || (real >= 2 && real >= masks)) {
		last := &w.syms[i-1]
		for _, ti := range w.t.refs[nd.t0 : nd.t0+nd.tn] {
			if w.terms[ti].trail || last.bAfter {
				w.out = append(w.out, match{s: w.start, e: i - 1, term: ti})
			}
		}
	}
	if nd.en == 0 || int(i) >= len(w.syms) {
		return
	}
	s := &w.syms[i]
	// a gap skips one whole word; gapRune sorts last among a node's edges
	if e := &w.t.edges[nd.e0+nd.en-1]; e.r == gapRune && s.bBefore && s.tok >= 0 && (s.kind == sChar || s.kind == sLit) {
		w.step(e.to, w.tokens[s.tok].last+1, masks, real)
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

// findAll appends every match of t in syms. Whole-word tries start only at
// word starts; the leading-wildcard trie starts at every letter.
func findAll(t *trie, terms []term, syms []sym, tokens []token, anywhere bool, out []match, work *int) []match {
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
		w.start = int32(i)
		w.step(0, int32(i), 0, 0)
	}
	*work += w.work
	return w.out
}
