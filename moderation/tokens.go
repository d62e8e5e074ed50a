package moderation

// The match stream: normalised units become tokens (words and numbers),
// leetspeak is resolved inside words, letters split by separators
// ("f u c k", "f.u.c.k") are joined, and every symbol keeps the byte span
// of the original text it came from.

type symKind uint8

const (
	sChar  symKind = iota // a letter or leet character: candidates in c
	sLit                  // a literal that only matches itself (digits of numbers)
	sMask                 // '*' or '#' inside a word: any one letter
	sSpace                // a gap between two words
	sBreak                // a sentence break: phrases do not cross it
)

// sym is one position of the match stream.
type sym struct {
	c       [3]rune // candidates, zero-terminated
	kind    symKind
	real    bool // a plain letter, not a leet stand-in
	vowel   bool // a leet digit that may stand for any vowel ("f4ck")
	bBefore bool // a word boundary precedes it
	bAfter  bool // a word boundary follows it
	run     uint8
	tok     int32
	start   int32
	end     int32
}

// role of a unit once its word has been looked at as a whole.
type role uint8

const (
	roleWord role = iota
	roleNum
	roleSep
	roleBreak
)

// token is a word or number of the stream.
type token struct {
	first, last int32 // sym indices, inclusive
	word        bool
	brkBefore   bool   // a sentence break separates it from the previous token
	hash        uint64 // FNV-1a of the word as its first candidates spell it ('*' for a mask), for words
}

// scratch holds the buffers one Check reuses.
type scratch struct {
	units   []unit
	roles   []role
	syms    []sym
	keys    []int32 // start key of each symbol (startKey)
	tokens  []token
	matches []match
	text    []rune
	runs    [][2]int // non-space runs of the original text
	found   [][2]int // one regex's matches
	hits    []intentHit
	extra   classSet // pseudo-classes of the text (links, emoji, amounts)
	sent    []int32  // sentence number of each token
	feats   []uint32
	probs   []float64
	seps    []sepInfo
	inSplit []int32
	words   [][2]int // runs of non-space bytes of the original text
	hosts   []string // registered domains of links nothing was said about
	promo   bool     // the text reads as promotion
}

// assignRoles decides, word by word, which characters belong to words
// (letters, leet inside words, masks between letters), which are digits of
// numbers and which separate.
func assignRoles(units []unit, roles []role) []role {
	roles = roles[:0]
	for i := 0; i < len(units); {
		switch units[i].cls {
		case uSpace, uOther:
			roles = append(roles, roleSep)
			i++
			continue
		case uBreak:
			// a dot glued between two letters ("fuck.you", "f.u.c.k")
			// separates words but does not end a sentence
			if units[i].r == '.' && i > 0 && i+1 < len(units) &&
				units[i-1].cls == uLetter && units[i+1].cls == uLetter {
				roles = append(roles, roleSep)
			} else {
				roles = append(roles, roleBreak)
			}
			i++
			continue
		}
		j := i
		for j < len(units) && isWordClass(units[j].cls) {
			j++
		}
		roles = wordRoles(units[i:j], roles)
		i = j
	}
	return roles
}

func isWordClass(c unitClass) bool {
	return c == uLetter || c == uDigit || c == uEdgeLeet || c == uInnerLeet || c == uMask
}

