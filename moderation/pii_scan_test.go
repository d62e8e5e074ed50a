package moderation

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
)

// numbersIn finds exactly what the regular expression it replaced finds,
// on windows of digits and separators as digitRuns cuts them.
func TestNumberScanMatchesTheRegex(t *testing.T) {
	re := regexp.MustCompile(`(?:\+|\b)\d(?:[ \-.()/_]{0,2}\d){6,30}`)
	r := rand.New(rand.NewPCG(7, 11))
	const alphabet = "0123456789012345678901234567890123456789 -.()/+_"
	for n := 0; n < 20000; n++ {
		b := make([]byte, 1+r.IntN(60))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		w := string(b)
		var want [][2]int
		for _, m := range re.FindAllStringIndex(w, -1) {
			want = append(want, [2]int{m[0], m[1]})
		}
		var got [][2]int
		scanNumbers(w, func(s, e int) { got = append(got, [2]int{s, e}) })
		if !slices.Equal(got, want) {
			t.Fatalf("%q: scan %v, regex %v", w, got, want)
		}
	}
}

// The shape checks in front of the SSN and bare identity-number patterns
// never hide a match of the pattern.
func TestIdentityShapeChecksKeepEveryMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	const alphabet = "0123456789012345678901234567890123456789 -.()/+_ -"
	seps := []string{" ", "-", ".", "", "  ", "/", "(", "_"}
	ssn, ids := 0, 0
	for n := 0; n < 30000; n++ {
		var w string
		if n%2 == 0 {
			b := make([]byte, 1+r.IntN(40))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			w = string(b)
		} else {
			// digit groups of 1 to 5 digits with separators, where the
			// patterns match often
			for g := 0; g < 1+r.IntN(5); g++ {
				if g > 0 {
					w += seps[r.IntN(len(seps))]
				}
				for d := 0; d < 1+r.IntN(5); d++ {
					w += string(rune('0' + r.IntN(10)))
				}
			}
		}
		if want := ssnRe.FindAllStringIndex(w, -1); len(want) > 0 {
			ssn++
			if len(ssnMatches(w)) == 0 {
				t.Fatalf("%q: the SSN shape check hides %v", w, want)
			}
		}
		if want := idDigitsRe.FindAllStringIndex(w, -1); len(want) > 0 {
			ids++
			if len(idDigitMatches(w)) == 0 {
				t.Fatalf("%q: the digit chain check hides %v", w, want)
			}
		}
	}
	if ssn < 10 || ids < 200 {
		t.Fatalf("too few windows where the patterns match (SSN %d, ids %d) to check anything", ssn, ids)
	}
}
