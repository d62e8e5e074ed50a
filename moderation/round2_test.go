package moderation

import "testing"

// TestRulesSpareSupportChat: what customers write about scams they were
// sent, abuse they were quoted, their own photos and receipts, and
// complaints about a company's service is not harmful; and a word of one
// language that is an ordinary word of another does not count.
func TestRulesSpareSupportChat(t *testing.T) {
	e := defaultEngine(t)
	for _, text := range []string{
		"a seller asked me to pay with gift cards, is that allowed?",             // a scam term, but the customer asks
		"my friend got an email 'your account will be suspended', is it a scam?", // a quoted scam, reported
		"please don't send me the password by email, call me instead",            // a warning, not a request
		"quelqu'un m'a écrit 't'es une merde', comment le bloquer ?",             // reported, quoted swearing
		"someone wrote 'you people are animals' in a review, please remove it",   // the model is not trusted on quotations
		"I'll track down the receipt and send it tonight",                        // hunting needs a person
		"I need to send a selfie for the verification",                           // one's own photo
		"could you share me your phone number? it's easier to talk",              // asking for the business's number
		"I'll be waiting for your call after work",                               // waiting for a call
		"your delivery company is hopeless, third time it's late",                // a complaint about a company
		"o serviço de vocês é um lixo, quero meu dinheiro de volta",              // "your service is trash"
		"el servicio es inútil, quiero el reembolso",                             // Portuguese "inutil" is no abuse in Spanish
		"la factura sale con otro nombre",                                        // Spanish "sale con", not French
		"you made my day honestly",                                               // German "Made" is a maggot
		"is your local store open tonight?",                                      // Spanish "local" is no kin
		"Can you help me set up TeamViewer for our office? We use it for IT.",    // asking for help with a tool
		"alguém me mandou 'sei onde você mora', como bloqueio?",                  // reported at the rule's first word
		"I paid twice by mistake, can you refund the difference?",                // a customer's own overpayment
		"my card was blocked by the bank, can I pay another way?",                // no authority, no threat
		"the customs office charged a fee for my parcel, is that normal?",        // asking about a fee
		"congrats on the new store, you are the best!",                           // praise, not sarcasm
		"esse celular é um lixo, a bateria não dura",                             // strong words about a thing
	} {
		if v := e.Check(text); v.Action != ActionAllow {
			t.Errorf("%q: %s %v %v", text, v.Action, v.Categories, v.Spans)
		}
	}
}

// TestRulesCatchRound2 is the other side of TestRulesSpareSupportChat: the
// same words used to harm still count.
func TestRulesCatchRound2(t *testing.T) {
	e := defaultEngine(t)
	for text, want := range map[string]string{
		"pay with gift cards now or your account is closed":                          ActionBlock,
		"if you don't send me the code now I will close your account, send the code": ActionBlock,
		"I'll track you down and make you pay":                                       ActionBlock,
		"send me a pic of you 😘":                                                     ActionBlock,
		"I'll post your home address online":                                         ActionBlock,
		"t'es une merde":                                                             ActionBlock,
		"your support team are a bunch of clowns":                                    ActionBlock,
		"escríbeme a pablo punto ruiz arroba gmail punto com":                        ActionRedact,
		"schreib an anna punkt schmidt at gmx punkt de":                              ActionRedact,
		"card 348597855769028 09/26 4821":                                            ActionRedact,
		// family-level patterns of round 2
		"I accidentally sent you too much, please send the difference to my account":   ActionBlock,
		"ich habe dir zu viel überwiesen, bitte die Differenz zurücküberweisen":        ActionBlock,
		"your package is waiting, the delivery fee is unpaid: pay at parcel-track.top": ActionBlock,
		"this is the tax office, your account will be blocked unless you pay today":    ActionBlock,
		"pour le remboursement j'ai besoin du code reçu par SMS":                       ActionBlock,
		"wow, rocket scientist, worked that out all by yourself?":                      ActionFlag,
		"you are honestly the slowest agent here":                                      ActionFlag,
	} {
		if v := e.Check(text); v.Action != want {
			t.Errorf("%q: %s %v %v, want %s", text, v.Action, v.Categories, v.Spans, want)
		}
	}
}