// wordRoles assigns roles within one run of word characters.
func wordRoles(w []unit, roles []role) []role {
	allLetters := true
	for k := range w {
		if w[k].cls != uLetter {
			allLetters = false
			break
		}
	}
	if allLetters {
		// most words: letters only, every one a word letter
		for range w {
			roles = append(roles, roleWord)
		}
		return roles
	}
	lastLetter, letters := -1, 0
	for k, u := range w {
		if u.cls == uLetter {
			lastLetter = k
			letters++
		}
	}
	// one digit ending a word of at least three letters stands for a
	// letter ("put4", "merd3"); a longer digit block or a shorter word
	// keeps its digits ("a55", "mp3", "win10").
	innerLeet := false // a digit between letters ("f0t0", "r0pa")
	for k := 1; k < lastLetter; k++ {
		if w[k].cls == uDigit && w[k-1].cls == uLetter {
			innerLeet = true
		}
	}
	tailLeet := len(w) >= 4 && lastLetter == len(w)-2 && (letters >= 3 || innerLeet) && w[len(w)-1].cls == uDigit
	// anchor: a letter, or a digit followed later by a letter (so "sh1t"
	// and "5hit" are words but the model number in "a55" keeps its digits).
	anchor := func(k int) bool {
		if k < 0 || k >= len(w) {
			return false
		}
		return w[k].cls == uLetter || (w[k].cls == uDigit && (lastLetter > k || (tailLeet && k == len(w)-1)))
	}
	for k := 0; k < len(w); {
		u := w[k]
		switch u.cls {
		case uLetter:
			roles = append(roles, roleWord)
			k++
		case uDigit:
			if anchor(k) {
				roles = append(roles, roleWord)
			} else {
				roles = append(roles, roleNum)
			}
			k++
		default:
			// a run of the same class: decide it as a whole
			e := k
			for e < len(w) && w[e].cls == u.cls {
				e++
			}
			left, right := anchor(k-1), anchor(e)
			in := false
			switch u.cls {
			case uEdgeLeet:
				in = left || right
			case uInnerLeet:
				in = left && right && e-k <= 2
			case uMask:
				in = left && right && e-k <= 3
			}
			for ; k < e; k++ {
				switch {
				case in:
					roles = append(roles, roleWord)
				case w[k].r == '!':
					roles = append(roles, roleBreak)
				default:
					roles = append(roles, roleSep)
				}
			}
		}
	}
	return roles
}

