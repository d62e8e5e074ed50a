package analytics

import (
	"sort"
	"strings"

	"github.com/parleychat/parley/ingest"
)

// ModerationFact is one moderation verdict and the decision on its
// review item, if any.
type ModerationFact struct {
	SiteID         string   `json:"site_id"`
	ConversationID string   `json:"conversation_id"`
	VerdictID      string   `json:"verdict_id"`
	Version        int64    `json:"version"`
	MessageID      string   `json:"message_id"`
	At             int64    `json:"at"`
	Stage          string   `json:"stage"`
	Action         string   `json:"action"`
	Categories     []string `json:"categories"`
	Severity       int64    `json:"severity"`
	ItemID         string   `json:"item_id"`
	DecidedAt      int64    `json:"decided_at"`
	Decision       string   `json:"decision"`
	DecidedBy      string   `json:"decided_by"`
}

// sortEvents orders a conversation's events by time, then id (UUIDv7 ids
// are time-ordered, which keeps same-millisecond events in causal order).
func sortEvents(events []ingest.Event) {
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i].OccurredAt.Time, events[j].OccurredAt.Time
		if !a.Equal(b) {
			return a.Before(b)
		}
		return events[i].ID < events[j].ID
	})
}

// BuildFacts derives the facts of one conversation from all of its events
// (any order, duplicates by id ignored) and its site's profile. It is
// deterministic: the same events and profile give the same facts.
func BuildFacts(events []ingest.Event, site SiteProfile) (ConversationFacts, []ModerationFact) {
	return buildFacts(dedupe(events), site.rules())
}

// factBuilder walks one conversation's events in order.
type factBuilder struct {
	f     ConversationFacts
	rules siteRules

	pending      int64 // the visitor has been waiting for a human since (0 = not waiting)
	clockRunning bool
	cur          int // index of the open engagement, -1 = none
	// endAt is the first time at/after WaitFrom the visitor left or the
	// conversation closed; endWhy says which (a miss reason).
	endAt  int64
	endWhy string
}

// buildFacts is BuildFacts on events without duplicate ids, which it
// sorts in place.
func buildFacts(events []ingest.Event, rules siteRules) (ConversationFacts, []ModerationFact) {
	sortEvents(events)
	b := &factBuilder{rules: rules, cur: -1}
	f := &b.f
	f.FirstResponseMs, f.FirstResponseBhMs, f.ResolutionMs, f.ResolutionBhMs = -1, -1, -1, -1
	f.ResolutionLastMs, f.ResolutionLastBhMs = -1, -1
	f.Version = factsVersion(rules.rev, len(events))
	f.FRTargetMs, f.ReplyTargetMs = rules.frTargetMs, rules.rtTargetMs
	if len(events) == 0 {
		f.normalise()
		return *f, nil
	}
	f.SiteID, f.ConversationID = events[0].SiteID, events[0].ConversationID
	f.WaitFrom = waitFrom(events)

	decisions := map[string]ingest.Event{}
	var verdicts []ingest.Event
	for _, e := range events {
		switch e.Type {
		case ingest.ModerationVerdict:
			verdicts = append(verdicts, e)
		case ingest.ModerationDecision:
			p, ok := payload[ingest.ModerationDecisionPayload](e)
			if ok && p.ItemID != "" {
				if _, seen := decisions[p.ItemID]; !seen {
					decisions[p.ItemID] = e
				}
			}
		}
		b.step(e)
	}
	b.finish()
	return *f, moderationFacts(f.SiteID, f.ConversationID, verdicts, decisions)
}

// waitFrom places the first-response clock: the later of the first visitor
// text message and the first hand-over; without a hand-over, the first
// visitor text unless a bot wrote (then no human was needed: 0).
func waitFrom(events []ingest.Event) int64 {
	var firstVisitor, handover int64
	hasBot := false
	for _, e := range events {
		at := e.OccurredAt.UnixMilli()
		switch e.Type {
		case ingest.MessageSent:
			p, ok := payload[ingest.MessageSentPayload](e)
			if !ok || p.Kind != ingest.KindText {
				continue
			}
			switch e.Actor.Role {
			case ingest.RoleVisitor:
				if firstVisitor == 0 {
					firstVisitor = at
				}
			case ingest.RoleBot:
				hasBot = true
			}
		case ingest.ConversationQueued:
			p, ok := payload[ingest.ConversationQueuedPayload](e)
			if ok && p.Reason == "handover" && handover == 0 {
				handover = at
			}
		}
	}
	switch {
	case firstVisitor == 0:
		return 0
	case handover > 0:
		return max(firstVisitor, handover)
	case !hasBot:
		return firstVisitor
	}
	return 0
}

