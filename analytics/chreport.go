package analytics

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// How the ClickHouse store keeps reports fast (docs/metrics.md, "Query
// performance"):
//
//   - conversation_facts is deduplicated at query time with FINAL, which on
//     18.16 merges the rows it reads in one thread. Everything that can be
//     decided before deduplication goes into PREWHERE so that FINAL merges
//     only the rows of the range: started_at (set once), site_id (part of
//     the key), last_event_at (only grows) and msg_first (only shrinks).
//   - A report runs as several independent queries at once: conversations
//     in chunks of the range cut at bucket starts (a bucket never spans two
//     chunks, so exact quantiles stay exact) and messages in chunks of the
//     range (counts add up).
//   - Median and p90 come from one quantilesExact pass per metric.

// chFilter renders a filter over conversation_facts: pre holds the
// predicates on immutable columns (safe in PREWHERE before FINAL), each
// starting with " AND " (18.16 breaks on a constant PREWHERE with FINAL),
// where the predicates on columns a newer version may change.
func chFilter(f Filter) (pre, where string, preArgs, whereArgs []any) {
	var w []string
	if f.SiteID != "" {
		pre = " AND site_id = ?"
		preArgs = append(preArgs, f.SiteID)
	}
	add := func(col, v string) {
		if v != "" {
			w = append(w, col+" = ?")
			whereArgs = append(whereArgs, v)
		}
	}
	add("team_id", f.TeamID)
	add("agent_id", f.AgentID)
	add("channel", f.Channel)
	switch f.Hours {
	case "in":
		w = append(w, "started_in_hours = 1")
	case "out":
		w = append(w, "started_in_hours = 0")
	}
	where = "1"
	if len(w) > 0 {
		where = strings.Join(w, " AND ")
	}
	return pre, where, preArgs, whereArgs
}

// chBucket renders the bucket of a millisecond column as SQL: the same
// arithmetic as bucketOf, with the zone's offsets over the range inlined.
func chBucket(b Bucket, spans []zoneSpan, col string) string {
	if b == BucketNone {
		return "toInt64(0)"
	}
	sec := "intDiv(" + col + ", 1000)"
	var off string
	if len(spans) == 1 {
		off = fmt.Sprintf("toInt64(%d)", spans[0].Offset)
	} else {
		var sb strings.Builder
		sb.WriteString("multiIf(")
		for _, z := range spans[:len(spans)-1] {
			fmt.Fprintf(&sb, "%s < %d, toInt64(%d), ", sec, z.Until, z.Offset)
		}
		fmt.Fprintf(&sb, "toInt64(%d))", spans[len(spans)-1].Offset)
		off = sb.String()
	}
	local := "(" + sec + " + " + off + ")"
	switch b {
	case BucketHour:
		return "intDiv(" + local + ", 3600) * 3600"
	case BucketDay:
		return "intDiv(" + local + ", 86400) * 86400"
	default: // week, Monday-based
		return "(intDiv(intDiv(" + local + ", 86400) + 3, 7) * 7 - 3) * 86400"
	}
}

func chDim(d Dimension) string {
	switch d {
	case DimSite:
		return "site_id"
	case DimTeam:
		return "team_id"
	case DimAgent:
		return "agent_id"
	case DimChannel:
		return "channel"
	}
	return "''"
}

// msRange is [from, to) in Unix milliseconds.
type msRange struct{ from, to int64 }

// chunkRanges cuts [q.From, q.To) into at most n ranges. With aligned set,
// every cut is the first instant of a bucket, so that (outside a DST
// fall-back, which the caller detects) no bucket spans two ranges;
// otherwise every cut is on a message slot (see slotExact).
func chunkRanges(q Query, spans []zoneSpan, n int, aligned bool) []msRange {
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	if n < 2 || (aligned && q.Bucket == BucketNone) {
		return []msRange{{from, to}}
	}
	var out []msRange
	last := from
	for i := 1; i < n; i++ {
		c := from + (to-from)*int64(i)/int64(n)
		if aligned {
			b := bucketOf(q.Bucket, spans, c)
			c = (b - offsetAt(spans, floorDiv(c, 1000))) * 1000
			if bucketOf(q.Bucket, spans, c) != b || bucketOf(q.Bucket, spans, c-1) == b {
				continue // an offset change near the cut: skip it
			}
		}
		if !aligned {
			c -= c % slotMs // message chunks keep whole slots
		}
		if c <= last || c >= to {
			continue
		}
		out = append(out, msRange{last, c})
		last = c
	}
	return append(out, msRange{last, to})
}

