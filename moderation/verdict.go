package moderation

import (
	"slices"

	"github.com/parleychat/parley/ingest"
)

// Actions a policy maps a category to. They equal ingest's action names.
const (
	ActionAllow  = ingest.ActionAllow
	ActionFlag   = ingest.ActionFlag
	ActionBlock  = ingest.ActionBlock
	ActionRedact = ingest.ActionRedact
)

// Built-in categories. Custom regex rules may name others ([a-z_]+).
const (
	CatProfanity = "profanity" // casual swearing
	CatSexual    = "sexual"
	CatInsult    = "insult" // an insult that is not aimed at anyone in particular
	CatAbuse     = "abuse"  // directed abuse: an insult aimed at the reader
	CatHate      = "hate"   // slurs
	CatThreat    = "threat" // threats of violence, incitement to self-harm
	// CatHarassment is sexual harassment aimed at the reader: remarks on
	// the body or voice, requests for photos, numbers or dates.
	CatHarassment = "harassment"
	CatPII        = "pii"      // email, phone, payment card, IBAN
	CatLink       = "link"     // a link to a blocked (or, if so set, unknown) domain
	CatPhishing   = "phishing" // credential or payment fishing, deceptive links
	CatSpam       = "spam"
	CatFlood      = "flood" // too many, or repeated, messages in a window
	CatCustom     = "custom"
	// CatInlineBlock marks a message the inline check blocked that the
	// worker's full policy would let through; it is queued for review.
	CatInlineBlock = "inline_block"
)

// Categories lists the built-in categories in documentation order.
var Categories = []string{
	CatProfanity, CatSexual, CatInsult, CatAbuse, CatHate, CatHarassment, CatThreat,
	CatPII, CatLink, CatPhishing, CatSpam, CatFlood, CatCustom,
}

// severityOf ranks categories: threats above directed abuse and hate,
// above insults, above casual swearing. Unknown (custom regex) categories
// rank as 2.
func severityOf(cat string) int {
	switch cat {
	case CatThreat:
		return 4
	case CatAbuse, CatHate, CatHarassment, CatPhishing:
		return 3
	case CatSexual, CatInsult, CatSpam, CatFlood, CatLink, CatCustom:
		return 2
	case CatProfanity, CatPII:
		return 1
	}
	return 2
}

// actionRank orders actions by strength: block > flag > redact > allow.
func actionRank(a string) int {
	switch a {
	case ActionBlock:
		return 3
	case ActionFlag:
		return 2
	case ActionRedact:
		return 1
	}
	return 0
}

// Verdict is the engine's judgement of one text.
type Verdict struct {
	// Action is the strongest action among the matched categories.
	Action string `json:"action"`
	// Categories that matched, sorted.
	Categories []string `json:"categories,omitempty"`
	// Spans are byte ranges of the ORIGINAL text, sorted by start.
	Spans []ingest.Span `json:"spans,omitempty"`
	// Severity is 0 (clean) to 4 (threat).
	Severity int `json:"severity"`
	// Redacted is the text with every span of a category whose action is
	// redact masked. It is set whenever such a span exists and the action
	// is not block, so a flagged message can still be delivered redacted.
	Redacted string `json:"redacted,omitempty"`
	// Sources lists, per category, the detectors that found it and
	// whether the category set the action (see ingest.Span.Source).
	Sources []ingest.VerdictSource `json:"sources,omitempty"`

	hosts []string // domains of links the rules said nothing about
	promo bool     // promotional wording (for the newly-seen-domain signal)
}

// SourceRules is the Source of spans found by the engine's rules.
const SourceRules = "rules"

// Has reports whether the verdict names category cat.
func (v Verdict) Has(cat string) bool { return slices.Contains(v.Categories, cat) }

// Queued reports whether the verdict sends the message to the review queue.
func (v Verdict) Queued() bool { return v.Action == ActionFlag || v.Action == ActionBlock }