// openEngagement starts an engagement of agent at at.
func (b *factBuilder) openEngagement(agent string, start uint8, at int64) {
	f := &b.f
	f.AssignAgents = append(f.AssignAgents, agent)
	f.AssignFrom = append(f.AssignFrom, at)
	f.AssignTo = append(f.AssignTo, 0)
	f.EngTeam = append(f.EngTeam, f.TeamID)
	f.EngStart = append(f.EngStart, start)
	f.EngEnd = append(f.EngEnd, engEndOpen)
	f.EngFRMs = append(f.EngFRMs, -1)
	f.EngFRBhMs = append(f.EngFRBhMs, -1)
	f.EngReplyMs = append(f.EngReplyMs, []int64{})
	f.EngReplyBhMs = append(f.EngReplyBhMs, []int64{})
	f.EngMsgs = append(f.EngMsgs, 0)
	f.EngRepliesInTarget = append(f.EngRepliesInTarget, 0)
	f.EngRepliesInTargetBh = append(f.EngRepliesInTargetBh, 0)
	b.cur = len(f.AssignAgents) - 1
}

// closeEngagement ends the open engagement, if any. One that ends where
// it began with nothing in it (a reopen that went straight back to the
// queue) is dropped.
func (b *factBuilder) closeEngagement(at int64, end uint8) {
	if b.cur < 0 {
		return
	}
	f, i := &b.f, b.cur
	b.cur = -1
	if at == f.AssignFrom[i] && f.EngMsgs[i] == 0 {
		f.AssignAgents, f.AssignFrom, f.AssignTo = f.AssignAgents[:i], f.AssignFrom[:i], f.AssignTo[:i]
		f.EngTeam, f.EngStart, f.EngEnd = f.EngTeam[:i], f.EngStart[:i], f.EngEnd[:i]
		f.EngFRMs, f.EngFRBhMs, f.EngMsgs = f.EngFRMs[:i], f.EngFRBhMs[:i], f.EngMsgs[:i]
		f.EngReplyMs, f.EngReplyBhMs = f.EngReplyMs[:i], f.EngReplyBhMs[:i]
		f.EngRepliesInTarget, f.EngRepliesInTargetBh = f.EngRepliesInTarget[:i], f.EngRepliesInTargetBh[:i]
		return
	}
	f.AssignTo[i], f.EngEnd[i] = at, end
}

