package analytics

import (
	"sort"
	"time"
)

// Report is the answer to a Query: one series per split value (a single
// series with an empty key when not split), each with a point per bucket.
type Report struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Bucket   Bucket    `json:"bucket"`
	TZ       string    `json:"tz"`
	Split    Dimension `json:"split"`
	Clock    Clock     `json:"clock"`
	Filter   Filter    `json:"filter"`
	Series   []Series  `json:"series"`
	Backend  string    `json:"backend"`
	Computed time.Time `json:"computed_at"`
}

// Series is the points of one split value.
type Series struct {
	Key    string  `json:"key"`
	Points []Point `json:"points"`
}

// Point holds every metric of one bucket (docs/metrics.md). Conversation
// metrics and engagements belong to the bucket the conversation started
// in; messages to the bucket they were sent in; ratings to the bucket
// they were given in; surveys to the bucket they were offered in.
type Point struct {
	Bucket         string             `json:"bucket"`
	Conversations  ConversationCounts `json:"conversations"`
	Messages       MessageCounts      `json:"messages"`
	FirstResponse  Duration           `json:"first_response"`
	ReplyTime      Duration           `json:"reply_time"`
	QueueWait      Duration           `json:"queue_wait"`
	Resolution     Duration           `json:"resolution"`
	ResolutionLast Duration           `json:"resolution_last"`
	SLA            SLA                `json:"sla"`
	CSAT           CSAT               `json:"csat"`
	Engagements    Engagements        `json:"engagements"`
}

// ConversationCounts are conversation counts of one bucket. Every count
// but Offline is of live chats (widget and API) unless the query filters
// the offline_form channel; Offline counts offline-form messages.
type ConversationCounts struct {
	New        int64    `json:"new"`
	Offline    int64    `json:"offline"`
	Resolved   int64    `json:"resolved"`
	Reopened   int64    `json:"reopened"`
	Reopens    int64    `json:"reopens"`
	ReopenRate float64  `json:"reopen_rate"`
	Missed     int64    `json:"missed"`
	Late       int64    `json:"late"`
	Handled    int64    `json:"handled"`
	ClosedBy   ClosedBy `json:"closed_by"`
}

// ClosedBy counts closed conversations by who closed them last.
type ClosedBy struct {
	Agent    int64 `json:"agent"`
	Bot      int64 `json:"bot"`
	Visitor  int64 `json:"visitor"`
	Inactive int64 `json:"inactive"`
	Other    int64 `json:"other"`
}

func (c *ClosedBy) add(reason string) {
	switch reason {
	case "agent":
		c.Agent++
	case "bot":
		c.Bot++
	case "visitor":
		c.Visitor++
	case closeReasonInactive:
		c.Inactive++
	default:
		c.Other++
	}
}

// MessageCounts are messages by sender; In = visitor, Out = agent + bot.
// Notes are private staff notes, in neither In nor Out.
type MessageCounts struct {
	Visitor int64 `json:"visitor"`
	Agent   int64 `json:"agent"`
	Bot     int64 `json:"bot"`
	Notes   int64 `json:"notes"`
	In      int64 `json:"in"`
	Out     int64 `json:"out"`
}

// Duration summarises samples in milliseconds.
type Duration struct {
	Count    int64   `json:"count"`
	MedianMs int64   `json:"median_ms"`
	P90Ms    int64   `json:"p90_ms"`
	MeanMs   float64 `json:"mean_ms"`
	SumMs    int64   `json:"sum_ms"`
}

// SLA is the share of first responses and of later replies within the
// site's targets.
type SLA struct {
	FirstResponse Target `json:"first_response"`
	Replies       Target `json:"replies"`
}

// Target counts what met a target and what breached it; Share = Met /
// (Met + Breached), 0 when there is nothing to judge.
type Target struct {
	Met      int64   `json:"met"`
	Breached int64   `json:"breached"`
	Share    float64 `json:"share"`
}

func (t *Target) finish() {
	if n := t.Met + t.Breached; n > 0 {
		t.Share = float64(t.Met) / float64(n)
	}
}

