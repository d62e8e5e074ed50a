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

// Point holds every metric of one bucket. Conversation metrics belong to
// the bucket the conversation started in; message counts to the bucket the
// message was sent in.
type Point struct {
	Bucket        string             `json:"bucket"`
	Conversations ConversationCounts `json:"conversations"`
	Messages      MessageCounts      `json:"messages"`
	FirstResponse Duration           `json:"first_response"`
	ReplyTime     Duration           `json:"reply_time"`
	QueueWait     Duration           `json:"queue_wait"`
	Resolution    Duration           `json:"resolution"`
	CSAT          CSAT               `json:"csat"`
}

// ConversationCounts are conversation counts of one bucket.
type ConversationCounts struct {
	New      int64 `json:"new"`
	Resolved int64 `json:"resolved"`
	Reopened int64 `json:"reopened"`
	Reopens  int64 `json:"reopens"`
	Missed   int64 `json:"missed"`
	Offline  int64 `json:"offline"`
	Handled  int64 `json:"handled"`
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

// CSAT is satisfaction: Share = positive (4–5) / rated; ResponseRate =
// rated / resolved.
type CSAT struct {
	Rated        int64   `json:"rated"`
	Positive     int64   `json:"positive"`
	Share        float64 `json:"share"`
	ResponseRate float64 `json:"response_rate"`
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

// quantile is the exact quantile both stores use: the value at index
// floor(level × n) of the sorted samples (ClickHouse's quantileExact).
func quantile(sorted []int64, level float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(level * float64(n))
	if i >= n {
		i = n - 1
	}
	return sorted[i]
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
	return durStats{count: int64(len(s)), p50: quantile(s, 0.5), p90: quantile(s, 0.9), sum: sum}
}

// group is one (split key, bucket) cell as a store computed it.
type group struct {
	key    string
	bucket int64
	conv   ConversationCounts
	msgs   MessageCounts
	fr     durStats
	reply  durStats
	wait   durStats
	res    durStats
	rated  int64
	pos    int64
}

// assemble turns store groups into a Report with every bucket of the
// range present (zero points where nothing happened), series sorted by key.
// conv holds conversation metrics, msgs message counts of the same cells.
func assemble(q Query, backend string, conv, msgs []group) Report {
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
	for _, g := range conv {
		c := cell(g.key, g.bucket)
		m := c.msgs
		*c = g
		c.msgs = m
	}
	for _, g := range msgs {
		c := cell(g.key, g.bucket)
		c.msgs.Visitor += g.msgs.Visitor
		c.msgs.Agent += g.msgs.Agent
		c.msgs.Bot += g.msgs.Bot
		c.msgs.Notes += g.msgs.Notes
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
			p := Point{
				Bucket: bucketLabel(b, q.Bucket, q.Location), Conversations: g.conv, Messages: g.msgs,
				FirstResponse: g.fr.duration(), ReplyTime: g.reply.duration(),
				QueueWait: g.wait.duration(), Resolution: g.res.duration(),
				CSAT: CSAT{Rated: g.rated, Positive: g.pos},
			}
			p.Messages.In = p.Messages.Visitor
			p.Messages.Out = p.Messages.Agent + p.Messages.Bot
			if g.rated > 0 {
				p.CSAT.Share = float64(g.pos) / float64(g.rated)
			}
			if g.conv.Resolved > 0 {
				p.CSAT.ResponseRate = float64(g.rated) / float64(g.conv.Resolved)
			}
			s.Points = append(s.Points, p)
		}
		r.Series = append(r.Series, s)
	}
	return r
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
