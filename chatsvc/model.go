package chatsvc

import (
	"time"

	"github.com/parleychat/parley/ingest"
)

// Conversation statuses.
const (
	StatusOpen     = "open"
	StatusPending  = "pending"
	StatusResolved = "resolved"
)

// Conversation routing states.
const (
	RoutingBot      = "bot"
	RoutingQueued   = "queued"
	RoutingAssigned = "assigned"
)

// Message statuses.
const (
	MsgVisible = "visible"
	MsgBlocked = "blocked"
	MsgHidden  = "hidden"
)

// Author of a message as clients see it.
type Author struct {
	Role string `json:"role"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`

	// mayStepIn: a supervisor or admin, who may act in a conversation
	// assigned to someone else; stepIn: this action does (see mayAct).
	mayStepIn, stepIn bool
}

// AttachmentView is an attachment with the URL it is served from.
type AttachmentView struct {
	ingest.Attachment
	URL string `json:"url"`
}

// Message is the wire and REST form of one message.
type Message struct {
	ID             string           `json:"id"`
	ConversationID string           `json:"conversation_id"`
	Seq            int64            `json:"seq"`
	ClientID       string           `json:"client_id,omitempty"`
	Author         Author           `json:"author"`
	Kind           string           `json:"kind"`
	Text           string           `json:"text"`
	Attachments    []AttachmentView `json:"attachments,omitempty"`
	Status         string           `json:"status"`
	CreatedAt      ingest.Millis    `json:"created_at"`

	// Known to the server only.
	eventID    string
	reason     string
	categories []string
}

// forVisitor returns what a visitor may see of m, and false when the
// visitor may not see it at all (notes, other people's blocked messages).
func (m Message) forVisitor(visitorID string) (Message, bool) {
	if m.Kind == ingest.KindNote {
		return Message{}, false
	}
	switch m.Status {
	case MsgBlocked:
		if m.Author.ID != visitorID {
			return Message{}, false
		}
	case MsgHidden:
		m.Text, m.Attachments = "", nil
	}
	return m, true
}

// forAgent hides the text of blocked and hidden messages.
func (m Message) forAgent() Message {
	if m.Status != MsgVisible {
		m.Text, m.Attachments = "", nil
	}
	return m
}

// VisitorRef names a conversation's visitor.
type VisitorRef struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// AgentRef names an agent.
type AgentRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// LastMessage previews a conversation's newest message.
type LastMessage struct {
	Seq     int64         `json:"seq"`
	Role    string        `json:"role"`
	Preview string        `json:"preview"`
	At      ingest.Millis `json:"at"`
}

// CSAT is a submitted rating.
type CSAT struct {
	Rating  int           `json:"rating"`
	Comment string        `json:"comment,omitempty"`
	At      ingest.Millis `json:"at"`
}

// Conversation is the wire and REST summary of a conversation.
type Conversation struct {
	ID             string        `json:"id"`
	SiteID         string        `json:"site_id"`
	Visitor        VisitorRef    `json:"visitor"`
	Channel        string        `json:"channel"`
	Status         string        `json:"status"`
	Routing        string        `json:"routing"`
	Assignee       *AgentRef     `json:"assignee"`
	TeamID         string        `json:"team_id"`
	QueuePosition  int           `json:"queue_position"`
	LastSeq        int64         `json:"last_seq"`
	LastMessage    *LastMessage  `json:"last_message"`
	VisitorReadSeq int64         `json:"visitor_read_seq"`
	AgentReadSeq   int64         `json:"agent_read_seq"`
	CSAT           *CSAT         `json:"csat"`
	CreatedAt      ingest.Millis `json:"created_at"`
	UpdatedAt      ingest.Millis `json:"updated_at"`
}

// Visitor is what agents see about a visitor.
type Visitor struct {
	ID         string            `json:"id"`
	SiteID     string            `json:"site_id"`
	ExternalID string            `json:"external_id,omitempty"`
	Verified   bool              `json:"verified"`
	Name       string            `json:"name"`
	Email      string            `json:"email"`
	Fields     map[string]string `json:"fields,omitempty"`
	PageURL    string            `json:"page_url"`
	PageTitle  string            `json:"page_title"`
	Referrer   string            `json:"referrer"`
	UserAgent  string            `json:"user_agent"`
	Browser    string            `json:"browser"`
	Timezone   string            `json:"timezone"`
	Locale     string            `json:"locale"`
	LocalTime  string            `json:"local_time,omitempty"`
	IP         string            `json:"ip"`
	CreatedAt  ingest.Millis     `json:"created_at"`
	LastSeenAt ingest.Millis     `json:"last_seen_at"`
}

func msTime(ms int64) ingest.Millis {
	if ms == 0 {
		return ingest.Millis{}
	}
	return ingest.At(time.UnixMilli(ms))
}

func preview(text string) string {
	const max = 140
	n := 0
	for i := range text {
		if n == max {
			return text[:i] + "…"
		}
		n++
	}
	return text
}
