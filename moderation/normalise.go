package moderation

import (
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// unitClass says what a normalised character is for matching.
type unitClass uint8

const (
	uLetter    unitClass = iota // a letter after folding
	uDigit                      // 0-9
	uEdgeLeet                   // @ $ € ... : leet at a word's edge or inside it
	uInnerLeet                  // ! | + ( : leet only between letters
	uMask                       // * # : stands for any one letter between letters
	uSpace                      // whitespace and soft punctuation
	uBreak                      // sentence punctuation and line breaks
	uOther                      // symbols, emoji
)

// unit is one normalised character and the original bytes it came from.
// One original rune can give several units (NFKC of "ﬁ" is "fi"); each
// keeps the whole original rune's span so spans never split a rune.
type unit struct {
	r          rune
	cls        unitClass
	start, end int32
}

// foldCache remembers the slow-path folding of non-ASCII runes. It is
// bounded so that text made of many distinct runes cannot grow it forever.
var (
	foldCache     sync.Map // rune → string
	foldCacheSize atomic.Int64
)

const foldCacheMax = 1 << 16

// foldRune returns the normalised form of a non-ASCII rune: width folded,
// NFKC, case folded, combining marks removed, confusables mapped to Latin.
// Zero-width and format characters and lone combining marks give "".
func foldRune(r rune) string {
	if v, ok := foldCache.Load(r); ok {
		return v.(string)
	}
	s := foldRuneSlow(r)
	if foldCacheSize.Load() < foldCacheMax {
		if _, loaded := foldCache.LoadOrStore(r, s); !loaded {
			foldCacheSize.Add(1)
		}
	}
	return s
}

func foldRuneSlow(r rune) string {
	if r == utf8.RuneError || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Mn, unicode.Me) ||
		r == 0x034F || (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0100 && r <= 0xE01EF) {
		return "" // zero-width, joiners, soft hyphen, variation selectors, combining marks
	}
	if r >= regionalIndicatorBase && r < regionalIndicatorBase+26 {
		return string('a' + (r - regionalIndicatorBase))
	}
	if m, ok := upperConfusables[r]; ok {
		return string(m) // capitals that look unlike their lower case (Greek Η, Ν)
	}
	s := width.Fold.String(string(r))
	s = norm.NFKC.String(s)
	s = cases.Fold().String(s)
	var b strings.Builder
	for _, c := range norm.NFD.String(s) {
		if unicode.In(c, unicode.Mn, unicode.Me) || unicode.Is(unicode.Cf, c) {
			continue
		}
		if m, ok := confusables[c]; ok {
			c = m
		}
		b.WriteRune(c)
	}
	return b.String()
}

// classify gives the class of an already folded rune.
func classify(r rune) unitClass {
	switch {
	case r >= 'a' && r <= 'z':
		return uLetter
	case r >= '0' && r <= '9':
		return uDigit
	}
	switch r {
	case '@', '$', '€', '¢', '£', '¥':
		return uEdgeLeet
	case '!', '|', '+', '(', '¡':
		return uInnerLeet
	case '*', '#':
		return uMask
	case '.', '?', ';', ':', '\n', '\r', '\u2028', '\u2029', '¿', '。', '…':
		return uBreak
	}
	switch {
	case r < 0x80:
		if unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsControl(r) {
			return uSpace
		}
		return uOther
	case unicode.IsLetter(r):
		return uLetter
	case unicode.IsDigit(r):
		return uDigit
	case unicode.IsSpace(r), unicode.IsPunct(r):
		return uSpace
	}
	return uOther
}

// asciiClass is classify for the lower-cased ASCII bytes, computed from
// classify itself so the two cannot disagree.
var asciiClass = func() (t [128]unitClass) {
	for r := rune(0); r < 128; r++ {
		t[r] = classify(r)
	}
	return t
}()

// normalise turns text into units, appending to buf. Invalid UTF-8 bytes
// become separators so that they neither join nor hide words.
func normalise(text string, buf []unit) []unit {
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			r := rune(c)
			if r >= 'A' && r <= 'Z' {
				r += 'a' - 'A'
			}
			buf = append(buf, unit{r: r, cls: asciiClass[r], start: int32(i), end: int32(i + 1)})
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError {
			buf = append(buf, unit{r: ' ', cls: uSpace, start: int32(i), end: int32(i + size)})
			i += size
			continue
		}
		folded := foldRune(r)
		if folded == "" && len(buf) > 0 && buf[len(buf)-1].end == int32(i) {
			// a dropped mark or zero-width character belongs to the
			// character before it, so spans include it
			buf[len(buf)-1].end = int32(i + size)
		}
		for _, f := range folded {
			buf = append(buf, unit{r: f, cls: classify(f), start: int32(i), end: int32(i + size)})
		}
		i += size
	}
	return buf
}

// Normalise returns the text the matcher sees with leetspeak left as
// written: NFKC, case folded, confusables mapped, zero-width characters
// and combining marks removed. It is for tooling and tests.
func Normalise(text string) string {
	units := normalise(text, nil)
	var b strings.Builder
	b.Grow(len(units))
	for _, u := range units {
		b.WriteRune(u.r)
	}
	return b.String()
}
