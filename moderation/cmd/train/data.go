package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parleychat/parley/moderation"
)

// example is one training message.
type example struct {
	class  int
	group  int     // the corpus line or labelled line it came from
	weight float32 // a line's expansions share its weight: 1/sqrt(expansions) each
	feats  []uint32
	text   string
	label  string // the labelled file's label (for -check reports)
}

// reader collects examples.
type reader struct {
	fz      *moderation.Featurizer
	data    []example
	groups  int
	skipped map[string]int // labelled lines left out, by label
}

func (r *reader) add(class int, text, label string, weight float32) {
	r.data = append(r.data, example{class: class, group: r.groups, weight: weight, feats: r.fz.Features(text), text: text, label: label})
}

// corpus reads a corpus file, or every *.txt of a directory.
func (r *reader) corpus(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		files, err := filepath.Glob(filepath.Join(path, "*.txt"))
		if err != nil {
			return err
		}
		slices.Sort(files)
		for _, f := range files {
			if err := r.corpus(f); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	class := -1
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			name, _, _ := strings.Cut(strings.Trim(s, "[]"), " ")
			if class = slices.Index(classes, name); class < 0 {
				return fmt.Errorf("%s line %d: unknown class %q", path, line, name)
			}
			continue
		}
		if class < 0 {
			return fmt.Errorf("%s line %d: message before any [class lang] header", path, line)
		}
		texts, err := expand(s)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", path, line, err)
		}
		for _, t := range texts {
			r.add(class, t, classes[class], float32(1/math.Sqrt(float64(len(texts)))))
		}
		r.groups++
	}
	return sc.Err()
}

// expand turns "{a|b} c {d|e}" into every combination, at most 24.
func expand(s string) ([]string, error) {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}, nil
	}
	end := strings.IndexByte(s[open:], '}')
	if end < 0 {
		return nil, errors.New("unclosed {")
	}
	alts := strings.Split(s[open+1:open+end], "|")
	rests, err := expand(s[open+end+1:])
	if err != nil {
		return nil, err
	}
	var out []string
	for i, r := range rests {
		for j, a := range alts {
			// keep every alternative and every rest at least once, then cap
			if len(out) >= 24 && i > 0 && j > 0 {
				continue
			}
			out = append(out, s[:open]+a+r)
		}
	}
	return out, nil
}

// labelClass maps the labels of Parley's labelled sets (labelled.jsonl,
// heldout.jsonl), of the evaluation set's families and of moderators'
// decisions to model classes. PII and its look-alikes are clean for the
// model: personal data is the detectors' business, not intent's.
var labelClass = map[string]string{
	"clean": "clean", "hard_negative": "clean", "pii_lookalike": "clean", "pii": "clean",
	"profanity": moderation.CatProfanity, "mild_profanity": moderation.CatProfanity,
	"abuse": moderation.CatAbuse, "threat": moderation.CatThreat, "hate": moderation.CatHate,
	"harassment": moderation.CatHarassment, "sexual_harassment": moderation.CatHarassment,
	"spam": moderation.CatSpam, "phishing": moderation.CatPhishing, "scam": moderation.CatPhishing,
	"insult": moderation.CatInsult,
}

// lineClass is the model class of a labelled line, "" to leave it out.
// Insults expected to be blocked are abuse; evasions count as the family
// their note names first ("threat; spaced letters").
func lineClass(label, expect, note string) string {
	if label == "evasion" {
		fam, _, ok := strings.Cut(note, ";")
		if !ok {
			return ""
		}
		label = strings.TrimSpace(fam)
	}
	if label == "insult" && expect == moderation.ActionBlock {
		return moderation.CatAbuse
	}
	return labelClass[label]
}

// labelled reads JSON lines {"text", "label", "expect", "note"}; every line
// is its own group. Lines whose label has no model class (link, flood,
// custom... in moderators' labels; evasions without a note) are left out
// of training and counted; when checking they count under their label.
func (r *reader) labelled(path string, train bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var l struct{ Text, Label, Expect, Note string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("%s line %d: %w", path, line, err)
		}
		name := lineClass(l.Label, l.Expect, l.Note)
		if name == "" && train {
			r.skipped[l.Label]++
			continue
		}
		r.add(slices.Index(classes, name), l.Text, l.Label, 1)
		r.groups++
	}
	return sc.Err()
}

func printCounts(data []example) {
	count := make([]int, len(classes))
	for _, ex := range data {
		count[ex.class]++
	}
	for c, n := range count {
		fmt.Printf("  %-10s %6d\n", classes[c], n)
	}
}
