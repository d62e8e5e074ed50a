package analytics

import (
	"fmt"
	"sort"

	"github.com/parleychat/parley/ingest"
)

// aggregateFacts computes conversation groups in Go from facts already
// narrowed to the query's range and filter. The SQLite store uses it; the
// ClickHouse store computes the same in SQL.
func aggregateFacts(q Query, facts []ConversationFacts) []group {
	spans := zoneSpans(q.Location, q.From, q.To)
	now := q.Now.UnixMilli()
	type acc struct {
		g                   group
		fr, reply, wait, rs []int64
	}
	cells := map[[2]string]*acc{}
	var order [][2]string
	for i := range facts {
		f := &facts[i]
		key := dimValue(f, q.Split)
		b := bucketOf(q.Bucket, spans, f.StartedAt)
		id := [2]string{key, fmt.Sprint(b)}
		a := cells[id]
		if a == nil {
			a = &acc{g: group{key: key, bucket: b}}
			cells[id] = a
			order = append(order, id)
		}
		c := &a.g.conv
		c.New++
		if f.ResolvedAt > 0 {
			c.Resolved++
		}
		if f.Reopens > 0 {
			c.Reopened++
		}
		c.Reopens += f.Reopens
		if f.Missed(now) {
			c.Missed++
		}
		if f.Channel == ingest.ChannelOffline {
			c.Offline++
		}
		if f.AgentID != "" {
			c.Handled++
		}
		fr, reply, wait, res := f.FirstResponseMs, f.ReplyMs, f.QueueWaitMs, f.ResolutionMs
		if q.Clock == ClockBusiness {
			fr, reply, wait, res = f.FirstResponseBhMs, f.ReplyBhMs, f.QueueWaitBhMs, f.ResolutionBhMs
		}
		if fr >= 0 {
			a.fr = append(a.fr, fr)
		}
		if res >= 0 {
			a.rs = append(a.rs, res)
		}
		a.reply = append(a.reply, reply...)
		a.wait = append(a.wait, wait...)
		if f.CSAT > 0 {
			a.g.rated++
			if f.CSAT >= 4 {
				a.g.pos++
			}
		}
	}
	out := make([]group, 0, len(order))
	for _, id := range order {
		a := cells[id]
		a.g.fr, a.g.reply, a.g.wait, a.g.res = statsOf(a.fr), statsOf(a.reply), statsOf(a.wait), statsOf(a.rs)
		out = append(out, a.g)
	}
	return out
}

// aggregateMessages counts messages sent in [From, To) per cell, from
// the message lists of facts (any conversation active in the range).
func aggregateMessages(q Query, facts []ConversationFacts) []group {
	spans := zoneSpans(q.Location, q.From, q.To)
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	cells := map[[2]string]*group{}
	var out []*group
	for i := range facts {
		f := &facts[i]
		key := dimValue(f, q.Split)
		for j, at := range f.MsgAt {
			if at < from || at >= to {
				continue
			}
			b := bucketOf(q.Bucket, spans, at)
			id := [2]string{key, fmt.Sprint(b)}
			g := cells[id]
			if g == nil {
				g = &group{key: key, bucket: b}
				cells[id] = g
				out = append(out, g)
			}
			switch f.MsgRole[j] {
			case roleVisitor:
				g.msgs.Visitor++
			case roleAgent:
				g.msgs.Agent++
			case roleBot:
				g.msgs.Bot++
			case roleNote:
				g.msgs.Notes++
			}
		}
	}
	res := make([]group, len(out))
	for i, g := range out {
		res[i] = *g
	}
	return res
}

// drillFacts filters facts (already in range and filter) to a data point.
func drillFacts(q Query, d Drill, facts []ConversationFacts) ([]ConversationFacts, error) {
	pred, ok := drillMetrics[d.Metric]
	if !ok {
		return nil, fmt.Errorf("drill-down metric %q is unknown", d.Metric)
	}
	var bucket int64
	if d.Bucket != "" && q.Bucket != BucketNone {
		b, err := parseBucketLabel(d.Bucket)
		if err != nil {
			return nil, fmt.Errorf("drill-down bucket %q: %w", d.Bucket, err)
		}
		bucket = b
	}
	spans := zoneSpans(q.Location, q.From, q.To)
	now := q.Now.UnixMilli()
	out := []ConversationFacts{}
	for i := range facts {
		f := &facts[i]
		if d.Bucket != "" && q.Bucket != BucketNone && bucketOf(q.Bucket, spans, f.StartedAt) != bucket {
			continue
		}
		if q.Split != DimNone && dimValue(f, q.Split) != d.Key {
			continue
		}
		if !pred(f, now) {
			continue
		}
		out = append(out, *f)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].StartedAt != out[j].StartedAt {
			return out[i].StartedAt < out[j].StartedAt
		}
		return out[i].ConversationID < out[j].ConversationID
	})
	if d.Limit > 0 && len(out) > d.Limit {
		out = out[:d.Limit]
	}
	return out, nil
}

// moderationReport computes moderation metrics in Go from verdict facts
// of the range (At in [From, To)); backlog also needs the earlier items,
// so facts holds every verdict with At < To.
func moderationReport(q Query, facts []ModerationFact) ModerationReport {
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	items := map[[2]string]int64{}
	decisions := map[string]int64{}
	var review []int64
	var backlog int64
	for _, m := range facts {
		if m.ItemID != "" && (m.DecidedAt == 0 || m.DecidedAt >= to) {
			backlog++
		}
		if m.At < from {
			continue
		}
		for _, c := range m.Categories {
			items[[2]string{c, m.Action}]++
		}
		if m.DecidedAt > 0 && m.DecidedAt < to {
			decisions[m.Decision]++
			review = append(review, m.DecidedAt-m.At)
		}
	}
	r := ModerationReport{Items: []ModerationCount{}, Decisions: []ModerationCount{}, Backlog: backlog, Review: statsOf(review).duration()}
	for k, n := range items {
		r.Items = append(r.Items, ModerationCount{Category: k[0], Action: k[1], Count: n})
	}
	for k, n := range decisions {
		r.Decisions = append(r.Decisions, ModerationCount{Decision: k, Count: n})
	}
	sortModeration(&r)
	return r
}

func sortModeration(r *ModerationReport) {
	sort.Slice(r.Items, func(i, j int) bool {
		if r.Items[i].Category != r.Items[j].Category {
			return r.Items[i].Category < r.Items[j].Category
		}
		return r.Items[i].Action < r.Items[j].Action
	})
	sort.Slice(r.Decisions, func(i, j int) bool { return r.Decisions[i].Decision < r.Decisions[j].Decision })
}
