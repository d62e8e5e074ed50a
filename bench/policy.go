package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// fitFloodLimit keeps the moderation policy of the run's site as it is
// except for the flood rule's message count, raised so that a visitor
// sending perVisitor messages/s is not blocked as a flood. Every other
// rule (word lists, PII, links, repeats) stays on, so the inline check
// costs what it costs in production. It returns the limit it set, or 0
// when the default already allows the rate.
func (a *api) fitFloodLimit(ctx context.Context, siteID string, perVisitor float64) (int, error) {
	var info struct {
		Policy map[string]json.RawMessage `json:"policy"`
	}
	path := "/api/moderation/policy/" + siteID
	if err := a.do(ctx, http.MethodGet, path, nil, &info); err != nil {
		return 0, fmt.Errorf("read the site's moderation policy: %w", err)
	}
	var flood struct {
		WindowSeconds int `json:"window_seconds"`
		MaxMessages   int `json:"max_messages"`
		MaxRepeats    int `json:"max_repeats"`
	}
	if raw, ok := info.Policy["flood"]; ok {
		if err := json.Unmarshal(raw, &flood); err != nil {
			return 0, fmt.Errorf("moderation policy flood: %w", err)
		}
	}
	if flood.MaxMessages == 0 || flood.WindowSeconds == 0 {
		return 0, nil // no rate rule
	}
	need := int(math.Ceil(perVisitor*float64(flood.WindowSeconds)*1.5)) + 5
	if need <= flood.MaxMessages {
		return 0, nil
	}
	flood.MaxMessages = need
	raw, err := json.Marshal(flood)
	if err != nil {
		return 0, fmt.Errorf("encode flood options: %w", err)
	}
	info.Policy["flood"] = raw
	if err := a.do(ctx, http.MethodPut, path, info.Policy, nil); err != nil {
		return 0, fmt.Errorf("raise the site's flood limit to %d messages per %d s: %w", need, flood.WindowSeconds, err)
	}
	return need, nil
}

// Message texts: three word lists of coprime lengths give 360 different
// consecutive sentences, so that a visitor's messages never look like
// repeats to the flood rule (which ignores digits), and none trips a word
// list, PII or link rule.
var (
	textOpeners  = []string{"Hi", "Thanks", "Sorry", "Hello again", "Quick question", "One more thing", "Okay", "Great"}
	textSubjects = []string{"my parcel", "the blue jacket", "the invoice", "my refund", "the delivery slot", "the discount code", "my account", "the warranty", "the return label"}
	textTails    = []string{"has not arrived yet", "looks wrong", "is still pending", "needs a change", "was charged twice", "shows another address", "cannot be found", "should be ready today", "is missing a page", "came in the wrong size"}
)

// benchText is the n-th message text.
func benchText(n int) string {
	return textOpeners[n%len(textOpeners)] + ", " + textSubjects[n%len(textSubjects)] + " " + textTails[n%len(textTails)] + " (" + strconv.Itoa(n) + ")"
}

// flaggedBenchText is the n-th message text with a mild swear word the
// default policy flags for review (delivered, not blocked): the pipeline
// scenario times the worker's verdict, and only a message the worker acts
// on has one.
func flaggedBenchText(n int) string {
	return benchText(n) + ", damn it"
}
