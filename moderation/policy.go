package moderation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Policy is one site's moderation configuration. Its JSON form is what the
// policy API stores and what `parley moderate check --policy` reads;
// fields left out of a JSON document keep their DefaultPolicy values.
type Policy struct {
	// Languages whose default lists are loaded (en, es, de, fr, pt).
	Languages []string `json:"languages"`
	// Actions maps a category to allow, flag, block or redact. A category
	// without an entry is flagged.
	Actions map[string]string `json:"actions"`
	// Block holds the site's own terms by category ("custom", "spam", ...).
	// Terms match whole words; "word*", "*word" and "*word*" are wildcards.
	Block map[string][]string `json:"block,omitempty"`
	// Allow holds terms that are never matched: a blocked term found
	// inside an allowed one ("scunthorpe") is ignored. Allow beats block.
	Allow []string `json:"allow,omitempty"`
	// Regexes are RE2 rules matched against the original text.
	Regexes []RegexRule  `json:"regexes,omitempty"`
	PII     PIIOptions   `json:"pii"`
	Links   LinkOptions  `json:"links"`
	Flood   FloodOptions `json:"flood"`
	// Model tunes the in-process model that runs beside the rules.
	Model ModelOptions `json:"model"`
	// Classifier is an optional model behind HTTP, used by workers only.
	Classifier ClassifierOptions `json:"classifier"`
}

// ModelOptions tunes the in-process model. Its verdict counts when its
// harmful classes together have at least Threshold probability;
// Threshold 0 turns it off.
type ModelOptions struct {
	Threshold float64 `json:"threshold"`
}

// DefaultModelThreshold is the model threshold of DefaultPolicy.
const DefaultModelThreshold = 0.85

// RegexRule is a named RE2 rule and the category its matches count as.
type RegexRule struct {
	Name     string `json:"name"`
	Pattern  string `json:"pattern"`
	Category string `json:"category"`
}

// PIIOptions chooses the personal-data detectors; matches count as "pii".
type PIIOptions struct {
	Email bool `json:"email"`
	Phone bool `json:"phone"` // also digits spelled out as words
	// Card also finds expiry dates and CVV codes.
	Card bool `json:"card"`
	IBAN bool `json:"iban"`
	// NationalID finds US SSNs, Spanish DNI/NIE, Brazilian CPF, French
	// NIR, and 9 or 11 digit numbers after a word naming an identity number.
	NationalID bool `json:"national_id"`
}

// LinkOptions holds the site's link rules. Domains match themselves and
// their subdomains. Links to blocked domains (and, with BlockUnknown, to
// any domain not allowed) count as "link".
type LinkOptions struct {
	AllowDomains []string `json:"allow_domains,omitempty"`
	// OwnDomains are the site's own domains: always allowed, and a link
	// that imitates one of them (homoglyphs, one edit) counts as phishing.
	OwnDomains   []string `json:"own_domains,omitempty"`
	BlockDomains []string `json:"block_domains,omitempty"`
	BlockUnknown bool     `json:"block_unknown"`
}

// FloodOptions bounds one visitor's messages: more than MaxMessages in
// WindowSeconds, or MaxRepeats identical or near-identical messages in the
// window, count as "flood". Zero turns a rule off.
type FloodOptions struct {
	WindowSeconds int `json:"window_seconds"`
	MaxMessages   int `json:"max_messages"`
	MaxRepeats    int `json:"max_repeats"`
}

