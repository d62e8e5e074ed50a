package moderation

import "strings"

// textFacts are cheap facts about a text, gathered in one pass over its
// bytes, that let the detectors skip what cannot match: most messages
// have no emoji, no currency sign, no bracket, no date.
type textFacts struct {
	digits      int
	nonASCII    bool // a byte >= 0x80: emoji and symbol runs are possible
	moneySign   bool // $, %, € or £
	slashDigit  bool // a digit, "/" or "-", a digit ("09/27")
	spacedEmail bool // " @ ", " . " or " dot "
	cvvWord     bool // the start of a CVV word (see cvvHint)
	brackets    bool // "[", "(" or "{": obfuscated links and e-mails
}

// byte classes for factsOf: most bytes are letters or spaces and need no
// look at their neighbours
const (
	fbPlain byte = iota
	fbDigit
	fbHigh
	fbMoney
	fbDash
	fbBracket
	fbSpace
	fbCVV // c, s, f: may start a CVV word
)

var factClass = func() (t [256]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = fbDigit
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = fbHigh
	}
	t['$'], t['%'] = fbMoney, fbMoney
	t['/'], t['-'] = fbDash, fbDash
	t['['], t['('], t['{'] = fbBracket, fbBracket, fbBracket
	t[' '] = fbSpace
	for _, c := range "csfCSF" {
		t[c] = fbCVV
	}
	return t
}()

func factsOf(t string) textFacts {
	var f textFacts
	n := len(t)
	for i := 0; i < n; i++ {
		c := t[i]
		k := factClass[c]
		if k == fbPlain {
			continue
		}
		switch {
		case c >= '0' && c <= '9':
			f.digits++
		case c >= 0x80:
			f.nonASCII = true
			if (c == 0xE2 && i+2 < n && t[i+1] == 0x82 && t[i+2] == 0xAC) || (c == 0xC2 && i+1 < n && t[i+1] == 0xA3) {
				f.moneySign = true // € £
			}
		case c == '$' || c == '%':
			f.moneySign = true
		case c == '/' || c == '-':
			if i > 0 && i+1 < n && isDigit(t[i-1]) && isDigit(t[i+1]) {
				f.slashDigit = true
			}
		case c == '[' || c == '(' || c == '{':
			f.brackets = true
		case c == ' ':
			if i+2 < n {
				switch t[i+1] {
				case '@', '.':
					if t[i+2] == ' ' {
						f.spacedEmail = true
					}
				case 'd', 'D', 'p', 'P', 'a', 'A':
					// " dot ", " punto ", " ponto ", " punkt ", " point ",
					// " arroba ", " arobase ": an e-mail spelled out
					if spelledEmailWord(t[i+1:]) {
						f.spacedEmail = true
					}
				}
			}
		default:
			if i+2 < n && !f.cvvWord {
				a, b, d := c|0x20, t[i+1]|0x20, t[i+2]|0x20
				f.cvvWord = (a == 'c' && (b == 'v' || (b == 's' && d == 'c') || (b == 'i' && d == 'd'))) ||
					(a == 's' && b == 'e' && (d == 'c' || d == 'g')) || (a == 'f' && b == 'n' && d == 'u')
			}
		}
	}
	return f
}

// spelledEmailWord reports whether t starts with a word that spells "."
// or "@" of an e-mail address, followed by a space.
func spelledEmailWord(t string) bool {
	for _, w := range [...]string{"dot", "punto", "ponto", "punkt", "point", "arroba", "arobase"} {
		if len(t) > len(w) && t[len(w)] == ' ' && strings.EqualFold(t[:len(w)], w) {
			return true
		}
	}
	return false
}
