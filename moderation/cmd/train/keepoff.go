package main

import (
	"strings"
	"unicode"
)

// The -check files measure the model on text it never saw, so no
// training message may be a near copy of one of their lines: a
// training message whose set of words overlaps a check line's by
// keepOffJaccard or more (shared words over all words) is left out.
const keepOffJaccard = 0.5

// wordSet returns the lower-cased words of s.
func wordSet(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		out[w] = true
	}
	return out
}

func jaccard(a, b map[string]bool) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	both := 0
	for w := range a {
		if b[w] {
			both++
		}
	}
	return float64(both) / float64(len(a)+len(b)-both)
}

// keepOff returns data without the messages that nearly copy a line of
// checks, and how many it left out. Messages of fewer than three words
// are too short to copy anything and stay.
func keepOff(data []example, checks [][]example) ([]example, int) {
	var sets []map[string]bool
	for _, c := range checks {
		for _, ex := range c {
			if s := wordSet(ex.text); len(s) >= 3 {
				sets = append(sets, s)
			}
		}
	}
	out := data[:0:0]
	for _, ex := range data {
		s := wordSet(ex.text)
		near := false
		for _, c := range sets {
			if len(s) >= 3 && jaccard(s, c) >= keepOffJaccard {
				near = true
				break
			}
		}
		if !near {
			out = append(out, ex)
		}
	}
	return out, len(data) - len(out)
}