// ClassifierOptions configures an HTTP classifier; off when URL is empty.
type ClassifierOptions struct {
	URL       string  `json:"url,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	TimeoutMS int     `json:"timeout_ms,omitempty"`
}

// Limits on a policy, so that one site cannot make checks slow or the
// database large.
const (
	MaxBlockTerms   = 20000
	MaxAllowTerms   = 5000
	MaxTermBytes    = 100
	MaxRegexes      = 100
	MaxRegexBytes   = 1000
	MaxDomains      = 2000
	MaxPolicyBytes  = 2 << 20
	maxCategoryName = 32
)

// DefaultActions is the action of each built-in category in DefaultPolicy.
func DefaultActions() map[string]string {
	return map[string]string{
		CatProfanity:  ActionFlag,
		CatSexual:     ActionFlag,
		CatInsult:     ActionFlag,
		CatAbuse:      ActionBlock,
		CatHate:       ActionBlock,
		CatHarassment: ActionBlock,
		CatThreat:     ActionBlock,
		CatPII:        ActionRedact,
		CatLink:       ActionFlag,
		CatPhishing:   ActionBlock,
		CatSpam:       ActionBlock,
		CatFlood:      ActionBlock,
		CatCustom:     ActionBlock,
	}
}

// DefaultPolicy is the policy of a site that has not saved its own.
func DefaultPolicy() Policy {
	return Policy{
		Languages: slices.Clone(Languages),
		Actions:   DefaultActions(),
		Regexes: []RegexRule{
			{Name: "bitcoin-address", Pattern: `\b(?:bc1[a-z0-9]{25,59}|[13][a-km-zA-HJ-NP-Z1-9]{25,34})\b`, Category: CatSpam},
			{Name: "ethereum-address", Pattern: `0x[a-fA-F0-9]{40}\b`, Category: CatSpam},
			{Name: "telegram-invite", Pattern: `t\.me/(?:joinchat/|\+)?[A-Za-z0-9_]{5,}`, Category: CatSpam},
		},
		PII:   PIIOptions{Email: true, Phone: true, Card: true, IBAN: true, NationalID: true},
		Flood: FloodOptions{WindowSeconds: 30, MaxMessages: 12, MaxRepeats: 3},
		Model: ModelOptions{Threshold: DefaultModelThreshold},
	}
}

// PolicyError says which entry of a policy is wrong and why.
type PolicyError struct {
	Field string `json:"field"`
	Msg   string `json:"error"`
}

func (e *PolicyError) Error() string { return e.Field + ": " + e.Msg }

func perr(field, format string, args ...any) *PolicyError {
	return &PolicyError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

var categoryRe = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`)

