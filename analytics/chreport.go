package analytics

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/parleychat/parley/ingest"
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

// chFilterSQL is a filter over conversation_facts. pre holds the
// predicates on immutable columns (safe in PREWHERE before FINAL), each
// starting with " AND " (18.16 breaks on a constant PREWHERE with FINAL);
// the rest go in WHERE, after FINAL: channel and hours on the
// conversation, agent and team on the conversation (conversation
// metrics) or on the engagement (engagement metrics, after ARRAY JOIN
// with the aliases ea and eteam).
type chFilterSQL struct {
	pre      string
	preArgs  []any
	base     []string
	baseArgs []any
	agent    string
	team     string
	scope    string
}

func chFilterOf(f Filter) chFilterSQL {
	var c chFilterSQL
	if f.SiteID != "" {
		c.pre = " AND site_id = ?"
		c.preArgs = []any{f.SiteID}
	}
	if len(f.Sites) > 0 {
		c.pre += " AND site_id IN (?" + strings.Repeat(", ?", len(f.Sites)-1) + ")"
		for _, s := range f.Sites {
			c.preArgs = append(c.preArgs, s)
		}
	}
	if f.Channel != "" {
		c.base = append(c.base, "channel = ?")
		c.baseArgs = append(c.baseArgs, f.Channel)
	}
	switch f.Hours {
	case "in":
		c.base = append(c.base, "started_in_hours = 1")
	case "out":
		c.base = append(c.base, "started_in_hours = 0")
	}
	c.agent, c.team = f.AgentID, f.TeamID
	c.scope = "is_offline = 0"
	if f.Channel == ingest.ChannelOffline {
		c.scope = "is_offline = 1"
	}
	return c
}

// where renders the WHERE part with the agent and team columns given.
func (c chFilterSQL) where(agentCol, teamCol string) (string, []any) {
	w := append([]string(nil), c.base...)
	args := append([]any(nil), c.baseArgs...)
	if c.agent != "" {
		w = append(w, agentCol+" = ?")
		args = append(args, c.agent)
	}
	if c.team != "" {
		w = append(w, teamCol+" = ?")
		args = append(args, c.team)
	}
	if len(w) == 0 {
		return "1", nil
	}
	return strings.Join(w, " AND "), args
}

func (c chFilterSQL) convWhere() (string, []any)       { return c.where("agent_id", "team_id") }
func (c chFilterSQL) engagementWhere() (string, []any) { return c.where("ea", "eteam") }

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
// soon as one fails, and returns the first failure (not the cancellations
// it caused).
func parallel(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return first
}

