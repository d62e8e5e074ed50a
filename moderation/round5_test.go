package moderation

import "testing"

// TestRulesSpareRound5: false positives round 5 of issue 12 removed from
// the rules, found by running them over the corpus's clean lines: an
// insult the writer aims at themselves, a scam message the writer quotes
// and doubts, a threat quoted with German quotation marks closed by a
// typed '"'.
func TestRulesSpareRound5(t *testing.T) {
	e := rulesOnlyEngine(t)
	for _, text := range []string{
		"what an idiot I am, wrong address again",
		"I'm such a moron, I ordered the wrong size",
		"ich bin so ein Idiot, falsche Adresse",
		"quel imbécile je suis, je me suis trompé d'adresse",
		"qué tonto soy, puse mal la dirección",
		"sou uma anta mesmo, esqueci o número do pedido",
		"my mum got an email 'your account will be suspended', it's fake right",
		"ein Kunde schrieb mir „ich weiß, wo du wohnst\" – was soll ich tun?",
		"quel idiot je fais, j'ai payé deux fois",
		"Ihr Fahrer hat mich dumm genannt und ich will mich beschweren", // the report inside the match
		"I live in Shitterton, how long will it take",
		"the parcel is going to Twatt, is that in your area",
		"hello beautiful people of support, quick question",
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
	e := rulesOnlyEngine(t)
	expectActions(t, e, map[string]string{
		"you are such a moron":                       ActionBlock,
		"I think you're an idiot":                    ActionBlock,
		"du bist so ein Idiot":                       ActionBlock,
		"eres tonto":                                 ActionBlock,
		"you idiot, I am done with you":              ActionBlock,
		"your account will be suspended, verify now": ActionBlock,
		"ich weiß, wo du wohnst":                     ActionBlock,
	})
}

// TestRulesCatchRound5Shapes: the round-5 grammar rules (turning up at
// the reader's home, distrust of a group, a place "full of" a group,
// identity as the explanation of a failure, superlatives of intelligence,
// "smarter than you", "the wall is smarter", "double your bitcoin"), and
// the look-alikes they must leave alone.
func TestRulesCatchRound5Shapes(t *testing.T) {
	e := rulesOnlyEngine(t)
	expectActions(t, e, map[string]string{
		"do you really want me turning up at your house? keep going":                  ActionBlock,
		"voy a ir a tu casa y hablamos":                                               ActionBlock,
		"you're lucky there's a screen between us":                                    ActionBlock,
		"never trust a mexican with money, lesson learned":                            ActionBlock,
		"nunca te fíes de un gitano":                                                  ActionBlock,
		"Türken kann man nichts glauben":                                              ActionBlock,
		"a call centre full of indians, no wonder":                                    ActionBlock,
		"a woman manager, well that explains the mess":                                ActionBlock,
		"you are honestly the dumbest person I have ever spoken to":                   ActionBlock,
		"my dog is smarter than you":                                                  ActionBlock,
		"mit Ihnen zu reden ist wie mit einer Wand zu reden, nur die Wand ist klüger": ActionBlock,
		"parler avec vous, c'est parler à un mur, et le mur est plus malin":           ActionBlock,
		"double your bitcoin in a week, guaranteed":                                   ActionBlock,
		"las cosas se pueden poner muy feas para ti":                                  ActionBlock,
		"a ver si te atreves a decirme eso en la cara":                                ActionBlock,
		"viens me dire ça en face":                                                    ActionBlock,
		"I wouldn't want to be in your shoes when I get there":                        ActionBlock,
		"mulher tem que ficar na cozinha, chama um homem":                             ActionBlock,
		"ma femme est à la cuisine, elle arrive":                                      ActionAllow,
		"my wife is in the kitchen, she'll sign for it":                               ActionAllow,
		"it won't end well for your battery if you leave it charging":                 ActionAllow,
		"I'll come to your store tomorrow to return it":                               ActionAllow,
		"the engineer will come to my house on monday":                                ActionAllow,
		"voy a ir a casa a buscar el recibo":                                          ActionAllow,
		"je passe chez vous demain pour récupérer le colis":                           ActionAllow,
		"the box was full of broken glass":                                            ActionAllow,
		"I'm a woman and the sizes are odd, that explains it":                         ActionAllow,
		"you can't trust the tracking page":                                           ActionAllow,
		"the screen is cracked, lucky this is under warranty":                         ActionAllow,
		"my wife is smarter than me, she found the receipt":                           ActionAllow,
		"your phone is smarter than mine":                                             ActionAllow,
		"I doubled my order by mistake, I only wanted one bitcoin mining rig":         ActionAllow,
	})
}

// TestRulesSpareComplaintsRound5: a complaint about the business is not
// abuse of the agent: "useless service" (the business left the staff
// words), an accusation of theft about money taken ("you're thieves,
// charging me twice"); the same accusation without a money complaint,
// and a useless agent, still count.
func TestRulesSpareComplaintsRound5(t *testing.T) {
	e := rulesOnlyEngine(t)
	expectActions(t, e, map[string]string{
		"what a useless service, honestly":           ActionAllow,
		"you're thieves, charging me twice":          ActionAllow,
		"sois unos ladrones, quiero mi dinero":       ActionAllow,
		"vocês são uns ladrões, cobraram duas vezes": ActionAllow,
		"vous êtes des voleurs, prélevé deux fois":   ActionAllow,
		"you're a thief and a liar, get lost":        ActionBlock,
		"what a useless agent":                       ActionBlock,
	})
}

// TestRulesCatchCodeUnderThreat: a code or password asked for under the
// threat of closing the reader's account is phishing (the rules catch it
// without the model); a customer asking for a code again, or to close
// their own account, is not.
func TestRulesCatchCodeUnderThreat(t *testing.T) {
	e := rulesOnlyEngine(t)
	expectActions(t, e, map[string]string{
		"if you don't send me the code now I will close your account, send the code": ActionBlock,
		"donnez-moi le code sinon votre compte sera bloqué":                          ActionBlock,
		"my account got blocked, can you send me the code again?":                    ActionAllow,
		"I want to close my account, do you need my password?":                       ActionAllow,
	})
}

// TestModelSparesMoneyAccusation: the model's abuse is not trusted on an
// accusation of theft about money taken, as the rules' is not.
func TestModelSparesMoneyAccusation(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{
		"ihr seid Betrüger, zweimal abgebucht",
		"you're thieves, charging me twice",
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %v", text, v.Action, v.Categories, v.Spans)
		}
	}
}

