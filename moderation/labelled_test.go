package moderation

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// labelled is one line of testdata/labelled.jsonl.
type labelled struct {
	ID     string `json:"id"`
	Text   string `json:"text"`
	Label  string `json:"label"`
	Lang   string `json:"lang"`
	Expect string `json:"expect"`
}

func loadLabelled(t testing.TB) []labelled {
	t.Helper()
	f, err := os.Open("testdata/labelled.jsonl")
	if err != nil {
		t.Fatalf("open labelled set: %v", err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var l labelled
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("labelled.jsonl line %d: %v", n, err)
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

// TestLabelledSetAccuracy reports detection recall, block recall and the
// false-positive rates on the labelled set, and fails below the issue's
// thresholds: recall >= 0.95, false positives <= 1% on clean messages and
// <= 2% on hard negatives (hard negatives and PII look-alikes).
func TestLabelledSetAccuracy(t *testing.T) {
	e, err := NewEngine(DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	set := loadLabelled(t)
	if len(set) < 400 {
		t.Fatalf("labelled set has %d lines; want at least 400", len(set))
	}
	var (
		harm, detected     int
		wantBlock, blocked int
		clean, cleanFP     int
		hard, hardFP       int
		exact              int
	)
	perLabel := map[string][2]int{} // label → {correct action, total}
	for _, l := range set {
		v := e.Check(l.Text)
		c := perLabel[l.Label]
		c[1]++
		if v.Action == l.Expect {
			c[0]++
			exact++
		} else {
			t.Logf("miss %s [%s] want %s got %s %v: %q", l.ID, l.Label, l.Expect, v.Action, v.Categories, l.Text)
		}
		perLabel[l.Label] = c
		switch {
		case harmful[l.Label]:
			harm++
			if v.Action != ActionAllow {
				detected++
			}
		case l.Label == "clean":
			clean++
			if v.Action != ActionAllow {
				cleanFP++
			}
		case l.Label == "hard_negative" || l.Label == "pii_lookalike":
			hard++
			if v.Action != ActionAllow {
				hardFP++
			}
		default:
			t.Fatalf("%s: unknown label %q", l.ID, l.Label)
		}
		if l.Expect == ActionBlock {
			wantBlock++
			if v.Action == ActionBlock {
				blocked++
			}
		}
	}
	recall := float64(detected) / float64(harm)
	blockRecall := float64(blocked) / float64(wantBlock)
	cleanRate := float64(cleanFP) / float64(clean)
	hardRate := float64(hardFP) / float64(hard)
	report := fmt.Sprintf("labelled set: %d messages; detection recall %.3f (%d/%d); block recall %.3f (%d/%d); "+
		"false positives: clean %.3f (%d/%d), hard negatives %.3f (%d/%d); exact action %.3f",
		len(set), recall, detected, harm, blockRecall, blocked, wantBlock,
		cleanRate, cleanFP, clean, hardRate, hardFP, hard, float64(exact)/float64(len(set)))
	t.Log(report)
	fmt.Println(report)
	for label, c := range perLabel {
		fmt.Printf("  %-14s expected action %d/%d\n", label, c[0], c[1])
	}
	if recall < 0.95 {
		t.Errorf("detection recall %.3f is below 0.95", recall)
	}
	if blockRecall < 0.90 {
		t.Errorf("block recall %.3f is below 0.90", blockRecall)
	}
	if cleanRate > 0.01 {
		t.Errorf("false positives on clean messages %.3f exceed 1%%", cleanRate)
	}
	if hardRate > 0.02 {
		t.Errorf("false positives on hard negatives %.3f exceed 2%%", hardRate)
	}
}
