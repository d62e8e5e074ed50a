package analytics

import (
	"fmt"
	"sort"

	"github.com/parleychat/parley/ingest"
)

// ModerationReport holds the moderation metrics of a range
// (docs/metrics.md, "Moderation"); both stores compute it in Go from
// ModerationFacts.
type ModerationReport struct {
	// Items counts the flags, blocks and redactions of the range by site,
	// category (one per category of a verdict) and action.
	Items []ModerationCount `json:"items"`
	// Decisions counts the moderators' decisions made in the range, by
	// decision; Moderators by moderator and decision.
	Decisions  []ModerationCount `json:"decisions"`
	Moderators []ModerationCount `json:"moderators"`
	// Review is flag → decision for the decisions made in the range.
	Review Duration `json:"time_to_review"`
	// ApprovedShare is approve decisions / decisions made in the range: a
	// high share means many false positives.
	ApprovedShare float64 `json:"approved_share"`
	// Backlog is the review items flagged before To and undecided at To.
	Backlog int64 `json:"backlog"`
	// Series has a point per bucket of the range.
	Series []ModerationPoint `json:"series"`
}

// ModerationCount is one row of a moderation breakdown.
type ModerationCount struct {
	SiteID    string `json:"site_id,omitempty"`
	Category  string `json:"category,omitempty"`
	Action    string `json:"action,omitempty"`
	Decision  string `json:"decision,omitempty"`
	Moderator string `json:"moderator,omitempty"`
	Count     int64  `json:"count"`
}

// ModerationPoint is one bucket: verdicts by action made in it,
// decisions made in it, and the backlog at its end (or at To).
type ModerationPoint struct {
	Bucket   string `json:"bucket"`
	Flagged  int64  `json:"flagged"`
	Blocked  int64  `json:"blocked"`
	Redacted int64  `json:"redacted"`
	Decided  int64  `json:"decided"`
	Backlog  int64  `json:"backlog"`
}

// moderationReport computes the report from the facts ModerationFacts returned.
func moderationReport(q Query, facts []ModerationFact) ModerationReport {
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	spans := zoneSpans(q.Location, q.From, q.To)
	keys := bucketKeys(q)
	points := make(map[int64]*ModerationPoint, len(keys))
	for _, k := range keys {
		points[k] = &ModerationPoint{Bucket: bucketLabel(k, q.Bucket, q.Location)}
	}
	// ends[i] is the instant bucket i ends (the next one's start, or To).
	ends := bucketEnds(q, spans, keys)
	items := map[[3]string]int64{}
	decisions := map[string]int64{}
	byMod := map[[2]string]int64{}
	var review []int64
	var backlog, approved, decided int64
	r := ModerationReport{Items: []ModerationCount{}, Decisions: []ModerationCount{}, Moderators: []ModerationCount{}, Series: []ModerationPoint{}}
	for _, m := range facts {
		if m.Action == ingest.ActionAllow || m.At >= to {
			continue
		}
		if m.ItemID != "" {
			if m.DecidedAt == 0 || m.DecidedAt >= to {
				backlog++
			}
			for i, k := range keys {
				if m.At < ends[i] && (m.DecidedAt == 0 || m.DecidedAt >= ends[i]) {
					points[k].Backlog++
				}
			}
		}
		if m.At >= from {
			for _, c := range m.Categories {
				items[[3]string{m.SiteID, c, m.Action}]++
			}
			p := points[bucketOf(q.Bucket, spans, m.At)]
			switch m.Action {
			case ingest.ActionFlag:
				p.Flagged++
			case ingest.ActionBlock:
				p.Blocked++
			case ingest.ActionRedact:
				p.Redacted++
			}
		}
		if m.DecidedAt >= from && m.DecidedAt < to {
			decided++
			decisions[m.Decision]++
			byMod[[2]string{m.DecidedBy, m.Decision}]++
			review = append(review, m.DecidedAt-m.At)
			if m.Decision == ingest.DecisionApprove {
				approved++
			}
			points[bucketOf(q.Bucket, spans, m.DecidedAt)].Decided++
		}
	}
	r.Backlog, r.Review = backlog, statsOf(review).duration()
	if decided > 0 {
		r.ApprovedShare = float64(approved) / float64(decided)
	}
	for k, n := range items {
		r.Items = append(r.Items, ModerationCount{SiteID: k[0], Category: k[1], Action: k[2], Count: n})
	}
	for k, n := range decisions {
		r.Decisions = append(r.Decisions, ModerationCount{Decision: k, Count: n})
	}
	for k, n := range byMod {
		r.Moderators = append(r.Moderators, ModerationCount{Moderator: k[0], Decision: k[1], Count: n})
	}
	sortModeration(&r)
	for _, k := range keys {
		r.Series = append(r.Series, *points[k])
	}
	return r
}

