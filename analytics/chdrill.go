package analytics

import (
	"context"
	"fmt"
	"strings"
)

// chDrillMetrics are drillMetrics as SQL predicates (%d = now in ms).
var chDrillMetrics = map[string]string{
	"": "1", "new": "1",
	"resolved":       "resolved_at > 0",
	"reopened":       "reopens > 0",
	"missed":         "miss_candidate = 1 AND miss_at <= %d",
	"offline":        "channel = 'offline_form'",
	"handled":        "agent_id != ''",
	"first_response": "first_response_ms >= 0",
	"reply_time":     "length(reply_ms) > 0",
	"queue_wait":     "length(queue_wait_ms) > 0",
	"resolution":     "resolution_ms >= 0",
	"csat":           "csat > 0",
	"csat_positive":  "csat >= 4",
}

// Conversations implements Store. The bucket (a function of started_at)
// and a site split are decided in PREWHERE, so FINAL reads the wide rows
// of that bucket only.
func (s *ClickHouseStore) Conversations(ctx context.Context, q Query, d Drill) ([]ConversationFacts, error) {
	pred, ok := chDrillMetrics[d.Metric]
	if !ok {
		return nil, fmt.Errorf("drill-down metric %q is unknown", d.Metric)
	}
	if strings.Contains(pred, "%d") {
		pred = fmt.Sprintf(pred, q.Now.UnixMilli())
	}
	pre, where, preArgs, whereArgs := chFilter(q.Filter)
	if d.Bucket != "" && q.Bucket != BucketNone {
		b, err := parseBucketLabel(d.Bucket)
		if err != nil {
			return nil, fmt.Errorf("drill-down bucket %q: %w", d.Bucket, err)
		}
		pre += " AND " + chBucket(q.Bucket, zoneSpans(q.Location, q.From, q.To), "started_at") + " = ?"
		preArgs = append(preArgs, b)
	}
	switch q.Split {
	case DimNone:
	case DimSite:
		pre += " AND site_id = ?"
		preArgs = append(preArgs, d.Key)
	default:
		where += " AND " + chDim(q.Split) + " = ?"
		whereArgs = append(whereArgs, d.Key)
	}
	limit := ""
	if d.Limit > 0 {
		limit = fmt.Sprintf(" LIMIT %d", d.Limit)
	}
	args := append(append([]any{q.From.UnixMilli(), q.To.UnixMilli()}, preArgs...), whereArgs...)
	rows, err := s.conn.Query(ctx, `SELECT `+factColumns+` FROM conversation_facts FINAL
		PREWHERE started_at >= ? AND started_at < ? AND started_at > 0`+pre+`
		WHERE `+where+` AND `+pred+`
		ORDER BY started_at, conversation_id`+limit, args...)
	if err != nil {
		return nil, unavailable("drill-down", err)
	}
	defer rows.Close()
	out := []ConversationFacts{}
	for rows.Next() {
		var f ConversationFacts
		var version uint64
		var inHours, miss, open uint8
		var roles []uint8
		if err := rows.Scan(&f.SiteID, &f.ConversationID, &version, &f.Channel, &f.TeamID, &f.AgentID, &f.VisitorID,
			&f.StartedAt, &inHours, &f.LastEventAt, &f.WaitFrom, &f.FirstReplyAt, &f.FirstResponseMs, &f.FirstResponseBhMs,
			&f.ReplyMs, &f.ReplyBhMs, &f.QueueWaitMs, &f.QueueWaitBhMs, &f.ResolvedAt, &f.ResolutionMs, &f.ResolutionBhMs, &f.Reopens,
			&miss, &f.MissAt, &f.LeftAt, &f.CSAT, &f.CSATAt, &f.MsgsVisitor, &f.MsgsAgent, &f.MsgsBot, &f.Notes, &f.MsgAt, &roles, &open, &f.WaitingSince,
			&f.AssignAgents, &f.AssignFrom, &f.AssignTo); err != nil {
			return nil, fmt.Errorf("scan facts: %w", err)
		}
		f.Version, f.StartedInHours, f.MissCandidate, f.Open = int64(version), inHours == 1, miss == 1, open == 1
		f.MsgRole = RoleCodes(roles)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("drill-down", err)
	}
	return out, nil
}
