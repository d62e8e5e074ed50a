package chatsvc

import (
	"time"

	"github.com/parleychat/parley/ingest"
)

// convState is the writer's copy of a conversation row.
type convState struct {
	ID, SiteID, VisitorID, Channel string
	Status, Routing                string
	Assignee, TeamID               string
	QueuedAt                       int64
	LastSeq                        int64
	LastRole, LastPreview          string
	LastAt                         int64
	VisitorReadSeq, AgentReadSeq   int64
	CSATRating                     int
	CSATComment                    string
	CSATAt                         int64
	AwaySent                       bool
	CreatedAt, UpdatedAt           int64
	ResolvedAt                     int64
	// Version is the stored row's version, checked by every update.
	Version int64
	// VisitorLeft (memory only) says visitor.left was written since the
	// visitor last wrote: a repeated leave changes nothing and emits nothing.
	VisitorLeft bool
}

// convMeta is the part of a conversation other goroutines check
// permissions against; the writer publishes it after each commit.
type convMeta struct {
	SiteID, VisitorID, Assignee, Status, Routing, TeamID string
}

func (c *convState) meta() convMeta {
	return convMeta{SiteID: c.SiteID, VisitorID: c.VisitorID, Assignee: c.Assignee, Status: c.Status, Routing: c.Routing, TeamID: c.TeamID}
}

// convChange says which of a conversation's columns an update may change
// compared with the committed row. A store writes only those, which spares
// the indexes on the others: SQLite rewrites every index that holds a
// column an UPDATE sets, whether or not its value changed, and a message
// (most updates) changes only the activity columns.
type convChange int

const (
	// changeAll may change any column (and is what an unknown old row gets).
	changeAll convChange = iota
	// changeRouting keeps status and assignee: routing, team and queue
	// time may change, with the activity columns.
	changeRouting
	// changeActivity keeps status, assignee, routing, team and queue time:
	// only the last message, read marks, CSAT, the away notice and the
	// update and resolution times may change.
	changeActivity
)

// changeFrom classifies the update from old (the committed row; nil when
// unknown) to c.
func changeFrom(old, c *convState) convChange {
	switch {
	case old == nil || old.Status != c.Status || old.Assignee != c.Assignee:
		return changeAll
	case old.Routing != c.Routing || old.TeamID != c.TeamID || old.QueuedAt != c.QueuedAt:
		return changeRouting
	}
	return changeActivity
}

// active is a conversation that is not resolved.
func (c *convState) active() bool { return c.Status != StatusResolved }

// counts reports whether c counts toward its assignee's load.
func (c *convState) counts() bool {
	return c.Assignee != "" && c.Routing == RoutingAssigned && c.active()
}

// visitorState is the writer's copy of what summaries show about a visitor.
type visitorState struct {
	ID, SiteID, Name, Email string
}

// summary builds the wire form; names come from the caches.
func (s *Service) summary(c *convState, v visitorState) Conversation {
	out := Conversation{
		ID: c.ID, SiteID: c.SiteID, Channel: c.Channel, Status: c.Status, Routing: c.Routing, TeamID: c.TeamID,
		Visitor: VisitorRef{ID: c.VisitorID, Name: v.Name, Email: v.Email},
		LastSeq: c.LastSeq, VisitorReadSeq: c.VisitorReadSeq, AgentReadSeq: c.AgentReadSeq,
		CreatedAt: msTime(c.CreatedAt), UpdatedAt: msTime(c.UpdatedAt),
	}
	if c.Assignee != "" {
		out.Assignee = &AgentRef{ID: c.Assignee, Name: s.agentName(c.Assignee)}
	}
	if c.Routing == RoutingQueued && c.Status != StatusResolved {
		out.QueuePosition = s.queuePosition(c.ID)
	}
	if c.LastSeq > 0 {
		out.LastMessage = &LastMessage{Seq: c.LastSeq, Role: c.LastRole, Preview: c.LastPreview, At: msTime(c.LastAt)}
	}
	if c.CSATRating > 0 {
		out.CSAT = &CSAT{Rating: c.CSATRating, Comment: c.CSATComment, At: msTime(c.CSATAt)}
	}
	return out
}

func nowMs(t time.Time) int64 { return t.UnixMilli() }

// eventActor maps a message author to an event actor.
func eventActor(a Author) ingest.Actor {
	return ingest.Actor{Role: ingest.Role(a.Role), ID: a.ID, StepIn: a.stepIn}
}
