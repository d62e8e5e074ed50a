package moderation

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
)

// The in-process model: a multinomial logistic regression over hashed
// features of the normalised text (words, word pairs, character 4-grams
// inside words, the intent lexicon's classes and pairs of them), trained
// by `go run ./moderation/cmd/train` on moderation/model/corpus/ and
// labelled sets. It runs in every check, beside the rules: its score is
// one more signal, used when the harmful classes together reach the
// policy's model.threshold.

//go:embed model/parley-lr.bin
var modelFile []byte

// ModelMeta describes a trained model; it heads the model file.
type ModelMeta struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Classes []string `json:"classes"` // class 0 is "clean"
	Bits    int      `json:"bits"`    // 2^bits feature buckets
	Scale   float32  `json:"scale"`   // weight = int8 × scale
	Trained string   `json:"trained"` // what it was trained on
	// Features names the feature families (word, pair, gram4, class,
	// classpair); none means word, pair and gram4 (version 1 files).
	Features []string `json:"features,omitempty"`
}

// Model is a loaded model. It is immutable and safe for concurrent use.
type Model struct {
	Meta    ModelMeta
	weights []int8 // [bucket][class]
	bias    []float32
	mask    uint32
	feats   featureSet

	scorer     *Featurizer // for Score, built on first use
	scorerOnce sync.Once
	scorerErr  error
}

// modelMagic starts a model file: magic, header length (uint32 LE),
// header JSON, biases (float32 LE per class), weights (int8).
const modelMagic = "PLM1"

// Limits of a model file.
const (
	maxModelBits    = 22
	maxModelClasses = 32
)

// ParseModel reads a model file.
func ParseModel(b []byte) (*Model, error) {
	if len(b) < 8 || string(b[:4]) != modelMagic {
		return nil, errors.New("model: not a Parley model file")
	}
	n := int(binary.LittleEndian.Uint32(b[4:8]))
	if n > len(b)-8 {
		return nil, errors.New("model: header longer than the file")
	}
	m := &Model{}
	var err error
	if err = json.Unmarshal(b[8:8+n], &m.Meta); err != nil {
		return nil, fmt.Errorf("model: header: %w", err)
	}
	k := len(m.Meta.Classes)
	if k < 2 || k > maxModelClasses || m.Meta.Classes[0] != "clean" || m.Meta.Bits < 8 || m.Meta.Bits > maxModelBits {
		return nil, fmt.Errorf("model: header %+v is not usable", m.Meta)
	}
	rest := b[8+n:]
	if len(rest) != 4*k+(k<<m.Meta.Bits) {
		return nil, fmt.Errorf("model: %d bytes of weights, want %d", len(rest), 4*k+(k<<m.Meta.Bits))
	}
	m.bias = make([]float32, k)
	if err := binary.Read(bytes.NewReader(rest[:4*k]), binary.LittleEndian, m.bias); err != nil {
		return nil, fmt.Errorf("model: biases: %w", err)
	}
	w := rest[4*k:]
	m.weights = make([]int8, len(w))
	for i, c := range w {
		m.weights[i] = int8(c)
	}
	m.mask = 1<<m.Meta.Bits - 1
	if m.feats, err = parseFeatures(m.Meta.Features); err != nil {
		return nil, err
	}
	return m, nil
}

// EncodeModel writes a model file (used by the trainer).
func EncodeModel(meta ModelMeta, bias []float32, weights []int8) ([]byte, error) {
	h, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(modelMagic)
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	b.Write(h)
	_ = binary.Write(&b, binary.LittleEndian, bias)
	for _, w := range weights {
		b.WriteByte(byte(w))
	}
	return b.Bytes(), nil
}

var (
	defaultModelOnce sync.Once
	defaultModel     *Model
	defaultModelErr  error
)

// DefaultModel returns the embedded model.
func DefaultModel() (*Model, error) {
	defaultModelOnce.Do(func() { defaultModel, defaultModelErr = ParseModel(modelFile) })
	return defaultModel, defaultModelErr
}

// Label returns the model's name and version ("parley-lr@3").
func (m *Model) Label() string { return m.Meta.Name + "@" + m.Meta.Version }

