package analytics

import (
	"encoding/json"

	"github.com/parleychat/parley/ingest"
)

// ConversationFacts is one conversation as docs/metrics.md measures it,
// derived from all of its events and its site's profile by BuildFacts.
// Times are Unix milliseconds (0 = never); durations are milliseconds
// (-1 = none); *Bh* fields measure the same inside the site's business
// hours. Version orders builds (see factsVersion).
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

	// The site's targets when the facts were built, and the outcome of
	// the first-response target (an slaXxx code) on each clock.
	FRTargetMs    int64 `json:"fr_target_ms"`
	ReplyTargetMs int64 `json:"reply_target_ms"`
	SLA           uint8 `json:"sla"`
	SLABh         uint8 `json:"sla_bh"`
	// FRDeadline(Bh) is when the first-response target passes (0 = no
	// human needed; on the business clock also: not within a year).
	FRDeadline   int64 `json:"fr_deadline"`
	FRDeadlineBh int64 `json:"fr_deadline_bh"`
	// RepliesInTarget(Bh) counts the replies after the first (ReplyMs[1:])
	// that came within the reply target.
	RepliesInTarget   int64 `json:"replies_in_target"`
	RepliesInTargetBh int64 `json:"replies_in_target_bh"`

	// ResolvedAt is the first close; LastResolvedAt the last one while the
	// conversation is closed (0 while open), with its reason.
	ResolvedAt         int64  `json:"resolved_at"`
	ResolutionMs       int64  `json:"resolution_ms"`
	ResolutionBhMs     int64  `json:"resolution_bh_ms"`
	LastResolvedAt     int64  `json:"last_resolved_at"`
	ResolutionLastMs   int64  `json:"resolution_last_ms"`
	ResolutionLastBhMs int64  `json:"resolution_last_bh_ms"`
	CloseReason        string `json:"close_reason"`
	Reopens            int64  `json:"reopens"`

	// Missed: a human was needed and the visitor left, or the
	// conversation was closed, before any human reply. MissAt is that
	// moment and MissReason says which (missXxx).
	Missed     bool   `json:"missed"`
	MissAt     int64  `json:"miss_at"`
	MissReason string `json:"miss_reason"`
	LeftAt     int64  `json:"left_at"`

	CSAT        int64  `json:"csat"`
	CSATAt      int64  `json:"csat_at"`
	CSATComment string `json:"csat_comment"`
	// SurveyAt is when the rating survey counts as offered: the first
	// close after a human agent wrote (bot-only closes offer none).
	SurveyAt int64 `json:"survey_at"`

	// MsgAt and MsgRole list every message by time: role 1 visitor text,
	// 2 agent text, 3 bot text, 4 note. Message counts by send time come
	// from here, so they are deduplicated with the facts.
	MsgAt   []int64 `json:"msg_at"`
	MsgRole Codes   `json:"msg_role"`

	MsgsVisitor int64 `json:"msgs_visitor"`
	MsgsAgent   int64 `json:"msgs_agent"`
	MsgsBot     int64 `json:"msgs_bot"`
	Notes       int64 `json:"notes"`

	Open         bool  `json:"open"`
	WaitingSince int64 `json:"waiting_since"`

	// Engagements: one per stretch of an agent owning the conversation
	// (To 0 = still owned). Parallel lists: agent, from, to, the team it
	// belonged to, how it started (engStartXxx) and ended (engEndXxx),
	// the agent's first response and reply waits within it (measured from
	// the later of the visitor's wait and the engagement's start) and the
	// agent's text messages in it.
	AssignAgents []string  `json:"assign_agents"`
	AssignFrom   []int64   `json:"assign_from"`
	AssignTo     []int64   `json:"assign_to"`
	EngTeam      []string  `json:"eng_team"`
	EngStart     Codes     `json:"eng_start"`
	EngEnd       Codes     `json:"eng_end"`
	EngFRMs      []int64   `json:"eng_fr_ms"`
	EngFRBhMs    []int64   `json:"eng_fr_bh_ms"`
	EngReplyMs   [][]int64 `json:"eng_reply_ms"`
	EngReplyBhMs [][]int64 `json:"eng_reply_bh_ms"`
	EngMsgs      []int64   `json:"eng_msgs"`
	// EngRepliesInTarget(Bh) count each engagement's replies after its
	// first that came within the reply target.
	EngRepliesInTarget   []int64 `json:"eng_replies_in_target"`
	EngRepliesInTargetBh []int64 `json:"eng_replies_in_target_bh"`
}

