package moderation

import "strings"

// An insult the writer aims at themselves ("what an idiot I am", "ich
// bin so ein Trottel", "qué tonto soy", "quel imbécile je suis") is a
// customer owning a mistake, one of the commonest hard negatives of a
// support chat, not abuse.

// insulting reports the categories an insult's target decides: abuse and
// insults aimed at oneself, or at a business that took one's money, are
// a customer's words about a mistake or a complaint.
func insulting(category string) bool { return category == CatAbuse || category == CatInsult }

// selfWords are first-person pronouns of the five languages. (The intent
// lexicons' [i] class holds most of them; it is not used here because its
// hits are also model features, and its German entries lack the object
// forms "mir" and "mich": moving these words and the copulas below into
// lexicon classes is for a round that retrains the model.)
var selfWords = map[string]bool{
	"i": true, "me": true, "myself": true, "we": true,
	"yo": true, "eu": true, "je": true, "j": true, "moi": true,
	"ich": true, "mir": true, "mich": true, "wir": true, "nous": true,
}

// selfCopulas are the verbs that make the writer the insult's subject:
// "I am", "I'm", "I feel", "soy", "sou", "je suis", "ich bin", "me
// siento", "quel idiot je fais". The Spanish and Portuguese forms need no pronoun.
var selfCopulas = map[string]bool{
	"am": true, "m": true, "was": true, "feel": true, "felt": true,
	"soy": true, "sou": true, "estoy": true, "estou": true, "siento": true, "sinto": true, "fui": true,
	"suis": true, "sens": true, "fais": true, "etais": true, "bin": true, "war": true, "fuhle": true, "komme": true,
}

// bareCopulas carry the first person without a pronoun.
var bareCopulas = map[string]bool{"soy": true, "sou": true, "estoy": true, "estou": true, "suis": true}

// selfAimed reports whether the insult on tokens first..last has the
// writer as its subject: a first-person pronoun and copula shortly before
// it ("I'm such an idiot"), or after it in the same clause ("what an
// idiot I am", "que burro que eu sou", "wie blöd von mir").
func (e *Engine) selfAimed(sc *scratch, text string, first, last int32) bool {
	for k := first; k <= last; k++ {
		if e.pronouns[tokenText(sc, int(k))] {
			return false // a rule aimed at "you"
		}
	}
	// before: copula (with its pronoun, or a bare one) at most four words back
	for k := int(first) - 1; k >= 0 && k >= int(first)-5; k-- {
		if sc.tokens[k+1].brkBefore || commaBetween(sc, text, k) {
			break
		}
		w := tokenText(sc, k)
		if e.pronouns[w] {
			break // "you're such an idiot"
		}
		if selfCopulas[w] && (bareCopulas[w] || (k > 0 && !sc.tokens[k].brkBefore && selfWords[tokenText(sc, k-1)])) {
			return true
		}
	}
	// after: a pronoun ending the clause or followed by a copula, or a bare copula
	for k := int(last) + 1; k < len(sc.tokens) && k <= int(last)+3; k++ {
		if sc.tokens[k].brkBefore || commaBetween(sc, text, k-1) {
			break
		}
		w := tokenText(sc, k)
		if e.pronouns[w] {
			break
		}
		if bareCopulas[w] {
			return true
		}
		if selfWords[w] {
			end := k+1 >= len(sc.tokens) || sc.tokens[k+1].brkBefore || commaBetween(sc, text, k)
			return end || selfCopulas[tokenText(sc, k+1)]
		}
	}
	return false
}

// commaBetween reports a comma (or semicolon, colon, dash) between token
// k and the next: the end of a clause the sentence breaks do not mark.
func commaBetween(sc *scratch, text string, k int) bool {
	if k+1 >= len(sc.tokens) {
		return true
	}
	from, to := sc.syms[sc.tokens[k].last].end, sc.syms[sc.tokens[k+1].first].start
	if from >= to {
		return false
	}
	return strings.ContainsAny(text[from:to], ",;:–—")
}

// moneyAccusation reports an accusation of theft or fraud (intent class
// "accusation": thieves, crooks, ladrones, voleurs, Betrüger) on tokens
// first..last in a text that complains about money taken (class
// "money_complaint": charged twice, my refund, cobrado, prélevé,
// abgebucht): "you're thieves, charging me twice" is a customer's
// complaint about the business, not abuse of the agent.
func (e *Engine) moneyAccusation(sc *scratch, first, last int32) bool {
	accused, money := false, false
	for _, h := range sc.hits {
		switch int(h.class) {
		case e.grammar.accusation:
			accused = accused || (h.s <= last && h.e >= first)
		case e.grammar.moneyComplaint:
			money = true
		}
	}
	return accused && money
}