// step applies one event.
func (b *factBuilder) step(e ingest.Event) {
	f, hours := &b.f, b.rules.hours
	at := e.OccurredAt.UnixMilli()
	f.LastEventAt = max(f.LastEventAt, at)
	if f.WaitFrom > 0 && !b.clockRunning && at >= f.WaitFrom {
		b.clockRunning = true
		b.pending = f.WaitFrom
	}
	switch e.Type {
	case ingest.ConversationStarted:
		p, ok := payload[ingest.ConversationStartedPayload](e)
		if !ok || f.StartedAt != 0 {
			return
		}
		f.StartedAt, f.Channel, f.VisitorID = at, p.Channel, p.VisitorID
		if p.TeamID != "" {
			f.TeamID = p.TeamID
		}
		f.Open = true
	case ingest.ConversationQueued:
		p, ok := payload[ingest.ConversationQueuedPayload](e)
		if !ok {
			return
		}
		if p.TeamID != "" {
			f.TeamID = p.TeamID
		}
		if f.WaitingSince == 0 {
			f.WaitingSince = at
		}
		b.closeEngagement(at, engEndQueued)
	case ingest.ConversationAssigned:
		p, ok := payload[ingest.ConversationAssignedPayload](e)
		if !ok {
			return
		}
		if f.WaitingSince > 0 {
			f.QueueWaitMs = append(f.QueueWaitMs, at-f.WaitingSince)
			f.QueueWaitBhMs = append(f.QueueWaitBhMs, hours.between(f.WaitingSince, at))
			f.WaitingSince = 0
		}
		f.AgentID = p.AgentID
		if p.TeamID != "" {
			f.TeamID = p.TeamID
		}
		if b.cur >= 0 && f.AssignAgents[b.cur] == p.AgentID {
			// The same agent again (the assignment that follows a transfer to them).
			f.EngTeam[b.cur] = f.TeamID
			return
		}
		b.closeEngagement(at, engEndReassigned)
		b.openEngagement(p.AgentID, engStartAssigned, at)
	case ingest.ConversationTransferred:
		p, ok := payload[ingest.ConversationTransferredPayload](e)
		if !ok {
			return
		}
		if p.ToTeamID != "" {
			f.TeamID = p.ToTeamID
		}
		if p.ToAgentID != "" && b.cur >= 0 && f.AssignAgents[b.cur] == p.ToAgentID {
			f.EngTeam[b.cur] = f.TeamID
			return
		}
		b.closeEngagement(at, engEndTransferred)
		if p.ToAgentID != "" {
			f.AgentID = p.ToAgentID
			b.openEngagement(p.ToAgentID, engStartTransfer, at)
		}
	case ingest.MessageSent:
		b.message(e, at)
	case ingest.ConversationResolved:
		p, _ := payload[ingest.ConversationResolvedPayload](e)
		if f.ResolvedAt == 0 && f.StartedAt != 0 {
			f.ResolvedAt = at
			f.ResolutionMs = at - f.StartedAt
			f.ResolutionBhMs = hours.between(f.StartedAt, at)
		}
		if f.SurveyAt == 0 && f.MsgsAgent > 0 {
			f.SurveyAt = at
		}
		f.LastResolvedAt, f.CloseReason = at, p.Reason
		if b.endAt == 0 && f.WaitFrom > 0 && at >= f.WaitFrom {
			b.endAt, b.endWhy = at, missClosed
			if p.Reason != "" {
				b.endWhy = missClosedBy + p.Reason
			}
		}
		f.Open, f.WaitingSince, b.pending = false, 0, 0
		b.closeEngagement(at, engEndResolved)
	case ingest.ConversationReopened:
		f.Reopens++
		f.Open = true
		f.LastResolvedAt, f.CloseReason = 0, ""
		// The last agent keeps the conversation unless it goes back to
		// the queue (a conversation.queued right after ends this).
		if n := len(f.AssignAgents); b.cur < 0 && n > 0 && f.EngEnd[n-1] == engEndResolved {
			b.openEngagement(f.AssignAgents[n-1], engStartReopened, at)
		}
	case ingest.VisitorLeft:
		if f.LeftAt == 0 && (f.WaitFrom == 0 || at >= f.WaitFrom) {
			f.LeftAt = at
		}
		if b.endAt == 0 && f.WaitFrom > 0 && at >= f.WaitFrom {
			b.endAt, b.endWhy = at, missVisitorLeft
		}
		f.WaitingSince, b.pending = 0, 0
	case ingest.CSATSubmitted:
		p, ok := payload[ingest.CSATSubmittedPayload](e)
		if ok {
			f.CSAT, f.CSATAt, f.CSATComment = int64(p.Rating), at, p.Comment
		}
	}
}

// message applies a message.sent event.
func (b *factBuilder) message(e ingest.Event, at int64) {
	f, hours := &b.f, b.rules.hours
	p, ok := payload[ingest.MessageSentPayload](e)
	if !ok {
		return
	}
	if p.Kind == ingest.KindNote {
		f.Notes++
		f.MsgAt, f.MsgRole = append(f.MsgAt, at), append(f.MsgRole, roleNote)
		return
	}
	if code := roleCode(e.Actor.Role); code != 0 {
		f.MsgAt, f.MsgRole = append(f.MsgAt, at), append(f.MsgRole, code)
	}
	switch e.Actor.Role {
	case ingest.RoleVisitor:
		f.MsgsVisitor++
		if b.clockRunning && b.pending == 0 {
			b.pending = at
		}
	case ingest.RoleBot:
		f.MsgsBot++
	case ingest.RoleAgent:
		f.MsgsAgent++
		if i := b.cur; i >= 0 && f.AssignAgents[i] == e.Actor.ID {
			f.EngMsgs[i]++
			if b.clockRunning && b.pending > 0 {
				from := max(b.pending, f.AssignFrom[i])
				f.EngReplyMs[i] = append(f.EngReplyMs[i], at-from)
				f.EngReplyBhMs[i] = append(f.EngReplyBhMs[i], hours.between(from, at))
				if f.EngFRMs[i] < 0 {
					f.EngFRMs[i], f.EngFRBhMs[i] = at-from, hours.between(from, at)
				}
			}
		}
		if b.clockRunning && b.pending > 0 {
			f.ReplyMs = append(f.ReplyMs, at-b.pending)
			f.ReplyBhMs = append(f.ReplyBhMs, hours.between(b.pending, at))
			if f.FirstReplyAt == 0 {
				f.FirstReplyAt = at
				f.FirstResponseMs = at - b.pending
				f.FirstResponseBhMs = hours.between(b.pending, at)
			}
			b.pending = 0
		}
	}
}