// Feature hashing. The trainer and the engine must agree on these, so
// both compute features through featuresOf (the trainer by Featurizer).
const (
	fnvOffset     = 14695981039346656037
	fnvPrime      = 1099511628211
	seedWord      = 0x9E3779B97F4A7C15
	seedPair      = 0xC2B2AE3D27D4EB4F
	seedGram      = 0x165667B19E3779F9
	seedClass     = 0x27D4EB2F165667C5
	seedClassPair = 0x85EBCA77C2B2AE63
)

// featureSet says which families of features a model uses; its file
// names them, so a model trained on some families is scored on the same.
type featureSet uint8

const (
	featWord      featureSet = 1 << iota // every word
	featPair                             // two neighbouring words of a sentence
	featGram4                            // character 4-grams of a word padded with spaces
	featClass                            // every lexicon class a word or phrase belongs to, and the text's pseudo-classes (link, emoji, amount)
	featClassPair                        // two lexicon classes in order, at most classPairGap words apart in a sentence
)

// classPairGap is how many words may separate the two classes of a
// class-pair feature ("I will [really] hurt you": fut, harm, you).
const classPairGap = 3

var featureNames = []struct {
	name string
	set  featureSet
}{{"word", featWord}, {"pair", featPair}, {"gram4", featGram4}, {"class", featClass}, {"classpair", featClassPair}}

// legacyFeatures are the families of a model file that names none.
const legacyFeatures = featWord | featPair | featGram4

// parseFeatures reads feature family names.
func parseFeatures(names []string) (featureSet, error) {
	if len(names) == 0 {
		return legacyFeatures, nil
	}
	var set featureSet
	for _, n := range names {
		i := slices.IndexFunc(featureNames, func(f struct {
			name string
			set  featureSet
		}) bool {
			return f.name == n
		})
		if i < 0 {
			return 0, fmt.Errorf("model: unknown feature family %q", n)
		}
		set |= featureNames[i].set
	}
	return set, nil
}

func mix(h uint64) uint32 {
	h ^= h >> 33
	h *= 0xFF51AFD7ED558CCD
	h ^= h >> 33
	return uint32(h)
}

// featuresOf appends the feature hashes of the checked text in sc (its
// match stream, and for the class families its lexicon hits and
// pseudo-classes): every word, every pair of neighbouring words in a
// sentence, every character 4-gram of a word padded with spaces, every
// lexicon class, and every ordered pair of classes close together.
func featuresOf(sc *scratch, set featureSet, out []uint32) []uint32 {
	if set&(featWord|featPair|featGram4) != 0 {
		out = wordFeatures(sc, set, out)
	}
	if set&featClass != 0 {
		for _, h := range sc.hits {
			out = append(out, mix(uint64(h.class)^seedClass))
		}
		for i := range sc.extra {
			for b := sc.extra[i]; b != 0; b &= b - 1 {
				out = append(out, mix(uint64(i*64+bits.TrailingZeros64(b))^seedClass))
			}
		}
	}
	if set&featClassPair != 0 {
		hits := sc.hits // sorted by first token (intentSpans)
		for i, a := range hits {
			for _, b := range hits[i+1:] {
				if b.s <= a.e {
					continue
				}
				if b.s-a.e-1 > classPairGap || sc.sent[b.s] != sc.sent[a.e] {
					break
				}
				out = append(out, mix(uint64(a.class)<<16^uint64(b.class)^seedClassPair))
			}
		}
	}
	return out
}

// wordFeatures appends the word, word-pair and character 4-gram features.
func wordFeatures(sc *scratch, set featureSet, out []uint32) []uint32 {
	prev := uint64(0)
	for t := range sc.tokens {
		tk := &sc.tokens[t]
		if !tk.word {
			prev = 0
			continue
		}
		if tk.brkBefore {
			prev = 0
		}
		h := tk.hash
		if set&featGram4 != 0 {
			var g [4]rune
			g[3] = ' '
			grams := 0
			for i := tk.first; i <= tk.last; i++ {
				r := sc.syms[i].c[0]
				if sc.syms[i].kind == sMask {
					r = '*'
				}
				g[0], g[1], g[2], g[3] = g[1], g[2], g[3], r
				grams++
				if grams >= 3 {
					out = append(out, gramHash(g))
				}
			}
			if grams >= 2 {
				g[0], g[1], g[2], g[3] = g[1], g[2], g[3], ' '
				out = append(out, gramHash(g))
			}
		}
		if set&featWord != 0 {
			out = append(out, mix(h^seedWord))
		}
		if prev != 0 && set&featPair != 0 {
			out = append(out, mix(prev*31^h^seedPair))
		}
		prev = h
	}
	return out
}

