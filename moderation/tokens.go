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
	brkBefore   bool // a sentence break separates it from the previous token
}

// scratch holds the buffers one Check reuses.
type scratch struct {
	units   []unit
	roles   []role
	syms    []sym
	tokens  []token
	matches []match
	text    []rune
	runs    [][2]int // non-space runs of the original text
	found   [][2]int // one regex's matches
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
	tailLeet := len(w) >= 4 && lastLetter == len(w)-2 && letters >= 3 && w[len(w)-1].cls == uDigit
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
	var seps []sepInfo // seps[t] is the separator before token t
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
		sc.tokens = append(sc.tokens, token{first: int32(i), last: int32(j - 1), word: r == roleWord})
		seps = append(seps, cur)
		cur = sepInfo{}
		i = j
	}

	// split letters: at least three one-letter words separated by short
	// separators on one line, with at least two plain letters among them.
	inSplit := make([]int32, len(sc.tokens)) // split-letter run id, 0 for none
	runID := int32(0)
	single := func(t int) bool {
		tk := sc.tokens[t]
		return tk.word && tk.first == tk.last && units[tk.first].cls != uMask
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

	// emit symbols
	sc.syms = sc.syms[:0]
	prevEnd := int32(0)
	for t := range sc.tokens {
		tk := &sc.tokens[t]
		first, last := tk.first, tk.last
		tk.brkBefore = seps[t].brk || seps[t].newline
		if t > 0 && (inSplit[t] == 0 || inSplit[t] != inSplit[t-1]) {
			k := sKindFor(seps[t])
			sc.syms = append(sc.syms, sym{kind: k, tok: -1, start: prevEnd, end: units[first].start})
		}
		prevEnd = units[last].end
		tk.first = int32(len(sc.syms))
		for i := first; i <= last; i++ {
			u := units[i]
			s := sym{tok: int32(t), start: u.start, end: u.end}
			switch {
			case !tk.word:
				s.kind, s.c[0] = sLit, u.r
			case u.cls == uMask:
				s.kind = sMask
			case u.cls == uLetter:
				s.kind, s.c[0], s.real = sChar, u.r, true
				if u.r == 'v' {
					s.c[1] = 'u' // "fvck"
				}
			default:
				if l, ok := leet[u.r]; ok {
					s.kind, s.c = sChar, l
					s.vowel = u.r == '0' || u.r == '3' || u.r == '4'
				} else {
					s.kind, s.c[0] = sLit, u.r
				}
			}
			s.bBefore = i == first || inSplit[t] != 0
			s.bAfter = i == last || inSplit[t] != 0
			sc.syms = append(sc.syms, s)
		}
		tk.last = int32(len(sc.syms) - 1)
	}
	// runs of one repeated plain letter ("fuuuuck")
	syms := sc.syms
	for i := len(syms) - 1; i >= 0; i-- {
		syms[i].run = 1
		if syms[i].kind == sChar && syms[i].c[1] == 0 && i+1 < len(syms) &&
			syms[i+1].kind == sChar && syms[i+1].c[1] == 0 && syms[i+1].c[0] == syms[i].c[0] && syms[i+1].run < 255 {
			syms[i].run = syms[i+1].run + 1
		}
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