// buildStream turns units into the match stream and its tokens.
func buildStream(sc *scratch) {
	units := sc.units
	sc.roles = assignRoles(units, sc.roles)
	roles := sc.roles
	sc.tokens = sc.tokens[:0]

	// tokens over units first (first/last hold unit indices for now)
	seps := sc.seps[:0] // seps[t] is the separator before token t
	cur := sepInfo{}
	for i := 0; i < len(units); {
		r := roles[i]
		if r == roleSep || r == roleBreak {
			cur.n++
			if r == roleBreak {
				cur.brk = true
			}
			if units[i].r == '\n' || units[i].r == '\r' {
				cur.newline = true
			}
			i++
			continue
		}
		j := i
		for j < len(units) && roles[j] == r {
			j++
		}
		sc.tokens = append(sc.tokens, token{})
		tk := &sc.tokens[len(sc.tokens)-1]
		tk.first, tk.last, tk.word = int32(i), int32(j-1), r == roleWord
		seps = append(seps, cur)
		cur = sepInfo{}
		i = j
	}

	// split letters: at least three one-letter words separated by short
	// separators on one line, with at least two plain letters among them.
	sc.seps = seps
	inSplit := sc.inSplit[:0] // split-letter run id, 0 for none
	for range sc.tokens {
		inSplit = append(inSplit, 0)
	}
	sc.inSplit = inSplit
	runID := int32(0)
	single := func(t int) bool {
		tk := sc.tokens[t]
		// one original character, even one that folds to two ("ß")
		return tk.word && units[tk.first].start == units[tk.last].start && units[tk.first].cls != uMask
	}
	for t := 0; t < len(sc.tokens); {
		if !single(t) {
			t++
			continue
		}
		e := t + 1
		for e < len(sc.tokens) && single(e) && seps[e].n <= 3 && !seps[e].newline {
			e++
		}
		letters := 0
		for k := t; k < e; k++ {
			if units[sc.tokens[k].first].cls == uLetter {
				letters++
			}
		}
		if e-t >= 3 && letters >= 2 {
			runID++
			for k := t; k < e; k++ {
				inSplit[k] = runID
			}
		}
		t = e
	}

	// emit symbols: at most one per unit plus one gap per token, written
	// in place (a 32-byte struct appended one by one was a fifth of the
	// stream's cost)
	need := len(units) + len(sc.tokens)
	if cap(sc.syms) < need {
		sc.syms = make([]sym, need)
	}
	syms := sc.syms[:need]
	n := 0
	prevEnd := int32(0)
	for t := range sc.tokens {
		tk := &sc.tokens[t]
		first, last := tk.first, tk.last
		tk.brkBefore = seps[t].brk || seps[t].newline
		split := inSplit[t] != 0
		if t > 0 && (!split || inSplit[t] != inSplit[t-1]) {
			// two tokens from one original character ("㎯" folds to
			// "rad/s2") have an empty gap between them
			syms[n] = sym{kind: sKindFor(seps[t]), tok: -1, start: min(prevEnd, units[first].start), end: units[first].start}
			n++
		}
		prevEnd = units[last].end
		tk.first = int32(n)
		h := uint64(fnvOffset)
		for i := first; i <= last; i++ {
			u := &units[i]
			s := &syms[n]
			// fields one by one: a composite literal was built on the
			// stack and copied, a tenth of the whole check
			s.c = [3]rune{}
			s.real, s.vowel, s.run = false, false, 0
			s.bBefore, s.bAfter = i == first || split, i == last || split
			s.tok, s.start, s.end = int32(t), u.start, u.end
			switch {
			case !tk.word:
				s.kind, s.c[0] = sLit, u.r
			case u.cls == uMask:
				s.kind = sMask
			case u.cls == uLetter:
				s.kind, s.c[0], s.real = sChar, u.r, true
				if u.r == 'v' && last-first >= 2 {
					s.c[1] = 'u' // "fvck"; not in a word of two letters ("tv" is no "tu")
				}
			default:
				if l, ok := leet[u.r]; ok {
					s.kind, s.c = sChar, l
					s.vowel = u.r == '0' || u.r == '3' || u.r == '4'
				} else {
					s.kind, s.c[0] = sLit, u.r
				}
			}
			if s.kind == sMask {
				h = (h ^ '*') * fnvPrime
			} else {
				h = (h ^ uint64(s.c[0])) * fnvPrime
			}
			n++
		}
		tk.last = int32(n - 1)
		tk.hash = h
	}
	syms = syms[:n]
	sc.syms = syms
	// runs of one repeated plain letter ("fuuuuck"), and in the same
	// backward pass the start keys of the tries (startKeys)
	if cap(sc.keys) < len(syms) {
		sc.keys = make([]int32, len(syms))
	}
	keys := sc.keys[:len(syms)]
	sc.keys = keys
	next1, next2 := int32(-1), int32(-1) // plain-letter marks of i+1 and i+2
	for i := len(syms) - 1; i >= 0; i-- {
		s := &syms[i]
		s.run = 1
		if s.kind == sChar && s.c[1] == 0 && i+1 < len(syms) &&
			syms[i+1].kind == sChar && syms[i+1].c[1] == 0 && syms[i+1].c[0] == s.c[0] && syms[i+1].run < 255 {
			s.run = syms[i+1].run + 1
		}
		a := int32(-1)
		if plainLetter(s) {
			a = int32(s.c[0] - 'a')
		}
		keys[i] = startKey(syms, i, a, next1, next2)
		next1, next2 = a, next1
	}
}

// sepInfo describes the separator characters before a token.
type sepInfo struct {
	brk, newline bool
	n            int
}

func sKindFor(s sepInfo) symKind {
	if s.brk || s.newline {
		return sBreak
	}
	return sSpace
}

// tokenText returns a token's text as its first candidates spell it
// ("y0u" reads "you").
func tokenText(sc *scratch, t int) string {
	tk := sc.tokens[t]
	sc.text = sc.text[:0]
	for i := tk.first; i <= tk.last; i++ {
		s := sc.syms[i]
		if s.kind == sMask {
			sc.text = append(sc.text, '*')
			continue
		}
		sc.text = append(sc.text, s.c[0])
	}
	return string(sc.text)
}
