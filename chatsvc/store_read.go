package chatsvc

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const messageColumns = `id, conversation_id, seq, client_id, author_role, author_id, author_name, kind, text, attachments, status, reason, categories, event_id, created_at`

// messagesAfter returns up to limit messages with seq > after, in order.
func (s *Service) messagesAfter(ctx context.Context, convID string, after int64, limit int) ([]Message, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?`, convID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", convID, err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("read messages of %s: %w", convID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// convSummaryQuery joins a conversation with its visitor's name.
const convSummaryQuery = `SELECT c.id, c.site_id, c.visitor_id, c.channel, c.status, c.routing, c.assignee_id, c.team_id, c.queued_at, c.last_seq,
	c.last_role, c.last_preview, c.last_at, c.visitor_read_seq, c.agent_read_seq, c.csat_rating, c.csat_comment, c.csat_at,
	c.away_sent, c.created_at, c.updated_at, c.resolved_at, COALESCE(v.name, ''), COALESCE(v.email, '')
	FROM conversations c LEFT JOIN visitors v ON v.id = c.visitor_id`

func (s *Service) scanSummaries(rows *sql.Rows) ([]Conversation, error) {
	defer rows.Close()
	out := []Conversation{}
	for rows.Next() {
		var c convState
		var away int
		var v visitorState
		if err := rows.Scan(&c.ID, &c.SiteID, &c.VisitorID, &c.Channel, &c.Status, &c.Routing, &c.Assignee, &c.TeamID,
			&c.QueuedAt, &c.LastSeq, &c.LastRole, &c.LastPreview, &c.LastAt, &c.VisitorReadSeq, &c.AgentReadSeq,
			&c.CSATRating, &c.CSATComment, &c.CSATAt, &away, &c.CreatedAt, &c.UpdatedAt, &c.ResolvedAt, &v.Name, &v.Email); err != nil {
			return nil, fmt.Errorf("read conversations: %w", err)
		}
		v.ID = c.VisitorID
		out = append(out, s.summary(&c, v))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read conversations: %w", err)
	}
	return out, nil
}

// latestConversation is the visitor's newest conversation, or nil.
func (s *Service) latestConversation(ctx context.Context, visitorID string) (*Conversation, error) {
	rows, err := s.db.QueryContext(ctx, convSummaryQuery+` WHERE c.visitor_id = ? ORDER BY c.created_at DESC LIMIT 1`, visitorID)
	if err != nil {
		return nil, fmt.Errorf("latest conversation of %s: %w", visitorID, err)
	}
	list, err := s.scanSummaries(rows)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// ConversationFilter selects inbox rows.
type ConversationFilter struct {
	Status    string // open, pending, resolved, all
	Scope     string // unassigned, mine, all
	Me        string
	SiteID    string
	VisitorID string
	Before    time.Time
	Limit     int
}

// Conversations lists conversations newest first.
func (s *Service) Conversations(ctx context.Context, f ConversationFilter) ([]Conversation, error) {
	var where []string
	var args []any
	switch f.Status {
	case "", StatusOpen:
		where = append(where, "c.status = 'open'")
	case StatusPending, StatusResolved:
		where, args = append(where, "c.status = ?"), append(args, f.Status)
	case "all":
	default:
		return nil, errf(CodeBadRequest, "status must be open, pending, resolved or all, not %q", f.Status)
	}
	switch f.Scope {
	case "", "all":
	case "unassigned":
		where = append(where, "c.assignee_id = ''")
	case "mine":
		where, args = append(where, "c.assignee_id = ?"), append(args, f.Me)
	default:
		return nil, errf(CodeBadRequest, "scope must be unassigned, mine or all, not %q", f.Scope)
	}
	if f.SiteID != "" {
		where, args = append(where, "c.site_id = ?"), append(args, f.SiteID)
	}
	if f.VisitorID != "" {
		where, args = append(where, "c.visitor_id = ?"), append(args, f.VisitorID)
	}
	if !f.Before.IsZero() {
		where, args = append(where, "c.updated_at < ?"), append(args, f.Before.UnixMilli())
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := convSummaryQuery
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return s.scanSummaries(rows)
}

// conversation returns one summary.
func (s *Service) conversation(ctx context.Context, id string) (Conversation, error) {
	rows, err := s.db.QueryContext(ctx, convSummaryQuery+` WHERE c.id = ?`, id)
	if err != nil {
		return Conversation{}, fmt.Errorf("read conversation %s: %w", id, err)
	}
	list, err := s.scanSummaries(rows)
	if err != nil {
		return Conversation{}, err
	}
	if len(list) == 0 {
		return Conversation{}, errf(CodeNotFound, "conversation %s not found", id)
	}
	return list[0], nil
}

// visitorDetail is what agents see about a visitor.
func (s *Service) visitorDetail(ctx context.Context, id string) (Visitor, error) {
	var v Visitor
	var verified int
	var fields string
	var created, seen int64
	err := s.db.QueryRowContext(ctx, `SELECT id, site_id, external_id, verified, name, email, fields, page_url, page_title, referrer, user_agent, timezone, locale, ip, created_at, last_seen_at
		FROM visitors WHERE id = ?`, id).Scan(&v.ID, &v.SiteID, &v.ExternalID, &verified, &v.Name, &v.Email, &fields, &v.PageURL, &v.PageTitle,
		&v.Referrer, &v.UserAgent, &v.Timezone, &v.Locale, &v.IP, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Visitor{ID: id}, nil
	}
	if err != nil {
		return Visitor{}, fmt.Errorf("read visitor %s: %w", id, err)
	}
	v.Verified = verified != 0
	_ = json.Unmarshal([]byte(fields), &v.Fields)
	v.CreatedAt, v.LastSeenAt = msTime(created), msTime(seen)
	v.Browser = browserOf(v.UserAgent)
	if loc, err := time.LoadLocation(v.Timezone); err == nil && v.Timezone != "" {
		v.LocalTime = time.Now().In(loc).Format(time.RFC3339)
	}
	return v, nil
}

// browserOf names the browser and OS of a User-Agent, roughly.
func browserOf(ua string) string {
	if ua == "" {
		return ""
	}
	browser := "Unknown browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if i := strings.Index(ua, b.token); i >= 0 {
			ver := ua[i+len(b.token):]
			if j := strings.IndexAny(ver, ". "); j > 0 {
				ver = ver[:j]
			}
			browser = b.name + " " + ver
			break
		}
	}
	os := ""
	for _, o := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"},
		{"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			os = o.name
			break
		}
	}
	if os != "" {
		return browser + " on " + os
	}
	return browser
}
