package moderation

import "testing"

// TestRulesSpareRound3: the false positives round 3 of issue 12 removed
// from the rules: a word of one language read in another, a two-letter
// word read as a pronoun, the customer's own secrets, a business's
// details, a doubted message, a medical device, deliveries after work.
func TestRulesSpareRound3(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{
		"désolé du retard, j'étais en déplacement",                                 // French "du" is no German "du"
		"this tv is trash, the remote stopped working",                             // "tv" is no "tu"
		"I need to change my password on the new app",                              // one's own password
		"j'ai oublié mon mot de passe, comment le réinitialiser ?",                 // the same in French
		"I got your number from your website, is this the right line for returns?", // the business's number
		"I have your address from the invoice, can I send the return there?",       // the business's address
		"a man called saying he was from your bank and wanted my code, was that legit?",
		"my urologist recommended a penis pump, do you ship it discreetly?", // a medical device
		"je serai chez moi après le travail, vous pouvez livrer vers 19h ?", // "chez moi" is no date
		"I know where your shop is, can I collect in person tomorrow?",      // a shop, not a person
		"I paid twice by mistake, can you refund the difference?",           // the customer's own overpayment
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %v", text, v.Action, v.Categories, v.Spans)
		}
	}
}

// TestRulesCatchRound3 is the other side: the family-level patterns round
// 3 added.
func TestRulesCatchRound3(t *testing.T) {
	e := defaultEngine(t)
	for text, want := range map[string]string{
		"our accounts team credited you €600 instead of €60, please send the difference back today": ActionBlock,
		"nous vous avons versé 400 € de trop par erreur, reversez la différence sous 24 h":          ActionBlock,
		"Hold on your package. Settle the £2.10 redelivery fee here: evri-parcel-help.top":          ActionBlock,
		"I've got your address.":                           ActionBlock,
		"if you don't fix it you'll need a dentist":        ActionBlock,
		"me ligue no (21) 99876-5432 depois das 18h":       ActionRedact,
		"immigrants just live off our taxes":               ActionBlock,
		"die Flüchtlinge liegen uns auf der Tasche":        ActionBlock,
		"take a different route home tonight, mate":        ActionBlock,
		"dein Chef bekommt Besuch, wenn das so weitergeht": ActionBlock,
	} {
		if v := e.Check(text); v.Action != want {
			t.Errorf("%q: %s %v %v, want %s", text, v.Action, v.Categories, v.Spans, want)
		}
	}
}

// TestSincereThanksAllowed: a customer thanking or praising the agent is
// never flagged. Round 3's model flagged "Thank you, you've been really
// helpful." as an insult (sarcastic corpus lines such as "really
// helpful. NOT" outweighed plain thanks); the corpus file thanks.txt
// fixed it. Most of these texts are worded unlike the corpus's lines.
func TestSincereThanksAllowed(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{
		"Thank you, you've been really helpful.",
		"you've been really helpful",
		"that was super helpful, thanks",
		"you're a star",
		"You're a star, thanks for fixing my delivery address so fast!",
		"really helpful, thank you so much for your time",
		"this chat was really helpful, I appreciate it",
		"muchas gracias, me has ayudado mucho",
		"gracias, has sido de muchísima ayuda con la factura",
		"eres un sol, muchas gracias por todo",
		"muito obrigado, ajudou demais",
		"obrigada, você foi super atenciosa e resolveu rapidinho",
		"vocês são demais, muito obrigado pela ajuda",
		"vielen Dank, das war wirklich hilfreich",
		"danke, Sie haben mir sehr geholfen, schönen Abend noch",
		"du bist ein Schatz, danke für deine Hilfe",
		"merci beaucoup, vous avez été très utile",
		"merci, vous m'avez vraiment bien aidé avec le remboursement",
		"vous êtes au top, merci pour tout",
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %v", text, v.Action, v.Categories, v.Spans)
		}
	}
}
