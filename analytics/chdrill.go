package analytics

import (
	"context"
	"fmt"
	"strings"
)

// Conversations implements Store: drillFacts in SQL. For metrics of
// conversation starts (engagements included) the range and bucket
// (functions of started_at) and a site split are decided in PREWHERE, so
// FINAL reads the wide rows of that bucket only; ratings and surveys read
// the conversations active in the range.
func (s *ClickHouseStore) Conversations(ctx context.Context, q Query, d Drill) ([]ConversationFacts, error) {
	m, ok := drillMetrics[d.Metric]
	if !ok {
		return nil, fmt.Errorf("drill-down metric %q is unknown", d.Metric)
	}
	sfx := ""
	if q.business() {
		sfx = "_bh"
	}
	pred := strings.NewReplacer("%[1]d", fmt.Sprint(q.Now.UnixMilli()), "%[2]s", sfx).Replace(m.sql)
	bucket, byBucket, err := d.point(q)
	if err != nil {
		return nil, err
	}
	spans := zoneSpans(q.Location, q.From, q.To)
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	f := chFilterOf(q.Filter)
	pre, preArgs := f.pre, append([]any(nil), f.preArgs...)
	var where []string
	var whereArgs []any
	if !m.anyScope {
		where = append(where, f.scope)
	}
	if q.Split == DimSite {
		pre += " AND site_id = ?"
		preArgs = append(preArgs, d.Key)
	} else if q.Split != DimNone && m.axis != axisEngagement {
		where = append(where, chDim(q.Split)+" = ?")
		whereArgs = append(whereArgs, d.Key)
	}
	var prewhere string
	var rangeArgs []any
	switch m.axis {
	case axisStart:
		prewhere = "started_at >= ? AND started_at < ? AND started_at > 0"
		rangeArgs = []any{from, to}
		if byBucket {
			pre += " AND " + chBucket(q.Bucket, spans, "started_at") + " = ?"
			preArgs = append(preArgs, bucket)
		}
		w, a := f.convWhere()
		where, whereArgs = append(where, w, pred), append(whereArgs, a...)
	case axisCSAT, axisSurvey:
		col := "csat_at"
		if m.axis == axisSurvey {
			col = "survey_at"
		}
		// Rated or offered conversations active in the range (csat > 0 and
		// survey_at > 0 only go from unset to set between versions).
		prewhere = "started_at > 0 AND started_at < ? AND last_event_at >= ? AND (csat > 0 OR survey_at > 0)"
		rangeArgs = []any{to, from}
		w, a := f.convWhere()
		where, whereArgs = append(where, w, pred, col+" >= ? AND "+col+" < ?"), append(append(whereArgs, a...), from, to)
		if byBucket {
			where = append(where, chBucket(q.Bucket, spans, col)+" = ?")
			whereArgs = append(whereArgs, bucket)
		}
	case axisEngagement:
		prewhere = "started_at >= ? AND started_at < ? AND started_at > 0"
		rangeArgs = []any{from, to}
		if byBucket {
			pre += " AND " + chBucket(q.Bucket, spans, "started_at") + " = ?"
			preArgs = append(preArgs, bucket)
		}
		w, a := chFilterSQL{base: f.base, baseArgs: f.baseArgs}.where("", "")
		where, whereArgs = append(where, w), append(whereArgs, a...)
		cond := []string{pred}
		var condArgs []any
		if f.agent != "" {
			cond, condArgs = append(cond, "ea = ?"), append(condArgs, f.agent)
		}
		if f.team != "" {
			cond, condArgs = append(cond, "eteam = ?"), append(condArgs, f.team)
		}
		switch q.Split {
		case DimAgent:
			cond, condArgs = append(cond, "ea = ?"), append(condArgs, d.Key)
		case DimTeam:
			cond, condArgs = append(cond, "eteam = ?"), append(condArgs, d.Key)
		case DimChannel:
			where, whereArgs = append(where, "channel = ?"), append(whereArgs, d.Key)
		}
		where = append(where, "arrayExists((ea, eteam, es, ee) -> "+strings.Join(cond, " AND ")+
			", assign_agents, eng_team, eng_start, eng_end)")
		whereArgs = append(whereArgs, condArgs...)
	}
	limit := ""
	if d.Limit > 0 {
		limit = fmt.Sprintf(" LIMIT %d", d.Limit)
	}
	args := append(append(rangeArgs, preArgs...), whereArgs...)
	rows, err := s.conn.Query(finalQuery(ctx), `SELECT `+factColumns+` FROM conversation_facts FINAL
		PREWHERE `+prewhere+pre+`
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY started_at, conversation_id`+limit, args...)
	if err != nil {
		return nil, unavailable("drill-down", err)
	}
	defer rows.Close()
	out := []ConversationFacts{}
	for rows.Next() {
		f, err := scanFacts(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("drill-down", err)
	}
	return out, nil
}