// First-response target outcomes (ConversationFacts.SLA, SLABh).
const (
	slaNone        uint8 = 0 // no human needed, or an offline form
	slaMet         uint8 = 1 // first human reply within the target
	slaLate        uint8 = 2 // answered, after the target
	slaMissedLate  uint8 = 3 // missed after the target had passed
	slaMissedEarly uint8 = 4 // missed before the target passed (not judged)
	slaWaiting     uint8 = 5 // not answered yet: breached once the deadline passes
)

// Miss reasons.
const (
	missVisitorLeft = "visitor_left"
	missClosedBy    = "closed_by_" // + the close reason: agent, bot, visitor, inactive
	missClosed      = "closed"     // closed with no reason given
)

// Engagement starts and ends.
const (
	engStartAssigned    uint8 = 1
	engStartTransfer    uint8 = 2
	engStartReopened    uint8 = 3
	engEndOpen          uint8 = 0
	engEndResolved      uint8 = 1
	engEndTransferred   uint8 = 2
	engEndQueued        uint8 = 3
	engEndReassigned    uint8 = 4
	closeReasonInactive       = "inactive"
)

// FRBreached reports whether the first-response target counts as
// breached at now (ms): answered late, missed after the deadline, or
// still waiting past it.
func frBreached(code uint8, deadline, now int64) bool {
	return code == slaLate || code == slaMissedLate || (code == slaWaiting && deadline > 0 && deadline <= now)
}

// sla returns the first-response outcome and deadline on a clock.
func (f *ConversationFacts) sla(business bool) (uint8, int64) {
	if business {
		return f.SLABh, f.FRDeadlineBh
	}
	return f.SLA, f.FRDeadline
}

// normalise makes empty lists non-nil so that every store returns the same JSON.
func (f *ConversationFacts) normalise() {
	for _, p := range []*[]int64{&f.ReplyMs, &f.ReplyBhMs, &f.QueueWaitMs, &f.QueueWaitBhMs, &f.AssignFrom, &f.AssignTo,
		&f.EngFRMs, &f.EngFRBhMs, &f.EngMsgs, &f.EngRepliesInTarget, &f.EngRepliesInTargetBh} {
		if *p == nil {
			*p = []int64{}
		}
	}
	for _, p := range []*[]string{&f.AssignAgents, &f.EngTeam} {
		if *p == nil {
			*p = []string{}
		}
	}
	for _, p := range []*Codes{&f.MsgRole, &f.EngStart, &f.EngEnd} {
		if *p == nil {
			*p = Codes{}
		}
	}
	for _, p := range []*[][]int64{&f.EngReplyMs, &f.EngReplyBhMs} {
		if *p == nil {
			*p = [][]int64{}
		}
		for i := range *p {
			if (*p)[i] == nil {
				(*p)[i] = []int64{}
			}
		}
	}
	if f.MsgAt == nil {
		f.MsgAt = []int64{}
	}
}

// Codes are small codes (message roles, engagement starts and ends);
// JSON shows them as numbers, not base64.
type Codes []uint8

// MarshalJSON writes a number array.
func (r Codes) MarshalJSON() ([]byte, error) {
	out := make([]int, len(r))
	for i, v := range r {
		out[i] = int(v)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a number array.
func (r *Codes) UnmarshalJSON(b []byte) error {
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