// TestMildProfanityRound5: exclamations and minced oaths of the five
// languages are flagged as mild profanity, not blocked; a religious
// name in an ordinary request is not.
func TestMildProfanityRound5(t *testing.T) {
	e := defaultEngine(t)
	expectActions(t, e, map[string]string{
		"dang it, wrong card again":                   ActionFlag,
		"sod it, I'll just reorder":                   ActionFlag,
		"puñetera app, no carga":                      ActionFlag,
		"fodeu, paguei duas vezes":                    ActionFlag,
		"zum Teufel mit diesem Formular":              ActionFlag,
		"c'est chiant, le lien a expiré":              ActionFlag,
		"the book about Jesus Christ arrived damaged": ActionAllow,
		"o puto que entregou foi simpático":           ActionAllow, // pt-PT: the kid
		"eres un puto inútil":                         ActionBlock,
	})
}

// TestRulesRound5Phrases: the card's digits asked for in words by someone
// posing as the reader's bank; a mock title for the reader ("well done,
// genius") is flagged; sincere praise is not.
func TestRulesRound5Phrases(t *testing.T) {
	e := rulesOnlyEngine(t)
	expectActions(t, e, map[string]string{
		"soy de su banco, por seguridad necesito que me diga las 16 cifras de la tarjeta": ActionBlock,
		"the 16 digits on my card are worn off, can I get a new one?":                     ActionAllow,
		"votre banque me demande le code, c'est normal ?":                                 ActionAllow,
		"well done genius, you cancelled the wrong order":                                 ActionFlag,
		"bravo le génie, encore raté":                                                     ActionFlag,
		"you clearly have the reading comprehension of a toddler":                         ActionBlock,
		"thanks, that genius idea of yours worked, the router is fine now":                ActionAllow,
		"bravo, it works now, you're a genius!":                                           ActionAllow,
	})
}

// rulesOnlyEngine is the default policy with the model off: what the
// rules decide alone.
func rulesOnlyEngine(t *testing.T) *Engine {
	t.Helper()
	p := DefaultPolicy()
	p.Model.Threshold = 0
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// expectActions checks the action e takes on each text.
func expectActions(t *testing.T, e *Engine, want map[string]string) {
	t.Helper()
	for text, action := range want {
		if v := e.Check(text); v.Action != action {
			t.Errorf("%q: %s %v %v, want %s", text, v.Action, v.Categories, v.Spans, action)
		}
	}
}
