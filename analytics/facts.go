package analytics

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/parleychat/parley/ingest"
)

// ConversationFacts is one conversation as docs/metrics.md measures it,
// derived from all of its events by BuildFacts. Times are Unix
// milliseconds (0 = never); durations are milliseconds (-1 = none).
// Version is the number of events the facts were built from: a build that
// saw more events replaces one that saw fewer.
type ConversationFacts struct {
	SiteID         string `json:"site_id"`
	ConversationID string `json:"conversation_id"`
	Version        int64  `json:"version"`
	Channel        string `json:"channel"`
	TeamID         string `json:"team_id"`
	AgentID        string `json:"agent_id"`
	VisitorID      string `json:"visitor_id"`

	StartedAt      int64 `json:"started_at"`
	StartedInHours bool  `json:"started_in_hours"`
	LastEventAt    int64 `json:"last_event_at"`

	// WaitFrom starts the first-response clock: the later of the first
	// visitor message and the bot's hand-over (0 = no human was needed).
	WaitFrom          int64 `json:"wait_from"`
	FirstReplyAt      int64 `json:"first_reply_at"`
	FirstResponseMs   int64 `json:"first_response_ms"`
	FirstResponseBhMs int64 `json:"first_response_bh_ms"`

	ReplyMs       []int64 `json:"reply_ms"`
	ReplyBhMs     []int64 `json:"reply_bh_ms"`
	QueueWaitMs   []int64 `json:"queue_wait_ms"`
	QueueWaitBhMs []int64 `json:"queue_wait_bh_ms"`

	ResolvedAt     int64 `json:"resolved_at"`
	ResolutionMs   int64 `json:"resolution_ms"`
	ResolutionBhMs int64 `json:"resolution_bh_ms"`
	Reopens        int64 `json:"reopens"`

	// A conversation is missed when MissCandidate holds and MissAt has
	// passed: MissAt is the earlier of WaitFrom + threshold and the
	// visitor leaving, and no human replied by then.
	MissCandidate bool  `json:"miss_candidate"`
	MissAt        int64 `json:"miss_at"`
	LeftAt        int64 `json:"left_at"`

	CSAT   int64 `json:"csat"`
	CSATAt int64 `json:"csat_at"`

	// MsgAt and MsgRole list every message by time: role 1 visitor text,
	// 2 agent text, 3 bot text, 4 note. Message counts by send time come
	// from here, so they are deduplicated with the facts.
	MsgAt   []int64   `json:"msg_at"`
	MsgRole RoleCodes `json:"msg_role"`

	MsgsVisitor int64 `json:"msgs_visitor"`
	MsgsAgent   int64 `json:"msgs_agent"`
	MsgsBot     int64 `json:"msgs_bot"`
	Notes       int64 `json:"notes"`

	Open         bool  `json:"open"`
	WaitingSince int64 `json:"waiting_since"`

	// Assignments are the agent ownership intervals (To 0 = still owned).
	AssignAgents []string `json:"assign_agents"`
	AssignFrom   []int64  `json:"assign_from"`
	AssignTo     []int64  `json:"assign_to"`
}

// Missed reports whether the conversation counts as missed at now (ms).
func (f *ConversationFacts) Missed(now int64) bool {
	return f.MissCandidate && f.MissAt <= now
}

// normalise makes empty lists non-nil so that every store returns the same JSON.
func (f *ConversationFacts) normalise() {
	for _, p := range []*[]int64{&f.ReplyMs, &f.ReplyBhMs, &f.QueueWaitMs, &f.QueueWaitBhMs, &f.AssignFrom, &f.AssignTo} {
		if *p == nil {
			*p = []int64{}
		}
	}
	if f.AssignAgents == nil {
		f.AssignAgents = []string{}
	}
	if f.MsgAt == nil {
		f.MsgAt, f.MsgRole = []int64{}, RoleCodes{}
	}
}

// RoleCodes are message role codes; JSON shows them as numbers, not base64.
type RoleCodes []uint8

