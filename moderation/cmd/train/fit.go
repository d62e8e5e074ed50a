package main

import (
	"math"
	"math/rand/v2"
	"slices"
)

// hyper are the training settings cross-validation chooses among.
type hyper struct {
	bits, epochs int
	l2, lr       float64
}

// linear is a trained multinomial logistic regression.
type linear struct {
	w, b []float32
	mask uint32
}

// fit trains by stochastic gradient descent with AdaGrad steps and an L2
// penalty, with a fixed seed. Classes are weighted so that each counts
// about as much as the clean messages do.
func fit(data []example, h hyper) *linear {
	k := len(classes)
	m := &linear{w: make([]float32, k<<h.bits), b: make([]float32, k), mask: uint32(1)<<h.bits - 1}
	g2 := make([]float32, len(m.w))
	bg := make([]float32, k)
	count := make([]float64, k)
	for _, ex := range data {
		count[ex.class] += float64(ex.weight)
	}
	weight := make([]float32, k)
	for c := range k {
		if count[c] > 0 {
			weight[c] = float32(math.Sqrt(count[0] / count[c]))
		}
	}
	lr, l2 := float32(h.lr), float32(h.l2)
	order := make([]int, len(data))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(1, 2))
	p := make([]float32, k)
	for range h.epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			ex := data[i]
			m.predict(ex.feats, 1, p)
			for c := range k {
				y := float32(0)
				if c == ex.class {
					y = 1
				}
				grad := (p[c] - y) * weight[ex.class] * ex.weight
				bg[c] += grad * grad
				m.b[c] -= lr * grad / float32(math.Sqrt(float64(bg[c])+1e-8))
				for _, f := range ex.feats {
					j := int(f&m.mask)*k + c
					gj := grad + l2*m.w[j]
					g2[j] += gj * gj
					m.w[j] -= lr * gj / float32(math.Sqrt(float64(g2[j])+1e-8))
				}
			}
		}
	}
	return m
}

// predict writes the class probabilities of feats, scores divided by temp.
func (m *linear) predict(feats []uint32, temp float64, p []float32) {
	k := len(p)
	top := float32(math.Inf(-1))
	for c := range k {
		z := m.b[c]
		for _, f := range feats {
			z += m.w[int(f&m.mask)*k+c]
		}
		p[c] = z / float32(temp)
		top = max(top, p[c])
	}
	sum := float32(0)
	for c := range k {
		p[c] = float32(math.Exp(float64(p[c] - top)))
		sum += p[c]
	}
	for c := range k {
		p[c] /= sum
	}
}

func (m *linear) accuracy(data []example) float64 {
	if len(data) == 0 {
		return 0
	}
	p := make([]float32, len(classes))
	ok := 0
	for _, ex := range data {
		m.predict(ex.feats, 1, p)
		if slices.Index(p, slices.Max(p)) == ex.class {
			ok++
		}
	}
	return float64(ok) / float64(len(data))
}

// scored is an example's raw class scores from a model that did not see it.
type scored struct {
	class int
	label string
	z     []float32 // logits
}

// probs returns the class probabilities at temperature temp.
func (s scored) probs(temp float64) []float64 {
	top := math.Inf(-1)
	p := make([]float64, len(s.z))
	for c, z := range s.z {
		p[c] = float64(z) / temp
		top = max(top, p[c])
	}
	sum := 0.0
	for c := range p {
		p[c] = math.Exp(p[c] - top)
		sum += p[c]
	}
	for c := range p {
		p[c] /= sum
	}
	return p
}

// harm is the probability mass of the classes the engine acts on (all
// but clean and profanity), as moderation's judge computes it.
func harm(p []float64) float64 {
	h := 0.0
	for c, v := range p {
		if c != 0 && classes[c] != "profanity" {
			h += v
		}
	}
	return h
}

func (m *linear) logits(ex example) scored {
	k := len(classes)
	z := make([]float32, k)
	for c := range k {
		z[c] = m.b[c]
		for _, f := range ex.feats {
			z[c] += m.w[int(f&m.mask)*k+c]
		}
	}
	return scored{class: ex.class, label: ex.label, z: z}
}

// folds assigns groups (a corpus line and its expansions) to n folds.
func foldOf(group, n int) int {
	h := uint64(group)*0x9E3779B97F4A7C15 + 7
	h ^= h >> 29
	return int(h % uint64(n))
}

// outOfFold trains n models, each without one fold, and scores every
// example with the model that did not see it.
func outOfFold(data []example, n int, h hyper) []scored {
	var out []scored
	for f := range n {
		var train, test []example
		for _, ex := range data {
			if foldOf(ex.group, n) == f {
				test = append(test, ex)
			} else {
				train = append(train, ex)
			}
		}
		m := fit(train, h)
		for _, ex := range test {
			out = append(out, m.logits(ex))
		}
	}
	return out
}

// temperature picks the divisor of the scores that minimises the
// log-loss of out-of-fold scores.
func temperature(s []scored) float64 {
	best, bestLoss := 1.0, math.Inf(1)
	for t := 0.5; t <= 8; t += 0.25 {
		if l := logLoss(s, t); l < bestLoss {
			best, bestLoss = t, l
		}
	}
	return best
}

func logLoss(s []scored, temp float64) float64 {
	loss := 0.0
	for _, x := range s {
		loss -= math.Log(max(x.probs(temp)[x.class], 1e-12))
	}
	return loss / float64(max(len(s), 1))
}

// thresholdAt is the least harm threshold at which at most rate of the
// clean examples reach it.
func thresholdAt(s []scored, temp, rate float64) float64 {
	var clean []float64
	for _, x := range s {
		if x.class == 0 {
			clean = append(clean, harm(x.probs(temp)))
		}
	}
	if len(clean) == 0 {
		return 0.5
	}
	slices.Sort(clean)
	i := int(math.Floor(float64(len(clean)) * (1 - rate)))
	i = min(i, len(clean)-1)
	return math.Max(0.5, clean[i]+1e-6)
}

// recallAt is the share of harmful examples (not clean, not profanity)
// whose harm reaches thr.
func recallAt(s []scored, temp, thr float64) float64 {
	n, hit := 0, 0
	for _, x := range s {
		if x.class == 0 || classes[x.class] == "profanity" {
			continue
		}
		n++
		if harm(x.probs(temp)) >= thr {
			hit++
		}
	}
	return float64(hit) / float64(max(n, 1))
}
