package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// crossValidate scores every setting of the grid by n-fold
// cross-validation (folds by corpus line, so a line's expansions never
// straddle training and test) and prints, per setting: log-loss and
// accuracy of out-of-fold scores at the fitted temperature, and the recall
// of harmful messages at the threshold that lets 1% of clean ones through.
func crossValidate(data []example, n int, base hyper, grid string) error {
	settings := []hyper{base}
	for _, axis := range strings.Split(grid, ";") {
		name, vals, ok := strings.Cut(strings.TrimSpace(axis), "=")
		if !ok {
			continue
		}
		var next []hyper
		for _, h := range settings {
			for _, v := range strings.Split(vals, ",") {
				x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return fmt.Errorf("grid %s: %w", axis, err)
				}
				switch name {
				case "l2":
					h.l2 = x
				case "epochs":
					h.epochs = int(x)
				case "lr":
					h.lr = x
				case "bits":
					h.bits = int(x)
				default:
					return fmt.Errorf("grid: unknown setting %q", name)
				}
				next = append(next, h)
			}
		}
		settings = next
	}
	fmt.Printf("%d-fold cross-validation, %d messages\n", n, len(data))
	fmt.Println("| bits | epochs | l2 | lr | temperature | log-loss | accuracy | threshold @1% clean FP | harmful recall there |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, h := range settings {
		oof := outOfFold(data, n, h)
		temp := temperature(oof)
		thr := thresholdAt(oof, temp, 0.01)
		ok := 0
		for _, x := range oof {
			p := x.probs(temp)
			if slices.Index(p, slices.Max(p)) == x.class {
				ok++
			}
		}
		fmt.Printf("| %d | %d | %g | %g | %.2f | %.3f | %.3f | %.2f | %.3f |\n", h.bits, h.epochs, h.l2, h.lr, temp,
			logLoss(oof, temp), float64(ok)/float64(len(oof)), thr, recallAt(oof, temp, thr))
	}
	return nil
}

// report prints, per label of a checked file, the share of lines the
// model alone calls harmful at thr.
func report(data []example, m *linear, temp, thr float64) {
	type row struct{ n, harmful int }
	rows := map[string]*row{}
	for _, ex := range data {
		r := rows[ex.label]
		if r == nil {
			r = &row{}
			rows[ex.label] = r
		}
		r.n++
		if harm(m.logits(ex).probs(temp)) >= thr {
			r.harmful++
		}
	}
	for _, l := range slices.Sorted(maps.Keys(rows)) {
		r := rows[l]
		fmt.Printf("  %-18s harmful %.3f (%d/%d)\n", l, float64(r.harmful)/float64(r.n), r.harmful, r.n)
	}
	// how recall and false positives trade at other thresholds
	fmt.Println("  threshold: harmful-family recall / clean FP / hard-negative FP")
	harms := make([]float64, len(data))
	for i, ex := range data {
		harms[i] = harm(m.logits(ex).probs(temp))
	}
	for _, t := range []float64{0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95} {
		var n, hit, nc, fc, nh, fh int
		for i, ex := range data {
			on := harms[i] >= t
			switch ex.label {
			case "clean":
				nc++
				if on {
					fc++
				}
			case "hard_negative":
				nh++
				if on {
					fh++
				}
			case "threat", "hate", "sexual_harassment", "insult", "spam", "scam", "evasion":
				n++
				if on {
					hit++
				}
			}
		}
		fmt.Printf("  %.2f: %d/%d  %d/%d  %d/%d\n", t, hit, n, fc, nc, fh, nh)
	}
}
