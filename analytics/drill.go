package analytics

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/parleychat/parley/ingest"
)

// drillAxis is the time a drill-down metric is bucketed by, the same as
// the report number it explains.
type drillAxis uint8

const (
	axisStart      drillAxis = iota // conversation start
	axisCSAT                        // rating given
	axisSurvey                      // survey offered
	axisEngagement                  // conversation start, selecting engagements
)

// drillMetric selects the conversations behind one report number.
type drillMetric struct {
	axis drillAxis
	// anyScope: offline forms count whatever the query's scope.
	anyScope bool
	// conv selects conversations (all axes but engagements).
	conv func(f *ConversationFacts, q Query) bool
	// eng selects engagement e (axisEngagement).
	eng func(f *ConversationFacts, e int) bool
	// sql is the same as a ClickHouse predicate over conversation_facts
	// (engagements: over the ARRAY JOIN aliases ea, ef, es, ee); %[1]d is
	// now in ms, %[2]s the clock suffix ("" or "_bh").
	sql string
}

func always(*ConversationFacts, Query) bool { return true }

// drillMetrics are the drill-down metrics by name (docs/metrics.md).
var drillMetrics = map[string]drillMetric{
	"":        {axis: axisStart, anyScope: true, conv: always, sql: "1"},
	"new":     {axis: axisStart, conv: always, sql: "1"},
	"offline": {axis: axisStart, anyScope: true, conv: func(f *ConversationFacts, _ Query) bool { return f.Channel == ingest.ChannelOffline }, sql: "is_offline = 1"},
	"resolved": {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return f.ResolvedAt > 0 },
		sql: "resolved_at > 0"},
	"reopened": {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return f.Reopens > 0 }, sql: "reopens > 0"},
	"missed":   {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return f.Missed }, sql: "miss_candidate = 1"},
	"late": {axis: axisStart, conv: func(f *ConversationFacts, q Query) bool { c, _ := f.sla(q.business()); return c == slaLate },
		sql: fmt.Sprintf("sla%%[2]s = %d", slaLate)},
	"sla_met": {axis: axisStart, conv: func(f *ConversationFacts, q Query) bool { c, _ := f.sla(q.business()); return c == slaMet },
		sql: fmt.Sprintf("sla%%[2]s = %d", slaMet)},
	"sla_breached": {axis: axisStart, conv: func(f *ConversationFacts, q Query) bool {
		c, d := f.sla(q.business())
		return frBreached(c, d, q.Now.UnixMilli())
	}, sql: chBreached("sla%[2]s", "fr_deadline%[2]s", "%[1]d")},
	"handled":         {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return f.AgentID != "" }, sql: "has_agent = 1"},
	"first_response":  {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return f.FirstResponseMs >= 0 }, sql: "first_response_ms >= 0"},
	"reply_time":      {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return len(f.ReplyMs) > 0 }, sql: "notEmpty(reply_ms)"},
	"queue_wait":      {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return len(f.QueueWaitMs) > 0 }, sql: "notEmpty(queue_wait_ms)"},
	"resolution":      {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return f.ResolutionMs >= 0 }, sql: "resolution_ms >= 0"},
	"resolution_last": {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool { return f.ResolutionLastMs >= 0 }, sql: "resolution_last_ms >= 0"},
	"closed_inactive": {axis: axisStart, conv: func(f *ConversationFacts, _ Query) bool {
		return f.LastResolvedAt > 0 && f.CloseReason == closeReasonInactive
	}, sql: "last_resolved_at > 0 AND close_reason = '" + closeReasonInactive + "'"},
	"csat":          {axis: axisCSAT, conv: func(f *ConversationFacts, _ Query) bool { return f.CSAT > 0 }, sql: "csat > 0"},
	"csat_positive": {axis: axisCSAT, conv: func(f *ConversationFacts, _ Query) bool { return f.CSAT >= 4 }, sql: "csat >= 4"},
	"csat_1":        csatIs(1), "csat_2": csatIs(2), "csat_3": csatIs(3), "csat_4": csatIs(4), "csat_5": csatIs(5),
	"surveys":     {axis: axisSurvey, conv: func(f *ConversationFacts, _ Query) bool { return f.SurveyAt > 0 }, sql: "survey_at > 0"},
	"engagements": {axis: axisEngagement, eng: func(*ConversationFacts, int) bool { return true }, sql: "1"},
	"transfers_in": {axis: axisEngagement, eng: func(f *ConversationFacts, e int) bool { return f.EngStart[e] == engStartTransfer },
		sql: fmt.Sprintf("es = %d", engStartTransfer)},
	"transfers_out": {axis: axisEngagement, eng: func(f *ConversationFacts, e int) bool { return f.EngEnd[e] == engEndTransferred },
		sql: fmt.Sprintf("ee = %d", engEndTransferred)},
}

