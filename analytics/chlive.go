package analytics

import (
	"context"
	"time"
)

// Overview implements Store. It stays one query: sharding it (by a hash of
// the conversation id in PREWHERE) cost more in hashing than it saved.
func (s *ClickHouseStore) Overview(ctx context.Context, siteID string, dayStart, now time.Time) (Overview, error) {
	o := Overview{At: now.UTC()}
	n, d := now.UnixMilli(), dayStart.UnixMilli()
	var open, waiting, newToday, missed, rated, pos uint64
	var oldest int64
	pre, args := "", []any{d, n, d, n, d, n, d, n}
	if siteID != "" {
		pre = " PREWHERE site_id = ?" // part of the key: safe before FINAL
		args = append(args, siteID)
	}
	err := s.conn.QueryRow(ctx, `SELECT
		countIf(open = 1 AND started_at > 0),
		countIf(open = 1 AND started_at > 0 AND waiting_since > 0),
		minIf(waiting_since, open = 1 AND started_at > 0 AND waiting_since > 0),
		countIf(started_at >= ? AND started_at <= ?),
		countIf(miss_candidate = 1 AND miss_at >= ? AND miss_at <= ?),
		countIf(csat > 0 AND csat_at >= ? AND csat_at <= ?),
		countIf(csat >= 4 AND csat_at >= ? AND csat_at <= ?)
		FROM conversation_facts FINAL`+pre, args...).Scan(&open, &waiting, &oldest, &newToday, &missed, &rated, &pos)
	if err != nil {
		return Overview{}, unavailable("overview", err)
	}
	o.Open, o.Waiting, o.NewToday, o.MissedToday = int64(open), int64(waiting), int64(newToday), int64(missed)
	o.CSATToday = CSAT{Rated: int64(rated), Positive: int64(pos)}
	finishOverview(&o, oldest, n)
	return o, nil
}
