package moderation

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"", "hello", "f u c k", "f.u.c.k.i.n.g", "sh1t", "@$$", "f**k", "***", "ｆｕｃｋ", "𝐟𝐮𝐜𝐤", "f\u200bu\u0336c\u0301k",
	"ß", "ﬁ", "İstanbul", "\xff\xfe bad utf8", "you are an idiot", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
	"john@example.com", "http://paypa1.com@x.y/", "a b c d e f g h", strings.Repeat("a", 300), strings.Repeat("f*", 100),
	strings.Repeat("y o u ", 50), "\u0301\u0301\u0301", "🇫🇺🇨🇰", "k y s", "1 2 3 4 5 6 7 8 9 0",
}

// FuzzNormalise checks that normalisation never panics, that every unit
// maps to a valid range of the original text in order, and that the match
// stream's spans stay inside the text.
func FuzzNormalise(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		units := normalise(text, nil)
		last := int32(0)
		for _, u := range units {
			if u.start < last || u.end <= u.start || int(u.end) > len(text) {
				t.Fatalf("unit %+v out of order or range (len %d)", u, len(text))
			}
			last = u.start
		}
		sc := &scratch{units: units}
		buildStream(sc)
		for _, s := range sc.syms {
			if s.start < 0 || int(s.end) > len(text) || s.start > s.end {
				t.Fatalf("sym %+v out of range", s)
			}
		}
		_ = Normalise(text)
	})
}

// FuzzCheck checks that any text gets a verdict whose spans are inside it
// and on rune boundaries, that redaction keeps the text's length in
// runes, and that the matcher's work stays linear in the input.
func FuzzCheck(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	e, err := NewEngine(DefaultPolicy())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		spans, work := e.spans(text)
		v := e.verdict(text, spans)
		for _, s := range v.Spans {
			if s.Start < 0 || s.End > len(text) || s.Start >= s.End {
				t.Fatalf("span %+v out of range (len %d)", s, len(text))
			}
			if utf8.ValidString(text) && (!utf8.RuneStart(text[s.Start]) || s.End < len(text) && !utf8.RuneStart(text[s.End])) {
				t.Fatalf("span %+v splits a rune", s)
			}
		}
		if v.Redacted != "" && utf8.ValidString(text) && utf8.RuneCountInString(v.Redacted) != utf8.RuneCountInString(text) {
			t.Fatalf("redacted %q has a different length than %q", v.Redacted, text)
		}
		if limit := workPerByte*len(text) + 64; work > limit {
			t.Fatalf("matcher did %d steps for %d bytes (limit %d)", work, len(text), limit)
		}
	})
}

// workPerByte bounds the matcher's steps per input byte. Each start
// position walks at most the depth of the trie; branching is bounded by
// leet candidates, repeated-letter lengths and two masks.
const workPerByte = 400

// TestMatchingWorkIsLinear doubles adversarial inputs (all masks, long
// runs of repeated letters, split letters, leet) and asserts the matcher's
// step counter at most doubles too, within a small slack.
func TestMatchingWorkIsLinear(t *testing.T) {
	e := defaultEngine(t)
	for _, unit := range []string{"f*", "*", "fu", "f u c ", "sh1t", "a", "1", "k y s ", "fuuuuuck ", "4$$h0l3 ", "you are a "} {
		_, w1 := e.spans(strings.Repeat(unit, 500))
		_, w2 := e.spans(strings.Repeat(unit, 1000))
		_, w4 := e.spans(strings.Repeat(unit, 2000))
		if w2 > 2*w1+200 || w4 > 2*w2+200 {
			t.Errorf("%q: work %d, %d, %d for 500, 1000, 2000 repeats is not linear", unit, w1, w2, w4)
		}
		if n := len(unit) * 2000; w4 > workPerByte*n {
			t.Errorf("%q: %d steps for %d bytes", unit, w4, n)
		}
	}
}
