package moderation

import (
	"strings"
	"testing"
)

// TestShippedModelLoadsAndJudges checks the embedded model file and that
// its score is one more signal: it adds a category the rules missed, with
// its name and version as the span's source, and a policy can raise its
// threshold or turn it off.
func TestShippedModelLoadsAndJudges(t *testing.T) {
	m, err := DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta.Classes[0] != "clean" || m.Meta.Name == "" || m.Meta.Version == "" {
		t.Fatalf("meta %+v", m.Meta)
	}
	scores, err := m.Score("I'm going to make sure you never see your family again")
	if err != nil {
		t.Fatal(err)
	}
	if scores[CatThreat] < 0.5 {
		t.Fatalf("threat scores %v", scores)
	}
	if scores, err := m.Score("Hi, where is my order? It was due on Monday."); err != nil || scores["clean"] < 0.5 {
		t.Fatalf("clean scores %v, %v", scores, err)
	}
	// a threat no rule knows, judged by the model alone
	text := "I'll make sure you never see your family again"
	v := defaultEngine(t).Check(text)
	found := false
	for _, s := range v.Spans {
		if strings.HasPrefix(s.Source, "model:parley-lr@") {
			found = true
		}
	}
	if !found || v.Action != ActionBlock {
		t.Fatalf("model verdict %+v", v)
	}
	off := DefaultPolicy()
	off.Model.Threshold = 0
	e, err := NewEngine(off)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range e.Check(text).Spans {
		if strings.HasPrefix(s.Source, "model:") {
			t.Fatalf("model off, still a model span %+v", s)
		}
	}
}

func TestModelFileErrors(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("nope"), []byte("PLM1\xff\xff\xff\x7f{}")} {
		if _, err := ParseModel(b); err == nil {
			t.Errorf("%q parsed", b)
		}
	}
	meta := ModelMeta{Name: "x", Version: "1", Classes: []string{"clean", "spam"}, Bits: 8, Scale: 1}
	file, err := EncodeModel(meta, []float32{0, 0}, make([]int8, 2<<8))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseModel(file); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParseModel(file[:len(file)-1]); err == nil {
		t.Fatal("short weights parsed")
	}
}
