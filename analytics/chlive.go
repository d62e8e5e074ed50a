package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Overview implements Store: overviewOf in two queries at once. The
// floor now (open, waiting, and waits breaching the target today) needs
// every conversation but few columns; today's numbers need many columns
// of the conversations with an event today only (last_event_at only
// grows, so that filters before FINAL).
func (s *ClickHouseStore) Overview(ctx context.Context, siteID string, dayStart, now time.Time) (Overview, error) {
	o := Overview{At: now.UTC()}
	n, d := now.UnixMilli(), dayStart.UnixMilli()
	today := func(col string) string { return fmt.Sprintf("%[1]s >= %[2]d AND %[1]s <= %[3]d", col, d, n) }
	live := func(cond string) string { return "countIf(NOT " + chFlagOffline + " AND " + cond + ")" }
	sla := chFlagSLA(false)
	pre, args := "", []any{}
	if siteID != "" {
		pre = " AND site_id = ?" // part of the key: safe before FINAL
		args = append(args, siteID)
	}
	var open, waiting, waitBreached uint64
	var oldest int64
	floor := func(ctx context.Context) error {
		err := s.conn.QueryRow(finalQuery(ctx), `SELECT countIf(open = 1), countIf(open = 1 AND waiting_since > 0),
			minIf(waiting_since, open = 1 AND waiting_since > 0),
			`+live(fmt.Sprintf("%s = %d AND fr_deadline > 0 AND %s", sla, slaWaiting, today("fr_deadline")))+`
			FROM conversation_facts FINAL PREWHERE started_at > 0`+pre, args...).Scan(&open, &waiting, &oldest, &waitBreached)
		if err != nil {
			return unavailable("overview", err)
		}
		return nil
	}
	cols := []string{
		live(today("started_at")),
		"countIf(" + chFlagOffline + " AND " + today("started_at") + ")",
		live(fmt.Sprintf("bitAnd(flags, %d) != 0 AND %s", 1<<flagMissed, today("miss_at"))),
		live(fmt.Sprintf("%s = %d AND %s", sla, slaLate, today("first_reply_at"))),
		live(fmt.Sprintf("%s = %d AND %s", sla, slaMet, today("first_reply_at"))),
		live(fmt.Sprintf("%s = %d AND %s", sla, slaMissedLate, today("miss_at"))),
		live("csat > 0 AND " + today("csat_at")),
		live("csat >= 4 AND " + today("csat_at")),
	}
	for r := 1; r <= 5; r++ {
		cols = append(cols, live(fmt.Sprintf("csat = %d AND %s", r, today("csat_at"))))
	}
	cols = append(cols, live(today("survey_at")), live("csat > 0 AND "+today("survey_at")))
	var newToday, offline, missed, late, met, missedLate, rated, pos, offered, responses uint64
	var ratings [5]uint64
	day := func(ctx context.Context) error {
		err := s.conn.QueryRow(finalQuery(ctx), `SELECT `+strings.Join(cols, ",\n\t\t")+`
			FROM conversation_facts FINAL PREWHERE started_at > 0 AND last_event_at >= ?`+pre, append([]any{d}, args...)...).Scan(
			&newToday, &offline, &missed, &late, &met, &missedLate, &rated, &pos, &ratings[0], &ratings[1], &ratings[2], &ratings[3], &ratings[4],
			&offered, &responses)
		if err != nil {
			return unavailable("overview", err)
		}
		return nil
	}
	if err := parallel(ctx, floor, day); err != nil {
		return Overview{}, err
	}
	o.Open, o.Waiting, o.NewToday, o.OfflineToday, o.MissedToday = int64(open), int64(waiting), int64(newToday), int64(offline), int64(missed)
	o.LateToday = int64(late)
	o.SLAToday = Target{Met: int64(met), Breached: int64(late + missedLate + waitBreached)}
	o.CSATToday = CSAT{Rated: int64(rated), Positive: int64(pos), Offered: int64(offered), Responses: int64(responses)}
	for i := range ratings {
		o.CSATToday.Ratings[i] = int64(ratings[i])
	}
	finishOverview(&o, oldest, n)
	return o, nil
}
