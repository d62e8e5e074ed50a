package moderation

import (
	"context"
	"slices"
	"time"

	"github.com/parleychat/parley/ingest"
)

// Moderators teach the engine: every approve, remove or ban of a review
// item is kept as a label (the item's text and what the decision says it
// is). The labels export as JSON lines the trainer reads
// (moderation/cmd/train -labelled), and they measure, per site, how many
// of the items the engine queued moderators actually removed.

// labelClasses are the model's harmful classes, most severe first: a
// removed item's label is the first of them among its categories.
var labelClasses = []string{CatThreat, CatHate, CatHarassment, CatAbuse, CatPhishing, CatSpam, CatInsult, CatProfanity}

// LabelClean is the label of an approved item.
const LabelClean = "clean"

// labelOf is the label a decision on an item gives, if any: approving
// says the text is clean; removing or banning says it is what its
// categories say. "Reviewed" teaches nothing.
func labelOf(it Item, decision, by string, at time.Time) (DecisionLabel, bool) {
	l := DecisionLabel{ItemID: it.ID, SiteID: it.SiteID, Text: it.Text, Decision: decision, Action: it.Action,
		Categories: slices.Clone(it.Categories), Sources: decidingSources(it), DecidedBy: by, DecidedAt: at}
	switch decision {
	case ingest.DecisionApprove:
		l.Label = LabelClean
	case ingest.DecisionRemove, ingest.DecisionBan:
		for _, c := range labelClasses {
			if slices.Contains(it.Categories, c) {
				l.Label = c
				break
			}
		}
		if l.Label == "" && len(it.Categories) > 0 {
			l.Label = it.Categories[0]
		}
	default:
		return DecisionLabel{}, false
	}
	return l, true
}

// decidingSources names the detectors that set an item's action, once
// each: from its verdict's sources, or, for items queued before those were
// kept, from its spans.
func decidingSources(it Item) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			s = SourceRules
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range it.Sources {
		if s.Decided {
			add(s.Source)
		}
	}
	if len(out) == 0 {
		for _, s := range it.Spans {
			add(s.Source)
		}
	}
	slices.Sort(out)
	return out
}

// Limits of the label export and the precision report.
const (
	MaxLabelExport       = 100_000
	DefaultPrecisionDays = 30
	MaxPrecisionDays     = 365
)

// SitePrecision is a site's precision from moderators' decisions: of the
// queued items they approved or removed, the share they removed; also per
// category and per deciding source.
type SitePrecision struct {
	SiteID     string           `json:"site_id"`
	Decided    int              `json:"decided"`
	Removed    int              `json:"removed"`
	Precision  float64          `json:"precision"`
	ByCategory []KeyedPrecision `json:"by_category"`
	BySource   []KeyedPrecision `json:"by_source"`
}

// KeyedPrecision is the precision of one category or source.
type KeyedPrecision struct {
	Key       string  `json:"key"`
	Decided   int     `json:"decided"`
	Removed   int     `json:"removed"`
	Precision float64 `json:"precision"`
}

// Precision reports, per site of the filter, the share of queued items
// decided since f.Since that moderators removed. Items marked "reviewed"
// count neither way.
func (s *Service) Precision(ctx context.Context, f LabelCountFilter) ([]SitePrecision, error) {
	counts, err := s.store.LabelCounts(ctx, f)
	if err != nil {
		return nil, err
	}
	return precisionOf(counts), nil
}

// precisionOf folds label counts into one report per site.
func precisionOf(counts []LabelCount) []SitePrecision {
	out := []SitePrecision{}
	bySite := map[string]int{}
	for _, c := range counts {
		i, ok := bySite[c.SiteID]
		if !ok {
			i = len(out)
			bySite[c.SiteID] = i
			out = append(out, SitePrecision{SiteID: c.SiteID, ByCategory: []KeyedPrecision{}, BySource: []KeyedPrecision{}})
		}
		p := &out[i]
		k := KeyedPrecision{Key: c.Key, Decided: c.Approved + c.Removed, Removed: c.Removed}
		k.Precision = ratioOf(k.Removed, k.Decided)
		switch c.Kind {
		case CountAll:
			p.Decided, p.Removed, p.Precision = k.Decided, k.Removed, k.Precision
		case CountCategory:
			p.ByCategory = append(p.ByCategory, k)
		case CountSource:
			p.BySource = append(p.BySource, k)
		}
	}
	return out
}

func ratioOf(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
