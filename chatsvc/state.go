package chatsvc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
}

const convColumns = `id, site_id, visitor_id, channel, status, routing, assignee_id, team_id, queued_at, last_seq,
	last_role, last_preview, last_at, visitor_read_seq, agent_read_seq, csat_rating, csat_comment, csat_at,
	away_sent, created_at, updated_at, resolved_at`

func scanConv(row interface{ Scan(...any) error }) (*convState, error) {
	var c convState
	var away int
	err := row.Scan(&c.ID, &c.SiteID, &c.VisitorID, &c.Channel, &c.Status, &c.Routing, &c.Assignee, &c.TeamID,
		&c.QueuedAt, &c.LastSeq, &c.LastRole, &c.LastPreview, &c.LastAt, &c.VisitorReadSeq, &c.AgentReadSeq,
		&c.CSATRating, &c.CSATComment, &c.CSATAt, &away, &c.CreatedAt, &c.UpdatedAt, &c.ResolvedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read conversation: %w", err)
	}
	c.AwaySent = away != 0
	return &c, nil
}

func insertConv(ctx context.Context, tx *sql.Tx, c *convState) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO conversations (`+convColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.SiteID, c.VisitorID, c.Channel, c.Status, c.Routing, c.Assignee, c.TeamID, c.QueuedAt, c.LastSeq,
		c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq, c.CSATRating, c.CSATComment, c.CSATAt,
		boolInt(c.AwaySent), c.CreatedAt, c.UpdatedAt, c.ResolvedAt)
	if err != nil {
		return fmt.Errorf("insert conversation %s: %w", c.ID, err)
	}
	return nil
}

func updateConv(ctx context.Context, stmt *sql.Stmt, c *convState) error {
	_, err := stmt.ExecContext(ctx, c.Status, c.Routing, c.Assignee, c.TeamID, c.QueuedAt, c.LastSeq,
		c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq, c.CSATRating, c.CSATComment, c.CSATAt,
		boolInt(c.AwaySent), c.UpdatedAt, c.ResolvedAt, c.ID)
	if err != nil {
		return fmt.Errorf("update conversation %s: %w", c.ID, err)
	}
	return nil
}

// updateConvActivity stores a conversation whose status and assignee are
// unchanged (most batches: messages and receipts). Leaving those two
// columns out spares SQLite rewriting the conversations_assignee index.
func updateConvActivity(ctx context.Context, stmt *sql.Stmt, c *convState) error {
	_, err := stmt.ExecContext(ctx, c.Routing, c.TeamID, c.QueuedAt, c.LastSeq,
		c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq, c.CSATRating, c.CSATComment, c.CSATAt,
		boolInt(c.AwaySent), c.UpdatedAt, c.ResolvedAt, c.ID)
	if err != nil {
		return fmt.Errorf("update conversation %s: %w", c.ID, err)
	}
	return nil
}

const updateConvActivitySQL = `UPDATE conversations SET routing = ?, team_id = ?, queued_at = ?, last_seq = ?,
	last_role = ?, last_preview = ?, last_at = ?, visitor_read_seq = ?, agent_read_seq = ?, csat_rating = ?, csat_comment = ?,
	csat_at = ?, away_sent = ?, updated_at = ?, resolved_at = ? WHERE id = ?`

const updateConvSQL = `UPDATE conversations SET status = ?, routing = ?, assignee_id = ?, team_id = ?, queued_at = ?, last_seq = ?,
	last_role = ?, last_preview = ?, last_at = ?, visitor_read_seq = ?, agent_read_seq = ?, csat_rating = ?, csat_comment = ?,
	csat_at = ?, away_sent = ?, updated_at = ?, resolved_at = ? WHERE id = ?`

// convMeta is the part of a conversation other goroutines check
// permissions against; the writer publishes it after each commit.
type convMeta struct {
	SiteID, VisitorID, Assignee, Status, Routing, TeamID string
}

func (c *convState) meta() convMeta {
	return convMeta{SiteID: c.SiteID, VisitorID: c.VisitorID, Assignee: c.Assignee, Status: c.Status, Routing: c.Routing, TeamID: c.TeamID}
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
	return ingest.Actor{Role: ingest.Role(a.Role), ID: a.ID}
}