// finish derives what needs the whole conversation: business hours at
// start, missed, target outcomes, last resolution.
func (b *factBuilder) finish() {
	f, hours := &b.f, b.rules.hours
	if f.StartedAt != 0 {
		f.StartedInHours = hours.open(f.StartedAt)
	}
	if !f.Open {
		f.WaitingSince = 0
	} else {
		f.LastResolvedAt, f.CloseReason = 0, ""
	}
	if f.LastResolvedAt > 0 && f.StartedAt != 0 {
		f.ResolutionLastMs = f.LastResolvedAt - f.StartedAt
		f.ResolutionLastBhMs = hours.between(f.StartedAt, f.LastResolvedAt)
	}
	if f.WaitFrom > 0 && f.Channel != ingest.ChannelOffline {
		f.Missed = b.endAt > 0 && (f.FirstReplyAt == 0 || f.FirstReplyAt > b.endAt)
		if f.Missed {
			f.MissAt, f.MissReason = b.endAt, b.endWhy
		}
		f.FRDeadline = f.WaitFrom + f.FRTargetMs
		f.FRDeadlineBh = hours.deadline(f.WaitFrom, f.FRTargetMs)
		f.SLA = b.outcome(f.FirstResponseMs, f.MissAt-f.WaitFrom)
		f.SLABh = b.outcome(f.FirstResponseBhMs, hours.between(f.WaitFrom, f.MissAt))
	}
	f.RepliesInTarget, f.RepliesInTargetBh = laterWithin(f.ReplyMs, f.ReplyTargetMs), laterWithin(f.ReplyBhMs, f.ReplyTargetMs)
	for e := range f.EngReplyMs {
		f.EngRepliesInTarget[e] = laterWithin(f.EngReplyMs[e], f.ReplyTargetMs)
		f.EngRepliesInTargetBh[e] = laterWithin(f.EngReplyBhMs[e], f.ReplyTargetMs)
	}
	f.normalise()
}

// laterWithin counts the samples after the first that are within target.
func laterWithin(samples []int64, target int64) int64 {
	var n int64
	for i, v := range samples {
		if i > 0 && v <= target {
			n++
		}
	}
	return n
}

// outcome judges the first response on one clock: fr is the first
// response on it, waited the time until the miss (when missed).
func (b *factBuilder) outcome(fr, waited int64) uint8 {
	f := &b.f
	switch {
	case f.Missed && waited >= f.FRTargetMs:
		return slaMissedLate
	case f.Missed:
		return slaMissedEarly
	case f.FirstReplyAt > 0 && fr <= f.FRTargetMs:
		return slaMet
	case f.FirstReplyAt > 0:
		return slaLate
	}
	return slaWaiting
}

func moderationFacts(site, conv string, verdicts []ingest.Event, decisions map[string]ingest.Event) []ModerationFact {
	var out []ModerationFact
	for _, v := range verdicts {
		p, ok := payload[ingest.ModerationVerdictPayload](v)
		if !ok {
			continue
		}
		m := ModerationFact{
			SiteID: site, ConversationID: conv, VerdictID: v.ID, Version: 1,
			MessageID: p.MessageID, At: v.OccurredAt.UnixMilli(), Stage: p.Stage,
			Action: p.Action, Categories: append([]string{}, p.Categories...),
			Severity: int64(p.Severity), ItemID: p.ItemID,
		}
		sort.Strings(m.Categories)
		if len(m.Categories) == 0 {
			m.Categories = []string{"none"}
		}
		if d, ok := decisions[p.ItemID]; ok && p.ItemID != "" {
			dp, ok := payload[ingest.ModerationDecisionPayload](d)
			if ok {
				m.DecidedAt, m.Decision, m.DecidedBy, m.Version = d.OccurredAt.UnixMilli(), dp.Decision, d.Actor.ID, 2
			}
		}
		out = append(out, m)
	}
	return out
}

func dedupe(events []ingest.Event) []ingest.Event {
	seen := make(map[string]bool, len(events))
	out := make([]ingest.Event, 0, len(events))
	for _, e := range events {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// missReasonText explains a miss reason to a person.
func missReasonText(r string) string {
	switch {
	case r == missVisitorLeft:
		return "the visitor left before any human reply"
	case r == missClosedBy+closeReasonInactive:
		return "closed for inactivity before any human reply"
	case strings.HasPrefix(r, missClosedBy):
		return "closed by the " + strings.TrimPrefix(r, missClosedBy) + " before any human reply"
	case r == missClosed:
		return "closed before any human reply"
	}
	return ""
}
