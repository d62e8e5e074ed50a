package analytics

import (
	"fmt"

	"github.com/parleychat/parley/ingest"
)

// This file computes reports in Go from facts: the SQLite store answers
// with it, and it is the reference the ClickHouse SQL must equal
// (TestStoresAgree). docs/metrics.md defines each number.

// inScope reports whether a conversation counts for the conversation
// metrics of q: live chats (widget, API) unless q filters the
// offline_form channel, then offline forms only.
func (q Query) inScope(f *ConversationFacts) bool {
	if q.Filter.Channel == ingest.ChannelOffline {
		return f.Channel == ingest.ChannelOffline
	}
	return f.Channel != ingest.ChannelOffline
}

// business reports whether durations use the business-hours clock.
func (q Query) business() bool { return q.Clock == ClockBusiness }

// inRange reports whether ms falls in [From, To).
func (q Query) inRange(ms int64) bool { return ms >= q.From.UnixMilli() && ms < q.To.UnixMilli() }

// engagementKey is the split value of engagement i of f.
func engagementKey(f *ConversationFacts, i int, d Dimension) string {
	switch d {
	case DimAgent:
		return f.AssignAgents[i]
	case DimTeam:
		return f.EngTeam[i]
	}
	return dimValue(f, d)
}

// engagementMatches applies the agent and team filters to engagement i.
func (flt Filter) engagementMatches(f *ConversationFacts, i int) bool {
	return (flt.AgentID == "" || f.AssignAgents[i] == flt.AgentID) && (flt.TeamID == "" || f.EngTeam[i] == flt.TeamID)
}

// cellAcc accumulates one cell's samples.
type cellAcc struct {
	g                             group
	fr, reply, wait, res, resLast []int64
	engFR, engReply, engHandling  []int64
}

type cells struct {
	q     Query
	spans []zoneSpan
	m     map[[2]string]*cellAcc
	order [][2]string
}

func newCells(q Query) *cells {
	return &cells{q: q, spans: zoneSpans(q.Location, q.From, q.To), m: map[[2]string]*cellAcc{}}
}

func (c *cells) at(key string, ms int64) *cellAcc {
	b := bucketOf(c.q.Bucket, c.spans, ms)
	id := [2]string{key, fmt.Sprint(b)}
	a := c.m[id]
	if a == nil {
		a = &cellAcc{g: group{key: key, bucket: b}}
		c.m[id] = a
		c.order = append(c.order, id)
	}
	return a
}

func (c *cells) groups() []group {
	out := make([]group, 0, len(c.order))
	for _, id := range c.order {
		a := c.m[id]
		a.g.fr, a.g.reply, a.g.wait, a.g.res, a.g.resLast = statsOf(a.fr), statsOf(a.reply), statsOf(a.wait), statsOf(a.res), statsOf(a.resLast)
		a.g.engFR, a.g.engReply, a.g.engHandling = statsOf(a.engFR), statsOf(a.engReply), statsOf(a.engHandling)
		out = append(out, a.g)
	}
	return out
}

// aggregate computes every part of a report from facts that match the
// query's site, channel and hours filters and were active in the range
// (last event at or after From); the agent and team filters are applied
// here, to conversations and engagements apart.
func aggregate(q Query, facts []ConversationFacts) []group {
	now := q.Now.UnixMilli()
	bh := q.business()
	c := newCells(q)
	for i := range facts {
		f := &facts[i]
		convMatch := q.Filter.matches(f)
		if convMatch {
			c.messages(f)
		}
		if f.StartedAt <= 0 {
			continue
		}
		scope := q.inScope(f)
		if convMatch && q.inRange(f.StartedAt) {
			a := c.at(dimValue(f, q.Split), f.StartedAt)
			if f.Channel == ingest.ChannelOffline {
				a.g.conv.Offline++
			}
			if scope {
				a.addConversation(f, bh, now)
			}
		}
		if !scope {
			continue
		}
		if convMatch && f.CSAT > 0 && q.inRange(f.CSATAt) {
			cs := &c.at(dimValue(f, q.Split), f.CSATAt).g.csat
			cs.Rated++
			if f.CSAT >= 4 {
				cs.Positive++
			}
			if f.CSAT >= 1 && f.CSAT <= 5 {
				cs.Ratings[f.CSAT-1]++
			}
		}
		if convMatch && f.SurveyAt > 0 && q.inRange(f.SurveyAt) {
			cs := &c.at(dimValue(f, q.Split), f.SurveyAt).g.csat
			cs.Offered++
			if f.CSAT > 0 {
				cs.Responses++
			}
		}
		if !q.inRange(f.StartedAt) {
			continue
		}
		// Engagements belong to the bucket their conversation started in.
		for e := range f.AssignAgents {
			if q.Filter.engagementMatches(f, e) {
				c.at(engagementKey(f, e, q.Split), f.StartedAt).addEngagement(f, e, bh)
			}
		}
	}
	return c.groups()
}

