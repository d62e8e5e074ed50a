package ingest

import (
	"errors"
	"fmt"
)

// ConversationQueued is written when a conversation starts waiting for a
// human: at start when no bot handles the site, when the bot hands over,
// or when an agent goes offline. Waiting time runs from here to the next
// conversation.assigned.
const ConversationQueued Type = "conversation.queued"

// Channels a conversation can arrive through.
const (
	ChannelWidget  = "widget"
	ChannelOffline = "offline_form"
	ChannelAPI     = "api"
)

// ConversationStartedPayload describes a new conversation and its visitor.
type ConversationStartedPayload struct {
	Channel     string            `json:"channel"`
	VisitorID   string            `json:"visitor_id"`
	VisitorName string            `json:"visitor_name,omitempty"`
	Email       string            `json:"email,omitempty"`
	PageURL     string            `json:"page_url,omitempty"`
	Referrer    string            `json:"referrer,omitempty"`
	UserAgent   string            `json:"user_agent,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
	TeamID      string            `json:"team_id,omitempty"`
}

func (p *ConversationStartedPayload) validate() error {
	if p.VisitorID == "" {
		return errors.New("visitor_id is empty")
	}
	switch p.Channel {
	case ChannelWidget, ChannelOffline, ChannelAPI:
		return nil
	}
	return fmt.Errorf("channel %q is not one of widget, offline_form, api", p.Channel)
}

// Attachment is a file sent with a message; the bytes live in the chat
// service's attachment store under ID.
type Attachment struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// Message kinds.
const (
	KindText = "text"
	KindNote = "note" // private note between staff, never shown to the visitor
)

// MessageSentPayload is one message; Seq orders it within its conversation.
type MessageSentPayload struct {
	MessageID       string       `json:"message_id"`
	ClientMessageID string       `json:"client_message_id,omitempty"`
	Seq             int64        `json:"seq"`
	Kind            string       `json:"kind"`
	Text            string       `json:"text"`
	Attachments     []Attachment `json:"attachments,omitempty"`
	// Blocked is set when the inline moderation check stopped delivery;
	// workers still judge the message and queue it for review.
	Blocked bool `json:"blocked,omitempty"`
}

func (p *MessageSentPayload) validate() error {
	if p.MessageID == "" {
		return errors.New("message_id is empty")
	}
	if p.Kind != KindText && p.Kind != KindNote {
		return fmt.Errorf("kind %q is not text or note", p.Kind)
	}
	return nil
}

// MessageReadPayload says the actor has read everything up to UpToSeq.
type MessageReadPayload struct {
	UpToSeq int64 `json:"up_to_seq"`
}

// ConversationQueuedPayload says why the conversation waits and where.
type ConversationQueuedPayload struct {
	Reason   string `json:"reason"` // new, handover, agent_offline, reopened
	Position int    `json:"position"`
	TeamID   string `json:"team_id,omitempty"`
}

// ConversationAssignedPayload names the agent who now owns the conversation.
type ConversationAssignedPayload struct {
	AgentID string `json:"agent_id"`
	TeamID  string `json:"team_id,omitempty"`
	Reason  string `json:"reason"` // auto, manual
}

func (p *ConversationAssignedPayload) validate() error {
	if p.AgentID == "" {
		return errors.New("agent_id is empty")
	}
	return nil
}

// ConversationTransferredPayload moves a conversation to an agent or a team.
type ConversationTransferredPayload struct {
	FromAgentID string `json:"from_agent_id,omitempty"`
	ToAgentID   string `json:"to_agent_id,omitempty"`
	ToTeamID    string `json:"to_team_id,omitempty"`
	Note        string `json:"note,omitempty"`
}

func (p *ConversationTransferredPayload) validate() error {
	if p.ToAgentID == "" && p.ToTeamID == "" {
		return errors.New("neither to_agent_id nor to_team_id is set")
	}
	return nil
}

// ConversationResolvedPayload closes a conversation.
type ConversationResolvedPayload struct {
	Reason string `json:"reason,omitempty"` // agent, visitor, bot, inactive
}

// ConversationReopenedPayload reopens a resolved conversation.
type ConversationReopenedPayload struct {
	Reason string `json:"reason,omitempty"` // visitor_message, agent
}

// VisitorLeftPayload records that the visitor closed the chat or went away.
type VisitorLeftPayload struct {
	Reason string `json:"reason,omitempty"` // closed, timeout
}

// CSATSubmittedPayload is the visitor's rating of a resolved conversation.
type CSATSubmittedPayload struct {
	Rating  int    `json:"rating"`
	Comment string `json:"comment,omitempty"`
}

func (p *CSATSubmittedPayload) validate() error {
	if p.Rating < 1 || p.Rating > 5 {
		return fmt.Errorf("rating %d is not between 1 and 5", p.Rating)
	}
	return nil
}

// Moderation actions of a verdict.
const (
	ActionAllow  = "allow"
	ActionFlag   = "flag"
	ActionBlock  = "block"
	ActionRedact = "redact"
)

// Span is a half-open byte range [Start, End) of the original text that a
// rule matched.
type Span struct {
	Start    int    `json:"start"`
	End      int    `json:"end"`
	Category string `json:"category"`
	Rule     string `json:"rule,omitempty"`
	// Source is the detector that found it: "rules" (word lists, intent
	// grammar, regexes, PII, links), "model:<name>@<version>" (the
	// in-process model), "classifier:<name>" (an external classifier) or
	// "flood". Optional: older producers leave it out.
	Source string `json:"source,omitempty"`
	// Match is the list term or link domain that matched, when there is
	// one, so that moderators can allow or block exactly that.
	Match string `json:"match,omitempty"`
}

// VerdictSource says which detector found a category of a verdict, and
// whether that category set the verdict's action.
type VerdictSource struct {
	Category string `json:"category"`
	Source   string `json:"source"`
	Decided  bool   `json:"decided,omitempty"`
}

// ModerationVerdictPayload is the moderation engine's judgement of one message.
type ModerationVerdictPayload struct {
	MessageEventID string   `json:"message_event_id"`
	MessageID      string   `json:"message_id"`
	Stage          string   `json:"stage"` // inline, worker
	Action         string   `json:"action"`
	Categories     []string `json:"categories,omitempty"`
	Spans          []Span   `json:"spans,omitempty"`
	Severity       int      `json:"severity"`
	ItemID         string   `json:"item_id,omitempty"` // review-queue item when flagged or blocked
	// Sources lists, per category, the detectors that found it (optional).
	Sources []VerdictSource `json:"sources,omitempty"`
}

func (p *ModerationVerdictPayload) validate() error {
	if p.MessageID == "" {
		return errors.New("message_id is empty")
	}
	switch p.Action {
	case ActionAllow, ActionFlag, ActionBlock, ActionRedact:
		return nil
	}
	return fmt.Errorf("action %q is not allow, flag, block or redact", p.Action)
}

// Moderator decisions.
const (
	DecisionApprove  = "approve"
	DecisionRemove   = "remove"
	DecisionBan      = "ban"
	DecisionReviewed = "reviewed"
	// DecisionUnban lifts a visitor's ban early; it names no item.
	DecisionUnban = "unban"
)

// ModerationDecisionPayload is a moderator's action on a review-queue
// item, or the lifting of a ban (DecisionUnban, without an item).
type ModerationDecisionPayload struct {
	ItemID    string  `json:"item_id"`
	MessageID string  `json:"message_id,omitempty"`
	VisitorID string  `json:"visitor_id,omitempty"`
	Decision  string  `json:"decision"`
	Reason    string  `json:"reason,omitempty"`
	BanUntil  *Millis `json:"ban_until,omitempty"`
}

func (p *ModerationDecisionPayload) validate() error {
	switch p.Decision {
	case DecisionApprove, DecisionRemove, DecisionReviewed:
		return nil
	case DecisionBan:
		if p.VisitorID == "" || p.BanUntil == nil {
			return errors.New("ban needs visitor_id and ban_until")
		}
		return nil
	case DecisionUnban:
		if p.VisitorID == "" {
			return errors.New("unban needs visitor_id")
		}
		if p.BanUntil != nil {
			return errors.New("unban takes no ban_until")
		}
		return nil
	}
	return fmt.Errorf("decision %q is not approve, remove, ban, reviewed or unban", p.Decision)
}

// AgentPresence is written when an agent's effective presence changes.
// It belongs to no conversation: its conversation_id is AgentKey(agent id)
// so one agent's presence changes share a Kafka key and stay in order.
const AgentPresence Type = "agent.presence"

// Agent presence statuses.
const (
	PresenceOnline  = "online"
	PresenceAway    = "away"
	PresenceOffline = "offline"
)

// AgentKeyPrefix starts the conversation_id of agent.presence events.
const AgentKeyPrefix = "agent:"

// AgentKey returns the conversation_id (and Kafka key) of an agent's
// presence events.
func AgentKey(agentID string) string { return AgentKeyPrefix + agentID }

// AgentPresencePayload is an agent's new presence and the one it replaces.
type AgentPresencePayload struct {
	Status   string `json:"status"`
	Previous string `json:"previous,omitempty"`
}

func (p *AgentPresencePayload) validate() error {
	if !validPresence(p.Status) {
		return fmt.Errorf("status %q is not online, away or offline", p.Status)
	}
	if p.Previous != "" && !validPresence(p.Previous) {
		return fmt.Errorf("previous %q is not online, away or offline", p.Previous)
	}
	return nil
}

func validPresence(s string) bool {
	return s == PresenceOnline || s == PresenceAway || s == PresenceOffline
}

// Types lists every event type this build knows, in documentation order.
var Types = []Type{
	ConversationStarted, ConversationQueued, MessageSent, MessageRead,
	ConversationAssigned, ConversationTransferred, ConversationResolved,
	ConversationReopened, VisitorLeft, CSATSubmitted, ModerationVerdict,
	ModerationDecision, AgentPresence, SiteUpdated,
}

// PayloadFor returns a new zero payload of the type that belongs to typ.
func PayloadFor(typ Type) (any, bool) {
	switch typ {
	case ConversationStarted:
		return &ConversationStartedPayload{}, true
	case ConversationQueued:
		return &ConversationQueuedPayload{}, true
	case MessageSent:
		return &MessageSentPayload{}, true
	case MessageRead:
		return &MessageReadPayload{}, true
	case ConversationAssigned:
		return &ConversationAssignedPayload{}, true
	case ConversationTransferred:
		return &ConversationTransferredPayload{}, true
	case ConversationResolved:
		return &ConversationResolvedPayload{}, true
	case ConversationReopened:
		return &ConversationReopenedPayload{}, true
	case VisitorLeft:
		return &VisitorLeftPayload{}, true
	case CSATSubmitted:
		return &CSATSubmittedPayload{}, true
	case ModerationVerdict:
		return &ModerationVerdictPayload{}, true
	case ModerationDecision:
		return &ModerationDecisionPayload{}, true
	case AgentPresence:
		return &AgentPresencePayload{}, true
	case SiteUpdated:
		return &SiteUpdatedPayload{}, true
	}
	return nil, false
}