// MarshalJSON writes a number array.
func (r RoleCodes) MarshalJSON() ([]byte, error) {
	out := make([]int, len(r))
	for i, v := range r {
		out[i] = int(v)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a number array.
func (r *RoleCodes) UnmarshalJSON(b []byte) error {
	var in []uint8
	var nums []int
	if err := json.Unmarshal(b, &nums); err != nil {
		return err
	}
	in = make([]uint8, len(nums))
	for i, v := range nums {
		in[i] = uint8(v)
	}
	*r = in
	return nil
}

// Message role codes of ConversationFacts.MsgRole.
const (
	roleVisitor uint8 = 1
	roleAgent   uint8 = 2
	roleBot     uint8 = 3
	roleNote    uint8 = 4
)

func roleCode(r ingest.Role) uint8 {
	switch r {
	case ingest.RoleVisitor:
		return roleVisitor
	case ingest.RoleAgent:
		return roleAgent
	case ingest.RoleBot:
		return roleBot
	}
	return 0
}

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
}

// FactsConfig holds what fact building needs beyond the events.
type FactsConfig struct {
	// MissThreshold is how long a visitor may wait for a human before the
	// conversation counts as missed; default 5 minutes.
	MissThreshold time.Duration
}

func (c FactsConfig) threshold() int64 {
	if c.MissThreshold <= 0 {
		return (5 * time.Minute).Milliseconds()
	}
	return c.MissThreshold.Milliseconds()
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
// (any order, duplicates by id ignored). hours is the site's schedule (nil
// = always open). It is deterministic: the same events give the same facts.
func BuildFacts(events []ingest.Event, hours *clock, cfg FactsConfig) (ConversationFacts, []ModerationFact) {
	return buildFacts(dedupe(events), hours, cfg)
}

// buildFacts is BuildFacts on events without duplicate ids, which it
// sorts in place.
func buildFacts(events []ingest.Event, hours *clock, cfg FactsConfig) (ConversationFacts, []ModerationFact) {
	sortEvents(events)
	f := ConversationFacts{
		FirstResponseMs: -1, FirstResponseBhMs: -1, ResolutionMs: -1, ResolutionBhMs: -1,
		Version: int64(len(events)),
	}
	if len(events) == 0 {
		return f, nil
	}
	f.SiteID, f.ConversationID = events[0].SiteID, events[0].ConversationID

	// Pass 1: what is needed to place the first-response clock.
	var firstVisitor, handover int64
	hasBot := false
	for _, e := range events {
		at := e.OccurredAt.UnixMilli()
		switch e.Type {
		case ingest.MessageSent:
			var p ingest.MessageSentPayload
			if e.Into(&p) != nil || p.Kind != ingest.KindText {
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
			var p ingest.ConversationQueuedPayload
			if e.Into(&p) == nil && p.Reason == "handover" && handover == 0 {
				handover = at
			}
		}
	}
	switch {
	case firstVisitor == 0:
	case handover > 0:
		f.WaitFrom = max(firstVisitor, handover)
	case !hasBot:
		f.WaitFrom = firstVisitor
	}

	// Pass 2: everything else, in order.
	var pending int64 // visitor waiting for a human reply since
	clockRunning := false
	curAgent := -1 // index into Assign* of the open interval
	closeAssign := func(at int64) {
		if curAgent >= 0 {
			f.AssignTo[curAgent] = at
			curAgent = -1
		}
	}
	openAssign := func(agent string, at int64) {
		closeAssign(at)
		f.AssignAgents = append(f.AssignAgents, agent)
		f.AssignFrom = append(f.AssignFrom, at)
		f.AssignTo = append(f.AssignTo, 0)
		curAgent = len(f.AssignAgents) - 1
	}
	decisions := map[string]ingest.Event{}
	var verdicts []ingest.Event
	for _, e := range events {
		at := e.OccurredAt.UnixMilli()
		f.LastEventAt = max(f.LastEventAt, at)
		if f.WaitFrom > 0 && !clockRunning && at >= f.WaitFrom {
			clockRunning = true
			pending = f.WaitFrom
		}
		switch e.Type {
		case ingest.ConversationStarted:
			var p ingest.ConversationStartedPayload
			if e.Into(&p) != nil || f.StartedAt != 0 {
				continue
			}
			f.StartedAt, f.Channel, f.VisitorID = at, p.Channel, p.VisitorID
			if p.TeamID != "" {
				f.TeamID = p.TeamID
			}
			f.Open = true
		case ingest.ConversationQueued:
			var p ingest.ConversationQueuedPayload
			if e.Into(&p) != nil {
				continue
			}
			if p.TeamID != "" {
				f.TeamID = p.TeamID
			}
			if f.WaitingSince == 0 {
				f.WaitingSince = at
			}
		case ingest.ConversationAssigned:
			var p ingest.ConversationAssignedPayload
			if e.Into(&p) != nil {
				continue
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
			openAssign(p.AgentID, at)
		case ingest.ConversationTransferred:
			var p ingest.ConversationTransferredPayload
			if e.Into(&p) != nil {
				continue
			}
			if p.ToTeamID != "" {
				f.TeamID = p.ToTeamID
			}
			if p.ToAgentID != "" {
				f.AgentID = p.ToAgentID
				openAssign(p.ToAgentID, at)
			} else {
				closeAssign(at)
			}
		case ingest.MessageSent:
			var p ingest.MessageSentPayload
			if e.Into(&p) != nil {
				continue
			}
			if p.Kind == ingest.KindNote {
				f.Notes++
				f.MsgAt, f.MsgRole = append(f.MsgAt, at), append(f.MsgRole, roleNote)
				continue
			}
			if code := roleCode(e.Actor.Role); code != 0 {
				f.MsgAt, f.MsgRole = append(f.MsgAt, at), append(f.MsgRole, code)
			}
			switch e.Actor.Role {
			case ingest.RoleVisitor:
				f.MsgsVisitor++
				if clockRunning && pending == 0 {
					pending = at
				}
			case ingest.RoleBot:
				f.MsgsBot++
			case ingest.RoleAgent:
				f.MsgsAgent++
				if clockRunning && pending > 0 {
					f.ReplyMs = append(f.ReplyMs, at-pending)
					f.ReplyBhMs = append(f.ReplyBhMs, hours.between(pending, at))
					if f.FirstReplyAt == 0 {
						f.FirstReplyAt = at
						f.FirstResponseMs = at - pending
						f.FirstResponseBhMs = hours.between(pending, at)
					}
					pending = 0
				}
			}
		case ingest.ConversationResolved:
			if f.ResolvedAt == 0 && f.StartedAt != 0 {
				f.ResolvedAt = at
				f.ResolutionMs = at - f.StartedAt
				f.ResolutionBhMs = hours.between(f.StartedAt, at)
			}
			f.Open, f.WaitingSince, pending = false, 0, 0
			closeAssign(at)
		case ingest.ConversationReopened:
			f.Reopens++
			f.Open = true
		case ingest.VisitorLeft:
			if f.LeftAt == 0 && (f.WaitFrom == 0 || at >= f.WaitFrom) {
				f.LeftAt = at
			}
			f.WaitingSince, pending = 0, 0
		case ingest.CSATSubmitted:
			var p ingest.CSATSubmittedPayload
			if e.Into(&p) == nil {
				f.CSAT, f.CSATAt = int64(p.Rating), at
			}
		case ingest.ModerationVerdict:
			verdicts = append(verdicts, e)
		case ingest.ModerationDecision:
			var p ingest.ModerationDecisionPayload
			if e.Into(&p) == nil && p.ItemID != "" {
				if _, seen := decisions[p.ItemID]; !seen {
					decisions[p.ItemID] = e
				}
			}
		}
	}
	if f.StartedAt != 0 {
		f.StartedInHours = hours.open(f.StartedAt)
	}
	if f.WaitFrom > 0 && f.Channel != ingest.ChannelOffline {
		f.MissAt = f.WaitFrom + cfg.threshold()
		if f.LeftAt > 0 && f.LeftAt < f.MissAt {
			f.MissAt = f.LeftAt
		}
		f.MissCandidate = f.FirstReplyAt == 0 || f.FirstReplyAt > f.MissAt
	}
	if !f.Open {
		f.WaitingSince = 0
	}
	f.normalise()
	return f, moderationFacts(f.SiteID, f.ConversationID, verdicts, decisions)
}

func moderationFacts(site, conv string, verdicts []ingest.Event, decisions map[string]ingest.Event) []ModerationFact {
	var out []ModerationFact
	for _, v := range verdicts {
		var p ingest.ModerationVerdictPayload
		if v.Into(&p) != nil {
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
			var dp ingest.ModerationDecisionPayload
			if d.Into(&dp) == nil {
				m.DecidedAt, m.Decision, m.Version = d.OccurredAt.UnixMilli(), dp.Decision, 2
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