func (t *Target) add(o Target) { t.Met += o.Met; t.Breached += o.Breached }

// CSAT is satisfaction. Rated, Positive, Share (positive 4–5 / rated) and
// Ratings (how many of each rating 1–5) count ratings given in the
// bucket; Offered counts surveys offered in the bucket (first close after
// a human agent wrote), Responses those of them rated, ResponseRate =
// Responses / Offered.
type CSAT struct {
	Rated        int64    `json:"rated"`
	Positive     int64    `json:"positive"`
	Share        float64  `json:"share"`
	Ratings      [5]int64 `json:"ratings"`
	Offered      int64    `json:"offered"`
	Responses    int64    `json:"responses"`
	ResponseRate float64  `json:"response_rate"`
}

func (c *CSAT) finish() {
	if c.Rated > 0 {
		c.Share = float64(c.Positive) / float64(c.Rated)
	}
	if c.Offered > 0 {
		c.ResponseRate = float64(c.Responses) / float64(c.Offered)
	}
}

// Engagements are the agents' parts of conversations: one per stretch of
// an agent owning a conversation, of the conversations started in the
// bucket. Split or filtered by agent or team, they belong to the
// engagement's agent and the team the conversation had then.
type Engagements struct {
	Count         int64    `json:"count"`
	TransfersIn   int64    `json:"transfers_in"`
	TransfersOut  int64    `json:"transfers_out"`
	FirstResponse Duration `json:"first_response"`
	ReplyTime     Duration `json:"reply_time"`
	Handling      Duration `json:"handling"`
	SLA           SLA      `json:"sla"`
}

// durStats is what a store computes for one duration metric of a group.
type durStats struct{ count, p50, p90, sum int64 }

func (d durStats) duration() Duration {
	out := Duration{Count: d.count, MedianMs: d.p50, P90Ms: d.p90, SumMs: d.sum}
	if d.count > 0 {
		out.MeanMs = float64(d.sum) / float64(d.count)
	} else {
		out.MedianMs, out.P90Ms = 0, 0
	}
	return out
}

// Quantiles, the same on both stores (ClickHouse computes them with
// quantileExact, whose index is floor(level × n) of the sorted samples):
//
//   - median: the mean of the two middle samples of an even count (the
//     middle one of an odd count), rounded up to a whole millisecond.
//     sorted[floor(n/2)] and sorted[n−1−floor(n/2)] are the two middles.
//   - p90: sorted[floor(0.9 × n)], capped at n−1: the smallest sample with
//     more than 90 % of the samples at or below it.
func medianOf(sorted []int64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(0.5 * float64(n))
	return medianFrom(sorted[i], sorted[n-1-i])
}

// medianFrom is the median from its upper and lower middle samples.
func medianFrom(upper, lower int64) int64 { return floorDiv(upper+lower+1, 2) }

func p90Of(sorted []int64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	return sorted[min(int(0.9*float64(n)), n-1)]
}

