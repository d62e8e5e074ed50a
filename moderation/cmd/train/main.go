// Command train fits Parley's in-process moderation model: a multinomial
// logistic regression over the hashed features the engine computes
// (moderation.Featurizer: words, word pairs, character 4-grams, lexicon
// classes and class pairs of the normalised text).
//
//	go run ./moderation/cmd/train                 # writes moderation/model/parley-lr.bin
//	go run ./moderation/cmd/train -cv 5           # cross-validates a grid, writes nothing
//
// It reads the corpus (moderation/model/corpus/*.txt, written for Parley;
// format below) and labelled JSON lines (Parley's labelled sets, the
// evaluation set's development half, moderators' decisions exported by
// the review API), trains with a fixed seed (the same inputs give the
// same file), and writes the quantised weights. -check scores the model
// alone on labelled files it was not trained on. Run it from the
// repository root after changing the corpus, then commit the .bin file.
//
// Corpus format: "[class lang]" headers, one message per line; "{a|b|c}"
// in a line expands to one message per alternative (at most 24 per line;
// the expansions of a line stay in one cross-validation fold).
package main

import (
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/parleychat/parley/moderation"
)

// classes of the model; class 0 must be clean.
var classes = []string{"clean", moderation.CatProfanity, moderation.CatInsult, moderation.CatAbuse, moderation.CatThreat,
	moderation.CatHate, moderation.CatHarassment, moderation.CatSpam, moderation.CatPhishing}

// options are the trainer's settings.
type options struct {
	corpus, labelled, check []string
	features                []string
	out, version            string
	bits, epochs            int
	l2, lr                  float64
	cv                      int
	grid                    string
}

func main() {
	var o options
	corpus := flag.String("corpus", "moderation/model/corpus", "corpus files or directories of *.txt, comma separated")
	labelled := flag.String("labelled", "moderation/testdata/labelled.jsonl,moderation/testdata/heldout.jsonl,moderation/testdata/eval/dev.jsonl",
		"labelled JSON lines to train on, comma separated")
	check := flag.String("check", "moderation/testdata/valid/valid.jsonl", "labelled JSON lines to score the model alone on (not trained on), comma separated")
	features := flag.String("features", "word,pair,gram4,class,classpair", "feature families")
	flag.StringVar(&o.out, "out", "moderation/model/parley-lr.bin", "model file to write")
	flag.StringVar(&o.version, "version", "2", "model version recorded in the file")
	flag.IntVar(&o.bits, "bits", 18, "log2 of the feature buckets")
	flag.IntVar(&o.epochs, "epochs", 10, "passes over the data")
	flag.Float64Var(&o.l2, "l2", 1e-4, "L2 penalty")
	flag.Float64Var(&o.lr, "lr", 0.1, "AdaGrad learning rate")
	flag.IntVar(&o.cv, "cv", 0, "cross-validate with this many folds over -grid and write nothing")
	flag.StringVar(&o.grid, "grid", "l2=3e-5,1e-4,3e-4;epochs=6,10,16", "cross-validation grid: name=values;...")
	flag.Parse()
	o.corpus, o.labelled, o.check, o.features = split(*corpus), split(*labelled), split(*check), split(*features)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(o options) error {
	fz, err := moderation.NewFeaturizer(o.features)
	if err != nil {
		return err
	}
	r := reader{fz: fz, skipped: map[string]int{}}
	for _, path := range o.corpus {
		if err := r.corpus(path); err != nil {
			return err
		}
	}
	for _, path := range o.labelled {
		if err := r.labelled(path, true); err != nil {
			return err
		}
	}
	for _, l := range slices.Sorted(maps.Keys(r.skipped)) {
		fmt.Printf("left out %d labelled lines of label %q (no model class)\n", r.skipped[l], l)
	}
	var checks [][]example
	for _, path := range o.check {
		r := reader{fz: fz}
		if err := r.labelled(path, false); err != nil {
			return err
		}
		checks = append(checks, r.data)
	}
	data, near := keepOff(r.data, checks)
	fmt.Printf("training data: %d messages from %d lines (%d left out as near copies of -check lines)\n", len(data), r.groups, near)
	printCounts(data)
	h := hyper{bits: o.bits, epochs: o.epochs, l2: o.l2, lr: o.lr}
	if o.cv > 1 {
		return crossValidate(data, o.cv, h, o.grid)
	}
	// a model fitted to all its data is overconfident on new text: a
	// temperature chosen on out-of-fold scores softens it
	oof := outOfFold(data, 5, h)
	temp := temperature(oof)
	thr := thresholdAt(oof, temp, 0.01)
	fmt.Printf("5-fold: temperature %.2f; harm threshold at 1%% clean false positives %.2f, recall there %.3f\n", temp, thr, recallAt(oof, temp, thr))
	m := fit(data, h)
	fmt.Printf("all data: training accuracy %.3f\n", m.accuracy(data))
	for i, c := range checks {
		fmt.Printf("check %s (model alone, threshold %.2f):\n", o.check[i], thr)
		report(c, m, temp, thr)
	}
	file, err := m.encode(o, temp)
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, file, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d bytes); suggested model.threshold %s\n", o.out, len(file), strconv.FormatFloat(math.Round(thr*100)/100, 'f', 2, 64))
	return nil
}

// encode quantises the weights to int8 with one scale and writes the
// model file; weights and biases are stored divided by the temperature.
func (m *linear) encode(o options, temp float64) ([]byte, error) {
	maxAbs := float32(0)
	for _, v := range m.w {
		maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
	}
	scale := maxAbs / 127
	q := make([]int8, len(m.w))
	for i, v := range m.w {
		q[i] = int8(math.Round(float64(v / scale)))
	}
	bias := make([]float32, len(m.b))
	for c := range m.b {
		bias[c] = m.b[c] / float32(temp)
	}
	meta := moderation.ModelMeta{Name: "parley-lr", Version: o.version, Classes: classes, Bits: o.bits, Scale: scale / float32(temp),
		Features: o.features,
		Trained: fmt.Sprintf("%s + %s; %d epochs, l2 %g, temperature %.2f", strings.Join(o.corpus, ","), strings.Join(o.labelled, ","),
			o.epochs, o.l2, temp)}
	return moderation.EncodeModel(meta, bias, q)
}