// bucketEnds returns the instant (ms) each bucket of keys ends: the first
// instant of the next bucket, the last one at q.To.
func bucketEnds(q Query, spans []zoneSpan, keys []int64) []int64 {
	ends := make([]int64, len(keys))
	for i := range keys {
		ends[i] = q.To.UnixMilli()
	}
	if len(keys) < 2 {
		return ends
	}
	// Walk the range in 15-minute steps (every offset is a multiple of
	// 15 minutes) and note where each bucket starts.
	starts := map[int64]int64{}
	const step = int64(15 * 60 * 1000)
	for ms := q.From.UnixMilli(); ms < q.To.UnixMilli(); ms = (floorDiv(ms, step) + 1) * step {
		if k := bucketOf(q.Bucket, spans, ms); starts[k] == 0 {
			starts[k] = ms
		}
	}
	for i := 0; i+1 < len(keys); i++ {
		if s, ok := starts[keys[i+1]]; ok {
			ends[i] = s
		}
	}
	return ends
}

func sortModeration(r *ModerationReport) {
	sort.Slice(r.Items, func(i, j int) bool {
		a, b := r.Items[i], r.Items[j]
		if a.SiteID != b.SiteID {
			return a.SiteID < b.SiteID
		}
		if a.Category != b.Category {
			return a.Category < b.Category
		}
		return a.Action < b.Action
	})
	sort.Slice(r.Decisions, func(i, j int) bool { return r.Decisions[i].Decision < r.Decisions[j].Decision })
	sort.Slice(r.Moderators, func(i, j int) bool {
		a, b := r.Moderators[i], r.Moderators[j]
		if a.Moderator != b.Moderator {
			return a.Moderator < b.Moderator
		}
		return a.Decision < b.Decision
	})
}

// ModerationDrill selects the moderation facts behind a number of the
// moderation report: What is "items" (verdicts made in the point),
// "decisions" (decided in the point) or "backlog" (undecided at the
// point's end); the other fields narrow (empty = any).
type ModerationDrill struct {
	What      string
	Bucket    string
	SiteID    string
	Category  string
	Action    string
	Decision  string
	Moderator string
	Limit     int
}

// moderationItems filters the facts ModerationFacts returned.
func moderationItems(q Query, d ModerationDrill, facts []ModerationFact) ([]ModerationFact, error) {
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	spans := zoneSpans(q.Location, q.From, q.To)
	lo, hi := from, to
	if d.Bucket != "" && q.Bucket != BucketNone {
		b, err := parseBucketLabel(d.Bucket)
		if err != nil {
			return nil, fmt.Errorf("point %q: %w", d.Bucket, err)
		}
		keys := bucketKeys(q)
		ends := bucketEnds(q, spans, keys)
		found := false
		for i, k := range keys {
			if k == b {
				hi, found = ends[i], true
				if i > 0 {
					lo = ends[i-1]
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("point %q is not a bucket of the range", d.Bucket)
		}
	}
	out := []ModerationFact{}
	for _, m := range facts {
		if m.Action == ingest.ActionAllow || m.At >= to {
			continue
		}
		var in bool
		switch d.What {
		case "", "items":
			in = m.At >= lo && m.At < hi
		case "decisions":
			in = m.DecidedAt >= lo && m.DecidedAt < hi
		case "backlog":
			in = m.ItemID != "" && m.At < hi && (m.DecidedAt == 0 || m.DecidedAt >= hi)
		default:
			return nil, fmt.Errorf("what %q is not items, decisions or backlog", d.What)
		}
		if !in || (d.SiteID != "" && m.SiteID != d.SiteID) || (d.Action != "" && m.Action != d.Action) ||
			(d.Decision != "" && m.Decision != d.Decision) || (d.Moderator != "" && m.DecidedBy != d.Moderator) {
			continue
		}
		if d.Category != "" {
			has := false
			for _, c := range m.Categories {
				has = has || c == d.Category
			}
			if !has {
				continue
			}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].At != out[j].At {
			return out[i].At < out[j].At
		}
		return out[i].VerdictID < out[j].VerdictID
	})
	if d.Limit > 0 && len(out) > d.Limit {
		out = out[:d.Limit]
	}
	return out, nil
}