var domainRe = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$`)

// ParsePolicy reads a policy document over the defaults, refusing unknown
// fields, and validates it.
func ParsePolicy(b []byte) (Policy, error) {
	if len(b) > MaxPolicyBytes {
		return Policy{}, perr("policy", "document is %d bytes; the limit is %d", len(b), MaxPolicyBytes)
	}
	p := DefaultPolicy()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, perr("policy", "not a valid policy document: %v", err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// LoadPolicyFile reads a policy document from a file.
func LoadPolicyFile(path string) (Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("read policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return Policy{}, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// Validate checks every entry and returns a *PolicyError naming the first
// one that is wrong.
func (p *Policy) Validate() error {
	for i, l := range p.Languages {
		if !slices.Contains(Languages, l) {
			return perr(fmt.Sprintf("languages[%d]", i), "no default list for %q (have %s)", l, strings.Join(Languages, ", "))
		}
	}
	for _, cat := range slices.Sorted(maps.Keys(p.Actions)) {
		if !categoryRe.MatchString(cat) {
			return perr("actions."+cat, "category names are lower-case letters and _ (at most %d)", maxCategoryName)
		}
		switch p.Actions[cat] {
		case ActionAllow, ActionFlag, ActionBlock, ActionRedact:
		default:
			return perr("actions."+cat, "action %q is not allow, flag, block or redact", p.Actions[cat])
		}
	}
	total := 0
	for _, cat := range slices.Sorted(maps.Keys(p.Block)) {
		if !categoryRe.MatchString(cat) {
			return perr("block."+cat, "category names are lower-case letters and _ (at most %d)", maxCategoryName)
		}
		for i, t := range p.Block[cat] {
			total++
			if total > MaxBlockTerms {
				return perr(fmt.Sprintf("block.%s[%d]", cat, i), "more than %d block terms", MaxBlockTerms)
			}
			if err := checkTerm(t); err != nil {
				return perr(fmt.Sprintf("block.%s[%d]", cat, i), "term %q: %v", clip(t), err)
			}
		}
	}
	if len(p.Allow) > MaxAllowTerms {
		return perr(fmt.Sprintf("allow[%d]", MaxAllowTerms), "more than %d allow terms", MaxAllowTerms)
	}
	for i, t := range p.Allow {
		if err := checkTerm(t); err != nil {
			return perr(fmt.Sprintf("allow[%d]", i), "term %q: %v", clip(t), err)
		}
	}
	if len(p.Regexes) > MaxRegexes {
		return perr(fmt.Sprintf("regexes[%d]", MaxRegexes), "more than %d regexes", MaxRegexes)
	}
	names := map[string]bool{}
	for i, r := range p.Regexes {
		f := fmt.Sprintf("regexes[%d]", i)
		if r.Name == "" {
			return perr(f, "name is empty")
		}
		if names[r.Name] {
			return perr(f, "name %q is used twice", r.Name)
		}
		names[r.Name] = true
		if len(r.Pattern) > MaxRegexBytes {
			return perr(f, "pattern of %q is %d bytes; the limit is %d", r.Name, len(r.Pattern), MaxRegexBytes)
		}
		if _, err := regexp.Compile(r.Pattern); err != nil {
			return perr(f, "pattern of %q is not a valid RE2 expression: %v", r.Name, err)
		}
		if !categoryRe.MatchString(r.Category) {
			return perr(f, "category %q of %q: use lower-case letters and _", r.Category, r.Name)
		}
	}
	for name, list := range map[string][]string{"links.allow_domains": p.Links.AllowDomains, "links.block_domains": p.Links.BlockDomains,
		"links.own_domains": p.Links.OwnDomains} {
		if len(list) > MaxDomains {
			return perr(name, "more than %d domains", MaxDomains)
		}
		for i, d := range list {
			if !domainRe.MatchString(strings.ToLower(strings.TrimSpace(d))) {
				return perr(fmt.Sprintf("%s[%d]", name, i), "%q is not a domain name like example.com", clip(d))
			}
		}
	}
	f := p.Flood
	if f.WindowSeconds < 0 || f.WindowSeconds > 3600 {
		return perr("flood.window_seconds", "must be between 0 and 3600")
	}
	if f.MaxMessages < 0 || f.MaxMessages > 10000 {
		return perr("flood.max_messages", "must be between 0 and 10000")
	}
	if f.MaxRepeats < 0 || f.MaxRepeats > 1000 {
		return perr("flood.max_repeats", "must be between 0 and 1000")
	}
	if (f.MaxMessages > 0 || f.MaxRepeats > 0) && f.WindowSeconds == 0 {
		return perr("flood.window_seconds", "must be set when max_messages or max_repeats is")
	}
	if t := p.Model.Threshold; t != 0 && (t < 0.5 || t > 1) {
		return perr("model.threshold", "must be 0 (off) or between 0.5 and 1")
	}
	c := p.Classifier
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return perr("classifier.url", "%q is not an http(s) URL", clip(c.URL))
		}
	}
	if c.Threshold < 0 || c.Threshold > 1 {
		return perr("classifier.threshold", "must be between 0 and 1")
	}
	if c.TimeoutMS < 0 || c.TimeoutMS > 10000 {
		return perr("classifier.timeout_ms", "must be between 0 and 10000")
	}
	return nil
}

func checkTerm(t string) error {
	if len(t) > MaxTermBytes {
		return fmt.Errorf("%d bytes; the limit is %d", len(t), MaxTermBytes)
	}
	_, _, _, err := parseTerm(t)
	return err
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) <= 60 {
		return s
	}
	cut := 60
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// actionFor returns the action of a category under p.
func (p *Policy) actionFor(cat string) string {
	if a, ok := p.Actions[cat]; ok {
		return a
	}
	return ActionFlag
}