func gramHash(g [4]rune) uint32 {
	h := uint64(g[0]&0xFFFF)<<48 | uint64(g[1]&0xFFFF)<<32 | uint64(g[2]&0xFFFF)<<16 | uint64(g[3]&0xFFFF)
	return mix(h ^ seedGram)
}

// Featurizer computes a model's features of texts exactly as the engine
// does when it checks them (the trainer uses it): the default policy's
// lists and lexicons of every language, the model itself off.
type Featurizer struct {
	e   *Engine
	set featureSet
}

// NewFeaturizer returns a Featurizer for the named feature families
// (none: those of a version 1 model).
func NewFeaturizer(families []string) (*Featurizer, error) {
	set, err := parseFeatures(families)
	if err != nil {
		return nil, err
	}
	p := DefaultPolicy()
	p.Model.Threshold = 0
	e, err := NewEngine(p)
	if err != nil {
		return nil, err
	}
	return &Featurizer{e: e, set: set}, nil
}

// Features returns the feature hashes of text.
func (f *Featurizer) Features(text string) []uint32 {
	sc := scratchPool.Get().(*scratch)
	defer putScratch(sc)
	f.e.spansWith(sc, text)
	return featuresOf(sc, f.set, nil)
}

// scoreFeatures returns the class probabilities for feature hashes.
func (m *Model) scoreFeatures(feats []uint32, probs []float64) []float64 {
	k := len(m.Meta.Classes)
	var acc [maxModelClasses]int32
	if k == 9 {
		// the shipped model: nine classes, one 9-byte row per bucket
		for _, f := range feats {
			i := int(f&m.mask) * 9
			w := m.weights[i : i+9 : i+9]
			acc[0] += int32(w[0])
			acc[1] += int32(w[1])
			acc[2] += int32(w[2])
			acc[3] += int32(w[3])
			acc[4] += int32(w[4])
			acc[5] += int32(w[5])
			acc[6] += int32(w[6])
			acc[7] += int32(w[7])
			acc[8] += int32(w[8])
		}
	} else {
		for _, f := range feats {
			w := m.weights[int(f&m.mask)*k:][:k]
			for c, v := range w {
				acc[c] += int32(v)
			}
		}
	}
	probs = probs[:0]
	top := math.Inf(-1)
	for c := 0; c < k; c++ {
		z := float64(acc[c])*float64(m.Meta.Scale) + float64(m.bias[c])
		probs = append(probs, z)
		top = max(top, z)
	}
	sum := 0.0
	for c := range probs {
		probs[c] = math.Exp(probs[c] - top)
		sum += probs[c]
	}
	for c := range probs {
		probs[c] /= sum
	}
	return probs
}

// Score returns the probability of each class for text.
func (m *Model) Score(text string) (map[string]float64, error) {
	m.scorerOnce.Do(func() { m.scorer, m.scorerErr = NewFeaturizer(m.Meta.Features) })
	if m.scorerErr != nil {
		return nil, m.scorerErr
	}
	p := m.scoreFeatures(m.scorer.Features(text), nil)
	out := make(map[string]float64, len(p))
	for c, v := range p {
		out[m.Meta.Classes[c]] = v
	}
	return out, nil
}

// judge judges sc's text with the model. The text is harmful when the
// classes other than clean and profanity together reach threshold; its
// category is then the most likely of them. Profanity is a matter of
// words, which the lists know; the model judges intent.
func (m *Model) judge(sc *scratch, threshold float64) (modelHit, bool) {
	sc.feats = featuresOf(sc, m.feats, sc.feats[:0])
	if len(sc.feats) == 0 {
		return modelHit{}, false
	}
	sc.probs = m.scoreFeatures(sc.feats, sc.probs[:0])
	best, harm := -1, 0.0
	for c, p := range sc.probs {
		if c == 0 || m.Meta.Classes[c] == CatProfanity {
			continue
		}
		harm += p
		if best < 0 || p > sc.probs[best] {
			best = c
		}
	}
	if best < 0 || harm < threshold {
		return modelHit{}, false
	}
	return modelHit{category: m.Meta.Classes[best], score: harm}, true
}

// modelHit is the model's judgement of a text: its top harmful class and
// the probability that the text is harmful.
type modelHit struct {
	category string
	score    float64
}