// Report implements Store: conversations by start bucket (with their
// engagements unless split or filtered by agent or team), and messages,
// ratings and surveys by their own time, each as parallel queries over
// chunks of the range; engagements by agent or team are one more query.
// FINAL is the cost of every query (docs/metrics.md, "Query
// performance"), so the parts share passes where they can.
func (s *ClickHouseStore) Report(ctx context.Context, q Query) (Report, error) {
	spans := zoneSpans(q.Location, q.From, q.To)
	convChunks := chunkRanges(q, spans, s.parallelism, true)
	msgChunks := chunkRanges(q, spans, s.parallelism, false)
	convOut := make([][]group, len(convChunks))
	msgOut := make([][]group, len(msgChunks))
	var engOut []group
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
	if !engagementsWithConversations(q) {
		fns = append(fns, func(ctx context.Context) (err error) { engOut, err = s.reportEngagements(ctx, q, spans); return err })
	}
	if err := parallel(ctx, fns...); err != nil {
		return Report{}, err
	}
	var conv, msgs []group
	seen := map[[2]any]bool{}
	split := false
	for _, gs := range convOut {
		for _, g := range gs {
			if g.hasConv {
				id := [2]any{g.key, g.bucket}
				split = split || seen[id]
				seen[id] = true
			}
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
	return assemble(q, s.Backend(), conv, msgs, engOut), nil
}

// engagementsWithConversations reports whether the conversation query
// computes the engagements too: when the engagements' split value and
// filters are their conversation's (not split or filtered by agent or team).
func engagementsWithConversations(q Query) bool {
	return q.Split != DimAgent && q.Split != DimTeam && q.Filter.AgentID == "" && q.Filter.TeamID == ""
}

// chLowerLevel is a level just below 0.5: quantileExact's index is
// floor(level × n), so it picks the lower middle sample of an even count
// (n/2 − 1) and the middle one of an odd count, for any n below 5·10⁹.
// With 0.5 (the upper middle) it gives the median of medianOf in one pass.
const chLowerLevel = "0.4999999999"

// chQuantiles renders the aggregates of one duration metric: count,
// [lower middle, upper middle, p90], sum. x is a column or expression,
// cond when it counts (arrays: cond is "").
func chQuantiles(x, cond string) string {
	if cond == "" {
		return fmt.Sprintf("sum(length(%[1]s)), quantilesExactArray(%[2]s, 0.5, 0.9)(%[1]s), sumArray(%[1]s)", x, chLowerLevel)
	}
	return fmt.Sprintf("countIf(%[2]s), quantilesExactIf(%[3]s, 0.5, 0.9)(%[1]s, %[2]s), sumIf(%[1]s, %[2]s)", x, cond, chLowerLevel)
}

// chDur holds one duration metric's row values.
type chDur struct {
	n   uint64
	q   []int64
	sum int64
}

func (d *chDur) targets() []any { return []any{&d.n, &d.q, &d.sum} }

func (d chDur) stats() durStats {
	out := durStats{count: int64(d.n), sum: d.sum}
	if d.n > 0 && len(d.q) == 3 {
		out.p50, out.p90 = medianFrom(d.q[1], d.q[0]), d.q[2]
	}
	return out
}

// chBreached is the SQL of frBreached.
func chBreached(code, deadline, now string) string {
	return fmt.Sprintf("(%[1]s IN (%[4]d, %[5]d) OR (%[1]s = %[6]d AND %[2]s > 0 AND %[2]s <= %[3]s))", code, deadline, now, slaLate, slaMissedLate, slaWaiting)
}

// Expressions over the flags column (packFlags).
var (
	chFlagOffline = fmt.Sprintf("bitAnd(flags, %d) != 0", 1<<flagOffline)
	chFlagClose   = fmt.Sprintf("bitAnd(bitShiftRight(flags, %d), 7)", flagClose)
)

// chFlagSLA is the first-response outcome on the query's clock.
func chFlagSLA(business bool) string {
	shift := flagSLA
	if business {
		shift = flagSLABh
	}
	return fmt.Sprintf("bitAnd(bitShiftRight(flags, %d), 7)", shift)
}

func chFlag(bit int) string { return fmt.Sprintf("sum(bitAnd(flags, %d) != 0)", 1<<bit) }

// reportConversations aggregates the conversations started in r, in
// rows by (split key, bucket, offline).
func (s *ClickHouseStore) reportConversations(ctx context.Context, q Query, spans []zoneSpan, r msRange) ([]group, error) {
	f := chFilterOf(q.Filter)
	where, whereArgs := f.convWhere()
	sfx := ""
	if q.business() {
		sfx = "_bh"
	}
	fr, res, resLast := "first_response"+sfx+"_ms", "resolution"+sfx+"_ms", "resolution_last"+sfx+"_ms"
	reply, wait := "reply"+sfx+"_ms", "queue_wait"+sfx+"_ms"
	sla := chFlagSLA(q.business())
	withEng := engagementsWithConversations(q)
	engSQL := ""
	if withEng {
		sums := "eng_sums" + sfx
		engSQL = fmt.Sprintf(`,
		sum(%[1]s[1]), sum(%[1]s[2]), sum(%[1]s[3]),
		`, sums) + chQuantiles("eng_fr_all"+sfx, "") + `,
		` + chQuantiles("eng_rep_all"+sfx, "") + `,
		` + chQuantiles("eng_hand", "") + fmt.Sprintf(`,
		sum(%[1]s[4]), sum(%[1]s[5]), sum(%[1]s[7]), sum(%[1]s[6])`, sums)
	}
	closes := []string{"countIf(" + chFlagClose + " > 0)"}
	for c := 1; c <= 4; c++ {
		closes = append(closes, fmt.Sprintf("countIf(%s = %d)", chFlagClose, c))
	}
	sql := `SELECT ` + chDim(q.Split) + ` AS k, ` + chBucket(q.Bucket, spans, "started_at") + ` AS b, ` + chFlagOffline + ` AS off,
		count(), ` + chFlag(flagResolved) + `, ` + chFlag(flagReopened) + `, sum(bitShiftRight(flags, ` + fmt.Sprint(flagReopens) + `)),
		` + chFlag(flagMissed) + `, countIf(` + sla + ` = ` + fmt.Sprint(slaLate) + `), ` + chFlag(flagHasAgent) + `,
		` + strings.Join(closes, ", ") + `,
		` + chQuantiles(fr, fr+" >= 0") + `,
		` + chQuantiles(reply, "") + `,
		` + chQuantiles(wait, "") + `,
		` + chQuantiles(res, res+" >= 0") + `,
		` + chQuantiles(resLast, resLast+" >= 0") + `,
		countIf(` + sla + ` = ` + fmt.Sprint(slaMet) + `), countIf(` + chBreached(sla, "fr_deadline"+sfx, fmt.Sprint(q.Now.UnixMilli())) + `),
		sum(replies_in_target` + sfx + `), sum(greatest(length(` + reply + `) - 1, 0))` + engSQL + `
		FROM conversation_facts FINAL
		PREWHERE started_at >= ? AND started_at < ? AND started_at > 0` + f.pre + `
		WHERE ` + where + `
		GROUP BY k, b, off`
	args := append(append([]any{r.from, r.to}, f.preArgs...), whereArgs...)
	rows, err := s.conn.Query(finalQuery(ctx), sql, args...)
	if err != nil {
		return nil, unavailable("report conversations", err)
	}
	defer rows.Close()
	offlineScope := q.Filter.Channel == ingest.ChannelOffline
	var out []group
	for rows.Next() {
		var g group
		var offline uint8
		var n, resolved, reopened, reopens, missed, late, handled, closed, byAgent, byBot, byVisitor, byInactive, met, breached uint64
		var inTarget, later int64
		var dfr, drep, dwait, dres, dlast chDur
		dest := []any{&g.key, &g.bucket, &offline, &n, &resolved, &reopened, &reopens, &missed, &late, &handled,
			&closed, &byAgent, &byBot, &byVisitor, &byInactive}
		for _, d := range []*chDur{&dfr, &drep, &dwait, &dres, &dlast} {
			dest = append(dest, d.targets()...)
		}
		dest = append(dest, &met, &breached, &inTarget, &later)
		var en engRow
		if withEng {
			dest = append(dest, en.targets()...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan report row: %w", err)
		}
		isOffline := offline == 1
		if isOffline {
			g.conv.Offline = int64(n)
		}
		if isOffline == offlineScope {
			g.hasConv = true
			g.conv.New, g.conv.Resolved, g.conv.Reopened, g.conv.Reopens = int64(n), int64(resolved), int64(reopened), int64(reopens)
			g.conv.Missed, g.conv.Late, g.conv.Handled = int64(missed), int64(late), int64(handled)
			g.conv.ClosedBy = ClosedBy{Agent: int64(byAgent), Bot: int64(byBot), Visitor: int64(byVisitor), Inactive: int64(byInactive),
				Other: int64(closed - byAgent - byBot - byVisitor - byInactive)}
			g.fr, g.reply, g.wait, g.res, g.resLast = dfr.stats(), drep.stats(), dwait.stats(), dres.stats(), dlast.stats()
			g.sla.FirstResponse = Target{Met: int64(met), Breached: int64(breached)}
			g.sla.Replies = Target{Met: inTarget, Breached: later - inTarget}
			if withEng {
				en.fill(&g)
			}
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("report conversations", err)
	}
	return out, nil
}

// engRow is one row's engagement aggregates: count, transfers in and
// out, first response, replies, handling, first responses within target
// and judged, later replies within target and all.
type engRow struct {
	count, tin, tout, frMet, frN, repMet, later int64
	fr, rep, hand                               chDur
}

func (e *engRow) targets() []any {
	out := []any{&e.count, &e.tin, &e.tout}
	for _, d := range []*chDur{&e.fr, &e.rep, &e.hand} {
		out = append(out, d.targets()...)
	}
	return append(out, &e.frMet, &e.frN, &e.repMet, &e.later)
}

func (e *engRow) fill(g *group) {
	g.hasEng = true
	g.eng = Engagements{Count: e.count, TransfersIn: e.tin, TransfersOut: e.tout}
	g.eng.SLA.FirstResponse = Target{Met: e.frMet, Breached: e.frN - e.frMet}
	g.eng.SLA.Replies = Target{Met: e.repMet, Breached: e.later - e.repMet}
	g.engFR, g.engReply, g.engHandling = e.fr.stats(), e.rep.stats(), e.hand.stats()
}

// reportEngagements aggregates the engagements of the conversations
// started in the range by engagement agent or team (split or filter), in
// the bucket their conversation started in.
func (s *ClickHouseStore) reportEngagements(ctx context.Context, q Query, spans []zoneSpan) ([]group, error) {
	f := chFilterOf(q.Filter)
	where, whereArgs := f.engagementWhere()
	sfx := ""
	if q.business() {
		sfx = "_bh"
	}
	key := chDim(q.Split)
	switch q.Split {
	case DimAgent:
		key = "ea"
	case DimTeam:
		key = "eteam"
	}
	// Only the lists the query reads go through FINAL.
	joins := []string{"assign_from AS ef", "assign_to AS eto", "eng_start AS es", "eng_end AS ee",
		"eng_fr" + sfx + "_ms AS efr", "eng_reply" + sfx + "_ms AS erep", "eng_replies_in_target" + sfx + " AS ein"}
	if q.Split == DimAgent || f.agent != "" {
		joins = append(joins, "assign_agents AS ea")
	}
	if q.Split == DimTeam || f.team != "" {
		joins = append(joins, "eng_team AS eteam")
	}
	sql := `SELECT ` + key + ` AS k, ` + chBucket(q.Bucket, spans, "started_at") + ` AS b,
		count(), countIf(es = ` + fmt.Sprint(engStartTransfer) + `), countIf(ee = ` + fmt.Sprint(engEndTransferred) + `),
		` + chQuantiles("efr", "efr >= 0") + `,
		` + chQuantiles("erep", "") + `,
		` + chQuantiles("eto - ef", "eto > 0") + `,
		countIf(efr >= 0 AND efr <= fr_target_ms), countIf(efr >= 0), sum(ein), sum(greatest(length(erep) - 1, 0))
		FROM conversation_facts FINAL
		ARRAY JOIN ` + strings.Join(joins, ", ") + `
		PREWHERE started_at >= ? AND started_at < ? AND started_at > 0 AND has_agent = 1` + f.pre + `
		WHERE ` + where + ` AND ` + f.scope + `
		GROUP BY k, b`
	args := append(append([]any{q.From.UnixMilli(), q.To.UnixMilli()}, f.preArgs...), whereArgs...)
	rows, err := s.conn.Query(finalQuery(ctx), sql, args...)
	if err != nil {
		return nil, unavailable("report engagements", err)
	}
	defer rows.Close()
	var out []group
	for rows.Next() {
		var g group
		var e engRow
		var n, in, outN, met, judged uint64
		dest := []any{&g.key, &g.bucket, &n, &in, &outN}
		for _, d := range []*chDur{&e.fr, &e.rep, &e.hand} {
			dest = append(dest, d.targets()...)
		}
		dest = append(dest, &met, &judged, &e.repMet, &e.later)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan engagement row: %w", err)
		}
		e.count, e.tin, e.tout, e.frMet, e.frN = int64(n), int64(in), int64(outN), int64(met), int64(judged)
		e.fill(&g)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("report engagements", err)
	}
	return out, nil
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
// facts' message lists (deduplicated with the facts), and in the same
// pass the ratings given and the surveys offered in r: they are entries
// of the same lists (allEntries). A conversation with a message in r has
// last_event_at ≥ r.from and msg_first < r.to; one with a rating or a
// survey in r started before r.to (both only move the safe way between
// versions, so they filter before FINAL). When slotExact allows, it reads
// the per-slot counts instead of every entry.
func (s *ClickHouseStore) reportMessages(ctx context.Context, q Query, spans []zoneSpan, r msRange) ([]group, error) {
	f := chFilterOf(q.Filter)
	where, whereArgs := f.convWhere()
	// Ratings and surveys count for conversations in the query's scope only.
	codeOff, roleOff := 0, 0
	if q.Filter.Channel == ingest.ChannelOffline {
		codeOff, roleOff = slotCodeOffline, roleOffline
	}
	// Each conversation's entries become keys bucket × 16 + what (0–3
	// message roles, 4–8 ratings 1–5, 9–10 surveys unanswered/answered;
	// −1 outside the range or scope) that sumMap adds up: one row per
	// conversation instead of one per entry (ARRAY JOIN), which halves
	// the query.
	var keys, counts string
	if slotExact(spans, r) {
		msg := fmt.Sprintf("if(sk >= %d AND sk < %d, %s * 16 + sk %% 4, -1)", r.from/slotMs*4, r.to/slotMs*4,
			chBucket(q.Bucket, spans, fmt.Sprintf("intDiv(sk, 4) * %d", slotMs)))
		code := "(-sk - 1) % 16"
		other := fmt.Sprintf("if(-sk - 1 >= %d AND -sk - 1 < %d AND %s >= %d AND %s < %d, %s * 16 + 4 + %s - %d, -1)",
			r.from/slotMs*16, r.to/slotMs*16, code, codeOff, code, codeOff+7,
			chBucket(q.Bucket, spans, fmt.Sprintf("intDiv(-sk - 1, 16) * %d", slotMs)), code, codeOff)
		keys = "arrayMap(sk -> if(sk >= 0, " + msg + ", " + other + "), all_slots)"
		counts = "all_slot_n"
	} else {
		lo, hi := roleRating+1+roleOff, roleSurvey+1+roleOff
		what := fmt.Sprintf("multiIf(r >= 1 AND r <= 4, r - 1, r >= %d AND r <= %d, r - %d, -1)", lo, hi, lo-4)
		keys = fmt.Sprintf("arrayMap((m, r) -> if(m >= %d AND m < %d AND %s >= 0, %s * 16 + %s, -1), all_at, all_role)",
			r.from, r.to, what, chBucket(q.Bucket, spans, "m"), what)
		counts = "arrayMap(m -> toUInt32(1), all_at)"
	}
	sql := `SELECT k, tupleElement(sm, 1), tupleElement(sm, 2) FROM (
		SELECT ` + chDim(q.Split) + ` AS k, sumMap(` + keys + `, ` + counts + `) AS sm
		FROM conversation_facts FINAL
		PREWHERE last_event_at >= ? AND ((msg_first > 0 AND msg_first < ?) OR (started_at > 0 AND started_at < ?))` + f.pre + `
		WHERE ` + where + `
		GROUP BY k)`
	args := append(append([]any{r.from, r.to, r.to}, f.preArgs...), whereArgs...)
	rows, err := s.conn.Query(finalQuery(ctx), sql, args...)
	if err != nil {
		return nil, unavailable("report messages", err)
	}
	defer rows.Close()
	var out []group
	for rows.Next() {
		var key string
		var m struct {
			Keys []int64
			Sums []uint64
		}
		if err := rows.Scan(&key, &m.Keys, &m.Sums); err != nil {
			return nil, fmt.Errorf("scan message row: %w", err)
		}
		byBucket := map[int64]*group{}
		for i, k := range m.Keys {
			if k < 0 || i >= len(m.Sums) {
				continue
			}
			b, what, n := floorDiv(k, 16), k%16, int64(m.Sums[i])
			g := byBucket[b]
			if g == nil {
				g = &group{key: key, bucket: b}
				byBucket[b] = g
			}
			switch {
			case what == 0:
				g.msgs.Visitor += n
			case what == 1:
				g.msgs.Agent += n
			case what == 2:
				g.msgs.Bot += n
			case what == 3:
				g.msgs.Notes += n
			case what <= 8:
				g.csat.Ratings[what-4] += n
				g.csat.Rated += n
				if what >= 7 {
					g.csat.Positive += n
				}
			case what == 9:
				g.csat.Offered += n
			case what == 10:
				g.csat.Offered += n
				g.csat.Responses += n
			}
		}
		for _, g := range byBucket {
			out = append(out, *g)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("report messages", err)
	}
	return out, nil
}
