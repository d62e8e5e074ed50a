package moderation

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// A regex prefilter lets most texts skip a rule's regular expression with
// byte checks that cannot change its result:
//   - a rule that can match no ASCII whitespace and has no ^ or $ anchor
//     only ever matches inside a run of non-space bytes, and \b behaves
//     the same at the run's edge as next to the space; such a rule runs
//     only on runs at least as long as its shortest match;
//   - literal strings every match contains (case-sensitive parts of a
//     concatenation: "t.me/", "0x") must occur in the text or the run.

// regexFilter is what the parsed expression says about every match.
type regexFilter struct {
	minLen   int      // bytes of the shortest possible match
	windowed bool     // matches never contain ASCII whitespace nor use ^ $
	literals []string // substrings every match contains
}

func newRegexFilter(re *regexp.Regexp) regexFilter {
	tree, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return regexFilter{}
	}
	tree = tree.Simplify()
	f := regexFilter{minLen: minMatchLen(tree)}
	// a rule that may match the empty string is not windowed: empty runs
	// between spaces would be missed
	f.windowed = f.minLen > 0 && !mayMatchSpace(tree)
	f.literals = requiredLiterals(tree)
	return f
}

// minMatchLen is a lower bound on the bytes of any match of re.
func minMatchLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return len(re.Rune) // folded forms may be shorter than the runes' UTF-8
		}
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture:
		return minMatchLen(re.Sub[0])
	case syntax.OpPlus:
		return minMatchLen(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minMatchLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n += minMatchLen(s)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, s := range re.Sub {
			if m := minMatchLen(s); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0 // empty, star, quest, anchors, word boundaries
}

// mayMatchSpace reports whether a match of re may contain an ASCII space,
// tab or line break, or depends on ^ or $.
func mayMatchSpace(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL,
		syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return true
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if isASCIISpace(r) {
				return true
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for _, sp := range []rune{' ', '\t', '\n', '\v', '\f', '\r'} {
				if re.Rune[i] <= sp && sp <= re.Rune[i+1] {
					return true
				}
			}
		}
	}
	for _, s := range re.Sub {
		if mayMatchSpace(s) {
			return true
		}
	}
	return false
}

func isASCIISpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

// requiredLiterals returns the case-sensitive literal strings a top-level
// concatenation (or the expression itself) must contain.
func requiredLiterals(re *syntax.Regexp) []string {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	lit := func(r *syntax.Regexp) string {
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 {
			return string(r.Rune)
		}
		return ""
	}
	var out []string
	if s := lit(re); s != "" {
		return []string{s}
	}
	if re.Op == syntax.OpConcat {
		for _, s := range re.Sub {
			for s.Op == syntax.OpCapture {
				s = s.Sub[0]
			}
			if l := lit(s); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// has reports whether s contains every required literal.
func (f *regexFilter) has(s string) bool {
	for _, l := range f.literals {
		if !strings.Contains(s, l) {
			return false
		}
	}
	return true
}

// findRegex returns the matches of r in text, running the expression only
// where the filter says a match is possible.
func findRegex(r *compiledRule, text string, runs [][2]int, out [][2]int) [][2]int {
	if len(text) < r.filter.minLen || !r.filter.has(text) {
		return out
	}
	if !r.filter.windowed {
		for _, ix := range r.re.FindAllStringIndex(text, -1) {
			out = append(out, [2]int{ix[0], ix[1]})
		}
		return out
	}
	for _, w := range runs {
		seg := text[w[0]:w[1]]
		if len(seg) < r.filter.minLen || !r.filter.has(seg) {
			continue
		}
		for _, ix := range r.re.FindAllStringIndex(seg, -1) {
			out = append(out, [2]int{w[0] + ix[0], w[0] + ix[1]})
		}
	}
	return out
}

// nonSpaceRuns appends the maximal runs of bytes other than ASCII
// whitespace that are at least minLen long.
func nonSpaceRuns(text string, minLen int, out [][2]int) [][2]int {
	for i := 0; i < len(text); {
		if isASCIISpace(rune(text[i])) {
			i++
			continue
		}
		j := i + 1
		for j < len(text) && !isASCIISpace(rune(text[j])) {
			j++
		}
		if j-i >= minLen {
			out = append(out, [2]int{i, j})
		}
		i = j
	}
	return out
}