func statsOf(vals []int64) durStats {
	if len(vals) == 0 {
		return durStats{}
	}
	s := append([]int64(nil), vals...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum int64
	for _, v := range s {
		sum += v
	}
	return durStats{count: int64(len(s)), p50: medianOf(s), p90: p90Of(s), sum: sum}
}

// group is one (split key, bucket) cell as a store computed it. Each
// part comes from its own pass (conversations by start, messages, ratings
// and surveys, engagements), so assemble adds parts into cells.
type group struct {
	key    string
	bucket int64

	conv                          ConversationCounts
	fr, reply, wait, res, resLast durStats
	sla                           SLA
	hasConv                       bool
	msgs                          MessageCounts
	csat                          CSAT
	eng                           Engagements
	engFR, engReply, engHandling  durStats
	hasEng                        bool
}

// assemble turns store groups into a Report with every bucket of the
// range present (zero points where nothing happened), series sorted by key.
func assemble(q Query, backend string, parts ...[]group) Report {
	r := Report{
		From: q.From, To: q.To, Bucket: q.Bucket, TZ: q.Location.String(), Split: q.Split,
		Clock: q.Clock, Filter: q.Filter, Backend: backend, Computed: time.Now().UTC(),
		Series: []Series{},
	}
	keys := bucketKeys(q)
	byKey := map[string]map[int64]*group{}
	cell := func(key string, bucket int64) *group {
		if byKey[key] == nil {
			byKey[key] = map[int64]*group{}
		}
		g := byKey[key][bucket]
		if g == nil {
			g = &group{key: key, bucket: bucket}
			byKey[key][bucket] = g
		}
		return g
	}
	for _, gs := range parts {
		for _, g := range gs {
			c := cell(g.key, g.bucket)
			// Offline forms outside the query's scope come as rows of their own.
			off := c.conv.Offline + g.conv.Offline
			if g.hasConv {
				c.conv, c.fr, c.reply, c.wait, c.res, c.resLast, c.sla, c.hasConv = g.conv, g.fr, g.reply, g.wait, g.res, g.resLast, g.sla, true
			}
			c.conv.Offline = off
			c.msgs.Visitor += g.msgs.Visitor
			c.msgs.Agent += g.msgs.Agent
			c.msgs.Bot += g.msgs.Bot
			c.msgs.Notes += g.msgs.Notes
			c.csat.Rated += g.csat.Rated
			c.csat.Positive += g.csat.Positive
			for i := range c.csat.Ratings {
				c.csat.Ratings[i] += g.csat.Ratings[i]
			}
			c.csat.Offered += g.csat.Offered
			c.csat.Responses += g.csat.Responses
			if g.hasEng {
				c.eng, c.engFR, c.engReply, c.engHandling, c.hasEng = g.eng, g.engFR, g.engReply, g.engHandling, true
			}
		}
	}
	if q.Split == DimNone && len(byKey) == 0 {
		byKey[""] = map[int64]*group{}
	}
	names := make([]string, 0, len(byKey))
	for k := range byKey {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		s := Series{Key: name, Points: make([]Point, 0, len(keys))}
		for _, b := range keys {
			g := byKey[name][b]
			if g == nil {
				g = &group{}
			}
			s.Points = append(s.Points, g.point(bucketLabel(b, q.Bucket, q.Location)))
		}
		r.Series = append(r.Series, s)
	}
	return r
}

// point finishes a cell's derived numbers.
func (g *group) point(label string) Point {
	p := Point{
		Bucket: label, Conversations: g.conv, Messages: g.msgs,
		FirstResponse: g.fr.duration(), ReplyTime: g.reply.duration(),
		QueueWait: g.wait.duration(), Resolution: g.res.duration(), ResolutionLast: g.resLast.duration(),
		SLA: g.sla, CSAT: g.csat, Engagements: g.eng,
	}
	p.Messages.In = p.Messages.Visitor
	p.Messages.Out = p.Messages.Agent + p.Messages.Bot
	if p.Conversations.Resolved > 0 {
		p.Conversations.ReopenRate = float64(p.Conversations.Reopened) / float64(p.Conversations.Resolved)
	}
	p.SLA.FirstResponse.finish()
	p.SLA.Replies.finish()
	p.CSAT.finish()
	p.Engagements.FirstResponse = g.engFR.duration()
	p.Engagements.ReplyTime = g.engReply.duration()
	p.Engagements.Handling = g.engHandling.duration()
	p.Engagements.SLA.FirstResponse.finish()
	p.Engagements.SLA.Replies.finish()
	return p
}

// bucketKeys lists the bucket keys of the range in order.
func bucketKeys(q Query) []int64 {
	if q.Bucket == BucketNone {
		return []int64{0}
	}
	spans := zoneSpans(q.Location, q.From, q.To)
	step := time.Hour
	if q.Bucket == BucketHour {
		step = 15 * time.Minute
	}
	var keys []int64
	last := int64(-1 << 62)
	for t := q.From; t.Before(q.To); t = t.Add(step) {
		k := bucketOf(q.Bucket, spans, t.UnixMilli())
		if k != last {
			keys = append(keys, k)
			last = k
		}
	}
	if k := bucketOf(q.Bucket, spans, q.To.UnixMilli()-1); k != last {
		keys = append(keys, k)
	}
	return keys
}