// parallel runs fns at once, each with a context that is cancelled as
// soon as one fails, and returns the first error.
func parallel(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = fn(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Report implements Store: conversations by start bucket and messages by
// send bucket, each as parallel queries over chunks of the range.
func (s *ClickHouseStore) Report(ctx context.Context, q Query) (Report, error) {
	spans := zoneSpans(q.Location, q.From, q.To)
	convChunks := chunkRanges(q, spans, s.parallelism, true)
	msgChunks := chunkRanges(q, spans, s.parallelism, false)
	convOut := make([][]group, len(convChunks))
	msgOut := make([][]group, len(msgChunks))
	var fns []func(context.Context) error
	for i, r := range convChunks {
		fns = append(fns, func(ctx context.Context) (err error) {
			convOut[i], err = s.reportConversations(ctx, q, spans, r)
			return err
		})
	}
	for i, r := range msgChunks {
		fns = append(fns, func(ctx context.Context) (err error) { msgOut[i], err = s.reportMessages(ctx, q, spans, r); return err })
	}
	if err := parallel(ctx, fns...); err != nil {
		return Report{}, err
	}
	var conv, msgs []group
	seen := map[[2]any]bool{}
	split := false
	for _, gs := range convOut {
		for _, g := range gs {
			id := [2]any{g.key, g.bucket}
			split = split || seen[id]
			seen[id] = true
			conv = append(conv, g)
		}
	}
	if split {
		// A bucket fell into two chunks (a DST fall-back at a cut):
		// its quantiles need one query.
		var err error
		if conv, err = s.reportConversations(ctx, q, spans, msRange{q.From.UnixMilli(), q.To.UnixMilli()}); err != nil {
			return Report{}, err
		}
	}
	for _, gs := range msgOut {
		msgs = append(msgs, gs...)
	}
	return assemble(q, s.Backend(), conv, msgs), nil
}

// reportConversations aggregates the conversations started in r.
func (s *ClickHouseStore) reportConversations(ctx context.Context, q Query, spans []zoneSpan, r msRange) ([]group, error) {
	pre, where, preArgs, whereArgs := chFilter(q.Filter)
	fr, reply, wait, res := "first_response_ms", "reply_ms", "queue_wait_ms", "resolution_ms"
	if q.Clock == ClockBusiness {
		fr, reply, wait, res = "first_response_bh_ms", "reply_bh_ms", "queue_wait_bh_ms", "resolution_bh_ms"
	}
	sql := fmt.Sprintf(`SELECT %s AS k, %s AS b,
		count(), countIf(resolved_at > 0), countIf(reopens > 0), sum(reopens),
		countIf(miss_candidate = 1 AND miss_at <= %d), sum(is_offline), sum(has_agent),
		countIf(%[4]s >= 0), quantilesExactIf(0.5, 0.9)(%[4]s, %[4]s >= 0), sumIf(%[4]s, %[4]s >= 0),
		sum(length(%[5]s)), quantilesExactArray(0.5, 0.9)(%[5]s), sumArray(%[5]s),
		sum(length(%[6]s)), quantilesExactArray(0.5, 0.9)(%[6]s), sumArray(%[6]s),
		countIf(%[7]s >= 0), quantilesExactIf(0.5, 0.9)(%[7]s, %[7]s >= 0), sumIf(%[7]s, %[7]s >= 0),
		countIf(csat > 0), countIf(csat >= 4)
		FROM conversation_facts FINAL
		PREWHERE started_at >= ? AND started_at < ? AND started_at > 0%[8]s
		WHERE %[9]s
		GROUP BY k, b`, chDim(q.Split), chBucket(q.Bucket, spans, "started_at"), q.Now.UnixMilli(), fr, reply, wait, res, pre, where)
	args := append(append([]any{r.from, r.to}, preArgs...), whereArgs...)
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable("report conversations", err)
	}
	defer rows.Close()
	var out []group
	for rows.Next() {
		var g group
		var n, resolved, reopened, missed, offline, handled, rated, pos uint64
		var reopens int64
		var frN, replyN, waitN, resN uint64
		var frQ, rpQ, wQ, rQ []int64
		var frSum, rpSum, wSum, rSum int64
		if err := rows.Scan(&g.key, &g.bucket, &n, &resolved, &reopened, &reopens, &missed, &offline, &handled,
			&frN, &frQ, &frSum, &replyN, &rpQ, &rpSum, &waitN, &wQ, &wSum,
			&resN, &rQ, &rSum, &rated, &pos); err != nil {
			return nil, fmt.Errorf("scan report row: %w", err)
		}
		g.conv = ConversationCounts{New: int64(n), Resolved: int64(resolved), Reopened: int64(reopened), Reopens: reopens,
			Missed: int64(missed), Offline: int64(offline), Handled: int64(handled)}
		g.fr = quantileStats(frN, frQ, frSum)
		g.reply = quantileStats(replyN, rpQ, rpSum)
		g.wait = quantileStats(waitN, wQ, wSum)
		g.res = quantileStats(resN, rQ, rSum)
		g.rated, g.pos = int64(rated), int64(pos)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("report conversations", err)
	}
	return out, nil
}

// quantileStats builds durStats from quantilesExact(0.5, 0.9).
func quantileStats(n uint64, q []int64, sum int64) durStats {
	d := durStats{count: int64(n), sum: sum}
	if len(q) == 2 {
		d.p50, d.p90 = q[0], q[1]
	}
	return d
}

// slotMs is the width of the message slots in conversation_facts.msg_slots.
const slotMs = 15 * 60 * 1000

// slotExact reports whether counting messages by 15-minute slot gives the
// same buckets as counting them one by one: r starts and ends on a slot and
// every offset and offset change of the zone falls on a slot boundary (true
// for every zone in use since 1970 but a few historical ones).
func slotExact(spans []zoneSpan, r msRange) bool {
	if r.from%slotMs != 0 || r.to%slotMs != 0 {
		return false
	}
	for i, z := range spans {
		if z.Offset%(slotMs/1000) != 0 || (i < len(spans)-1 && z.Until%(slotMs/1000) != 0) {
			return false
		}
	}
	return true
}

// reportMessages counts the messages sent in r by send bucket, from the
// facts' message lists (deduplicated with the facts). A conversation with
// a message in r has last_event_at ≥ r.from and msg_first < r.to. When
// slotExact allows, it reads the per-slot counts instead of every message.
func (s *ClickHouseStore) reportMessages(ctx context.Context, q Query, spans []zoneSpan, r msRange) ([]group, error) {
	pre, where, preArgs, whereArgs := chFilter(q.Filter)
	var sql string
	var lo, hi int64
	if slotExact(spans, r) {
		sql = fmt.Sprintf(`SELECT %s AS k, %s AS b,
		sumIf(n, sk %% 4 = 0), sumIf(n, sk %% 4 = 1), sumIf(n, sk %% 4 = 2), sumIf(n, sk %% 4 = 3)
		FROM conversation_facts FINAL
		ARRAY JOIN msg_slots AS sk, msg_slot_n AS n
		PREWHERE last_event_at >= ? AND msg_first > 0 AND msg_first < ?%s
		WHERE sk >= ? AND sk < ? AND %s
		GROUP BY k, b`, chDim(q.Split), chBucket(q.Bucket, spans, fmt.Sprintf("intDiv(sk, 4) * %d", slotMs)), pre, where)
		lo, hi = r.from/slotMs*4, r.to/slotMs*4
	} else {
		sql = fmt.Sprintf(`SELECT %s AS k, %s AS b,
		countIf(r = 1), countIf(r = 2), countIf(r = 3), countIf(r = 4)
		FROM conversation_facts FINAL
		ARRAY JOIN msg_at AS m, msg_role AS r
		PREWHERE last_event_at >= ? AND msg_first > 0 AND msg_first < ?%s
		WHERE m >= ? AND m < ? AND %s
		GROUP BY k, b`, chDim(q.Split), chBucket(q.Bucket, spans, "m"), pre, where)
		lo, hi = r.from, r.to
	}
	args := append([]any{r.from, r.to}, preArgs...)
	args = append(append(args, lo, hi), whereArgs...)
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable("report messages", err)
	}
	defer rows.Close()
	var out []group
	for rows.Next() {
		var g group
		var v, a, b, n uint64
		if err := rows.Scan(&g.key, &g.bucket, &v, &a, &b, &n); err != nil {
			return nil, fmt.Errorf("scan message row: %w", err)
		}
		g.msgs = MessageCounts{Visitor: int64(v), Agent: int64(a), Bot: int64(b), Notes: int64(n)}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("report messages", err)
	}
	return out, nil
}
