package moderation

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
)

// TestRegexPrefilterKeepsEveryMatch compares the prefiltered search with a
// plain FindAllStringIndex on random texts built from the patterns' own
// alphabet, so matches, near-misses and edges are all exercised.
func TestRegexPrefilterKeepsEveryMatch(t *testing.T) {
	patterns := []string{}
	for _, r := range DefaultPolicy().Regexes {
		patterns = append(patterns, r.Pattern)
	}
	patterns = append(patterns,
		`(?i)\bcheap\s+meds\b`, `^hello`, `bye$`, `a.b`, `[^x]{3}`, `(?i)k+`, `\bab\b`, `x*`, `ab|c d`, `\d{3}-\d{4}`)
	alphabet := []string{"a", "b", "c", "d", "k", "K", "x", "1", "3", "0x", "bc1", " ", "\n", "\t", "-", ".", "t.me/", "/", "_",
		"hello", "bye", "cheap", "meds", "joinchat", "\u212a", "é", "1BoatSLRr3Ce8wJ9qgXhKeZbjU7pFq4DmA", "0x52908400098527886E0F7030069857D2E4169EE7"}
	rng := rand.New(rand.NewPCG(7, 9))
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		r := compiledRule{re: re, filter: newRegexFilter(re)}
		for n := 0; n < 3000; n++ {
			var b []byte
			for k := rng.IntN(30); k >= 0; k-- {
				b = append(b, alphabet[rng.IntN(len(alphabet))]...)
			}
			text := string(b)
			var want [][2]int
			for _, ix := range re.FindAllStringIndex(text, -1) {
				want = append(want, [2]int{ix[0], ix[1]})
			}
			runs := nonSpaceRuns(text, max(r.filter.minLen, 1), nil)
			got := findRegex(&r, text, runs, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("pattern %q on %q: prefiltered %v, plain %v (filter %+v)", p, text, got, want, r.filter)
			}
		}
	}
}
