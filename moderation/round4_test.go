package moderation

import "testing"

// TestRulesSpareRound4: false positives round 4 of issue 12 removed from
// the rules: strong words about a company, identity and disability in
// ordinary questions, the business's phone line, a compliment on a
// product, injuries as the customer's own news, words of one language
// read in another ("con", "du", "schon").
func TestRulesSpareRound4(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{
		"this delivery firm is a total disgrace, second lost parcel",         // a company, not the reader
		"is there a rule on staff wearing a hijab? my sister wants to apply", // identity without hate
		"can I have your number? the returns line, I'd rather phone",         // the business's number
		"love the jacket, the colour is gorgeous",                            // a product
		"hablé con el agente ayer y no me ayudó",                             // Spanish "con" is no French "con"
		"my dad is in a wheelchair, is the collection point step-free?",      // own news, no threat
		"the mirror arrived in one piece, great packing",                     //
		"I have a broken arm so I can't sign for it",                         //
		"ihr seid schon wieder zu spät",                                      // "schon" (already) is no "schön"
		"est-ce que la saucisse contient du porc ?",                          // French "du" before "porc"
		"old people can't read your tiny font, please make it bigger",        // a request, not a generalisation
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %v", text, v.Action, v.Categories, v.Spans)
		}
	}
}

// TestRulesSpareThirdPartyComplaint: a predicate adjective about a third
// party is a complaint, and the rules leave it alone. The round-4 model
// flags this one as an insult (0.86, over the 0.85 threshold), a false
// positive left as it is (docs/moderation.md), so it is checked with the
// model off.
func TestRulesSpareThirdPartyComplaint(t *testing.T) {
	p := DefaultPolicy()
	p.Model.Threshold = 0
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	if v := e.Check("the driver was useless and rude"); v.Action != ActionAllow {
		t.Errorf("%s %v %v", v.Action, v.Categories, v.Spans)
	}
}

// TestRulesCatchRound4 is the other side: names called at third parties
// are flagged as insults (not blocked), the same words aimed at the
// reader are abuse, injuries as an outcome for the reader are threats.
func TestRulesCatchRound4(t *testing.T) {
	e := defaultEngine(t)
	for text, want := range map[string]string{
		"the clueless driver never even knocked":               ActionFlag,
		"le chauffeur incapable a laissé le colis":             ActionFlag,
		"der unfähige Bote hat nicht geklingelt":               ActionFlag,
		"you're an utter disgrace":                             ActionBlock,
		"carry on like this and you'll end up in a wheelchair": ActionBlock,
		"I'll leave you with a broken nose":                    ActionBlock,
		"du bist so schön 😘":                                   ActionBlock,
	} {
		v := e.Check(text)
		if v.Action != want || (want == ActionFlag && !v.Has(CatInsult)) {
			t.Errorf("%q: %s %v %v, want %s", text, v.Action, v.Categories, v.Spans, want)
		}
	}
}