// addConversation adds a conversation started in the cell.
func (a *cellAcc) addConversation(f *ConversationFacts, bh bool, now int64) {
	g := &a.g
	g.hasConv = true
	c := &g.conv
	c.New++
	if f.ResolvedAt > 0 {
		c.Resolved++
	}
	if f.Reopens > 0 {
		c.Reopened++
	}
	c.Reopens += f.Reopens
	if f.Missed {
		c.Missed++
	}
	code, deadline := f.sla(bh)
	if code == slaLate {
		c.Late++
	}
	if f.AgentID != "" {
		c.Handled++
	}
	if f.LastResolvedAt > 0 {
		c.ClosedBy.add(f.CloseReason)
	}
	fr, reply, wait, res, resLast := f.FirstResponseMs, f.ReplyMs, f.QueueWaitMs, f.ResolutionMs, f.ResolutionLastMs
	inTarget := f.RepliesInTarget
	if bh {
		fr, reply, wait, res, resLast = f.FirstResponseBhMs, f.ReplyBhMs, f.QueueWaitBhMs, f.ResolutionBhMs, f.ResolutionLastBhMs
		inTarget = f.RepliesInTargetBh
	}
	if fr >= 0 {
		a.fr = append(a.fr, fr)
	}
	if res >= 0 {
		a.res = append(a.res, res)
	}
	if resLast >= 0 {
		a.resLast = append(a.resLast, resLast)
	}
	a.reply = append(a.reply, reply...)
	a.wait = append(a.wait, wait...)
	switch {
	case code == slaMet:
		g.sla.FirstResponse.Met++
	case frBreached(code, deadline, now):
		g.sla.FirstResponse.Breached++
	}
	if later := int64(len(reply)) - 1; later > 0 {
		g.sla.Replies.Met += inTarget
		g.sla.Replies.Breached += later - inTarget
	}
}

// addEngagement adds engagement e of f, started in the cell.
func (a *cellAcc) addEngagement(f *ConversationFacts, e int, bh bool) {
	g := &a.g
	g.hasEng = true
	en := &g.eng
	en.Count++
	if f.EngStart[e] == engStartTransfer {
		en.TransfersIn++
	}
	if f.EngEnd[e] == engEndTransferred {
		en.TransfersOut++
	}
	fr, replies, inTarget := f.EngFRMs[e], f.EngReplyMs[e], f.EngRepliesInTarget[e]
	if bh {
		fr, replies, inTarget = f.EngFRBhMs[e], f.EngReplyBhMs[e], f.EngRepliesInTargetBh[e]
	}
	if fr >= 0 {
		a.engFR = append(a.engFR, fr)
		if fr <= f.FRTargetMs {
			en.SLA.FirstResponse.Met++
		} else {
			en.SLA.FirstResponse.Breached++
		}
	}
	a.engReply = append(a.engReply, replies...)
	if later := int64(len(replies)) - 1; later > 0 {
		en.SLA.Replies.Met += inTarget
		en.SLA.Replies.Breached += later - inTarget
	}
	if to := f.AssignTo[e]; to > 0 {
		a.engHandling = append(a.engHandling, to-f.AssignFrom[e])
	}
}

// messages counts f's messages sent in the range by send bucket.
func (c *cells) messages(f *ConversationFacts) {
	key := dimValue(f, c.q.Split)
	for j, at := range f.MsgAt {
		if !c.q.inRange(at) {
			continue
		}
		m := &c.at(key, at).g.msgs
		switch f.MsgRole[j] {
		case roleVisitor:
			m.Visitor++
		case roleAgent:
			m.Agent++
		case roleBot:
			m.Bot++
		case roleNote:
			m.Notes++
		}
	}
}
