package moderation

import "testing"

// TestRulesSpareRound5: false positives round 5 of issue 12 removed from
// the rules, found by running them over the corpus's clean lines: an
// insult the writer aims at themselves, a scam message the writer quotes
// and doubts, a threat quoted with German quotation marks closed by a
// typed '"'.
func TestRulesSpareRound5(t *testing.T) {
	p := DefaultPolicy()
	p.Model.Threshold = 0 // the rules alone
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		"what an idiot I am, wrong address again",
		"I'm such a moron, I ordered the wrong size",
		"ich bin so ein Idiot, falsche Adresse",
		"quel imbécile je suis, je me suis trompé d'adresse",
		"qué tonto soy, puse mal la dirección",
		"sou uma anta mesmo, esqueci o número do pedido",
		"my mum got an email 'your account will be suspended', it's fake right",
		"ein Kunde schrieb mir „ich weiß, wo du wohnst\" – was soll ich tun?",
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %v", text, v.Action, v.Categories, v.Spans)
		}
	}
}

// TestRulesStillCatchRound5: what the round-5 precision fixes must not
// let through: the same insults aimed at the reader, a first person that
// is not the insult's subject, the scam sent rather than quoted.
func TestRulesStillCatchRound5(t *testing.T) {
	p := DefaultPolicy()
	p.Model.Threshold = 0
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]string{
		"you are such a moron":                       ActionBlock,
		"I think you're an idiot":                    ActionBlock,
		"du bist so ein Idiot":                       ActionBlock,
		"eres tonto":                                 ActionBlock,
		"you idiot, I am done with you":              ActionBlock,
		"your account will be suspended, verify now": ActionBlock,
		"ich weiß, wo du wohnst":                     ActionBlock,
	} {
		if v := e.Check(text); v.Action != want {
			t.Errorf("%q: %s %v %v, want %s", text, v.Action, v.Categories, v.Spans, want)
		}
	}
}