func csatIs(n int64) drillMetric {
	return drillMetric{axis: axisCSAT, conv: func(f *ConversationFacts, _ Query) bool { return f.CSAT == n }, sql: fmt.Sprintf("csat = %d", n)}
}

// drillNames lists the drill-down metric names, sorted.
func drillNames() []string {
	names := make([]string, 0, len(drillMetrics))
	for k := range drillMetrics {
		if k != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// axisTime is the time of f that a metric on axis is bucketed by (not
// for engagements).
func axisTime(f *ConversationFacts, axis drillAxis) int64 {
	switch axis {
	case axisCSAT:
		return f.CSATAt
	case axisSurvey:
		return f.SurveyAt
	}
	return f.StartedAt
}

// point returns the bucket a drill-down selects, if it selects one (a
// bucketed query and a point label).
func (d Drill) point(q Query) (bucket int64, byBucket bool, err error) {
	if d.Bucket == "" || q.Bucket == BucketNone {
		return 0, false, nil
	}
	b, err := parseBucketLabel(d.Bucket)
	if err != nil {
		return 0, false, fmt.Errorf("drill-down bucket %q: %w", d.Bucket, err)
	}
	return b, true, nil
}

// drillFacts filters facts (matching the site, channel and hours filters,
// active in the range) to the conversations behind a data point.
func drillFacts(q Query, d Drill, facts []ConversationFacts) ([]ConversationFacts, error) {
	m, ok := drillMetrics[d.Metric]
	if !ok {
		return nil, fmt.Errorf("drill-down metric %q is unknown", d.Metric)
	}
	bucket, byBucket, err := d.point(q)
	if err != nil {
		return nil, err
	}
	spans := zoneSpans(q.Location, q.From, q.To)
	inPoint := func(ms int64) bool {
		return q.inRange(ms) && (!byBucket || bucketOf(q.Bucket, spans, ms) == bucket)
	}
	out := []ConversationFacts{}
	for i := range facts {
		f := &facts[i]
		if f.StartedAt <= 0 || (!m.anyScope && !q.inScope(f)) {
			continue
		}
		if m.axis == axisEngagement {
			found := false
			for e := range f.AssignAgents {
				if inPoint(f.StartedAt) && q.Filter.engagementMatches(f, e) &&
					(q.Split == DimNone || engagementKey(f, e, q.Split) == d.Key) && m.eng(f, e) {
					found = true
					break
				}
			}
			if found {
				out = append(out, *f)
			}
			continue
		}
		if !q.Filter.matches(f) || !inPoint(axisTime(f, m.axis)) {
			continue
		}
		if q.Split != DimNone && dimValue(f, q.Split) != d.Key {
			continue
		}
		if m.conv(f, q) {
			out = append(out, *f)
		}
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

// drillReason says why a conversation counts as missed, late or breaching
// the first-response target at now on the query's clock ("" otherwise).
func drillReason(f *ConversationFacts, q Query) string {
	if f.Missed {
		return missReasonText(f.MissReason)
	}
	bh := q.business()
	code, deadline := f.sla(bh)
	fr := f.FirstResponseMs
	clock := ""
	if bh {
		fr, clock = f.FirstResponseBhMs, " of business time"
	}
	target := humanDuration(f.FRTargetMs)
	switch {
	case code == slaLate:
		return fmt.Sprintf("answered late: first reply after %s%s (target %s)", humanDuration(fr), clock, target)
	case frBreached(code, deadline, q.Now.UnixMilli()):
		return fmt.Sprintf("no reply yet, waiting longer than the %s target%s", target, clock)
	}
	return ""
}

// humanDuration writes milliseconds as "1 h 2 min 3 s" (whole seconds).
func humanDuration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d < time.Second {
		return fmt.Sprintf("%d ms", ms)
	}
	s := int64(d / time.Second)
	var parts []string
	for _, u := range []struct {
		n    int64
		name string
	}{{86400, "d"}, {3600, "h"}, {60, "min"}, {1, "s"}} {
		if s >= u.n {
			parts = append(parts, fmt.Sprintf("%d %s", s/u.n, u.name))
			s %= u.n
		}
	}
	return strings.Join(parts, " ")
}
