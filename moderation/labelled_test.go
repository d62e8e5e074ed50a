package moderation

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"
)

// labelled is one line of a labelled set (testdata/labelled.jsonl,
// testdata/heldout.jsonl).
type labelled struct {
	ID     string `json:"id"`
	Text   string `json:"text"`
	Label  string `json:"label"`
	Lang   string `json:"lang"`
	Expect string `json:"expect"`
}

func loadLabelled(t testing.TB, path string) []labelled {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open labelled set: %v", err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var l labelled
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s line %d: %v", path, n, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// harmful labels are those a filter must detect.
var harmful = map[string]bool{
	"profanity": true, "abuse": true, "threat": true, "evasion": true,
	"pii": true, "spam": true, "phishing": true,
}

// setScore is what a labelled set measures.
type setScore struct {
	lines              int
	harm, detected     int
	wantBlock, blocked int
	clean, cleanFP     int
	hard, hardFP       int
	exact              int
	perLabel           map[string][2]int // label → {correct action, total}
}

func (s setScore) recall() float64      { return ratio(s.detected, s.harm) }
func (s setScore) blockRecall() float64 { return ratio(s.blocked, s.wantBlock) }
func (s setScore) cleanRate() float64   { return ratio(s.cleanFP, s.clean) }
func (s setScore) hardRate() float64    { return ratio(s.hardFP, s.hard) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// scoreSet checks every line of the set at path with the default policy,
// logs each line whose action differs from the expected one, prints the
// figures and returns them.
func scoreSet(t *testing.T, name, path string) setScore {
	t.Helper()
	e, err := NewEngine(DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	set := loadLabelled(t, path)
	s := setScore{lines: len(set), perLabel: map[string][2]int{}}
	for _, l := range set {
		v := e.Check(l.Text)
		c := s.perLabel[l.Label]
		c[1]++
		if v.Action == l.Expect {
			c[0]++
			s.exact++
		} else {
			t.Logf("miss %s [%s] want %s got %s %v: %q", l.ID, l.Label, l.Expect, v.Action, v.Categories, l.Text)
		}
		s.perLabel[l.Label] = c
		switch {
		case harmful[l.Label]:
			s.harm++
			if v.Action != ActionAllow {
				s.detected++
			}
		case l.Label == "clean":
			s.clean++
			if v.Action != ActionAllow {
				s.cleanFP++
			}
		case l.Label == "hard_negative" || l.Label == "pii_lookalike":
			s.hard++
			if v.Action != ActionAllow {
				s.hardFP++
			}
		default:
			t.Fatalf("%s: unknown label %q", l.ID, l.Label)
		}
		if l.Expect == ActionBlock {
			s.wantBlock++
			if v.Action == ActionBlock {
				s.blocked++
			}
		}
	}
	report := fmt.Sprintf("%s: %d messages; detection recall %.3f (%d/%d); block recall %.3f (%d/%d); "+
		"false positives: clean %.3f (%d/%d), hard negatives %.3f (%d/%d); exact action %.3f",
		name, s.lines, s.recall(), s.detected, s.harm, s.blockRecall(), s.blocked, s.wantBlock,
		s.cleanRate(), s.cleanFP, s.clean, s.hardRate(), s.hardFP, s.hard, ratio(s.exact, s.lines))
	t.Log(report)
	fmt.Println(report)
	for _, label := range slices.Sorted(maps.Keys(s.perLabel)) {
		c := s.perLabel[label]
		fmt.Printf("  %-14s expected action %d/%d\n", label, c[0], c[1])
	}
	return s
}

// thresholds a set must meet.
type thresholds struct {
	recall, blockRecall, clean, hard float64
}

func (s setScore) assert(t *testing.T, th thresholds) {
	t.Helper()
	if r := s.recall(); r < th.recall {
		t.Errorf("detection recall %.3f is below %.2f", r, th.recall)
	}
	if r := s.blockRecall(); r < th.blockRecall {
		t.Errorf("block recall %.3f is below %.2f", r, th.blockRecall)
	}
	if r := s.cleanRate(); r > th.clean {
		t.Errorf("false positives on clean messages %.3f exceed %.3f", r, th.clean)
	}
	if r := s.hardRate(); r > th.hard {
		t.Errorf("false positives on hard negatives %.3f exceed %.3f", r, th.hard)
	}
}

// TestLabelledSetAccuracy reports detection recall, block recall and the
// false-positive rates on the labelled set, and fails below the issue's
// thresholds: recall >= 0.95, false positives <= 1% on clean messages and
// <= 2% on hard negatives (hard negatives and PII look-alikes).
func TestLabelledSetAccuracy(t *testing.T) {
	s := scoreSet(t, "labelled set", "testdata/labelled.jsonl")
	if s.lines < 400 {
		t.Fatalf("labelled set has %d lines; want at least 400", s.lines)
	}
	s.assert(t, thresholds{recall: 0.95, blockRecall: 0.90, clean: 0.01, hard: 0.02})
}

// TestHeldOutSetAccuracy scores testdata/heldout.jsonl, a set written by
// another author without looking at labelled.jsonl or tuning lists to it
// first, so its figures estimate accuracy on unseen text. Its thresholds
// are what the engine honestly reaches (see docs/moderation.md).
func TestHeldOutSetAccuracy(t *testing.T) {
	s := scoreSet(t, "held-out set", "testdata/heldout.jsonl")
	if s.lines < 250 {
		t.Fatalf("held-out set has %d lines; want at least 250", s.lines)
	}
	s.assert(t, thresholds{recall: 0.95, blockRecall: 0.90, clean: 0.01, hard: 0.02})
}
