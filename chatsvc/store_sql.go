package chatsvc

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleychat/parley/ingest"
)

// Column lists and row codecs shared by store_sqlite.go and
// store_postgres.go: both keep times as Unix milliseconds, attachments as
// JSON text and categories as comma-separated text, so one scanner serves
// database/sql and pgx rows alike (each implementation turns its "no rows"
// error into sql.ErrNoRows before these see it).

type rowScanner interface{ Scan(dest ...any) error }

// resolvedOnly and notResolved are the conditions that let a query use
// the partial indexes on conversations (SQLite's statusIndexes, PostgreSQL's
// migration 3): each must appear in the query's text as it does in the
// index's, since neither database proves that a bound parameter is or is
// not 'resolved'.
const (
	resolvedOnly = `status = '` + StatusResolved + `'`
	notResolved  = `status <> '` + StatusResolved + `'`
)

const convColumns = `id, site_id, visitor_id, channel, status, routing, assignee_id, team_id, queued_at, last_seq,
	last_role, last_preview, last_at, visitor_read_seq, agent_read_seq, csat_rating, csat_comment, csat_at,
	away_sent, created_at, updated_at, resolved_at, version`

// convSelect reads conversations with their visitor's name and email.
const convSelect = `SELECT c.id, c.site_id, c.visitor_id, c.channel, c.status, c.routing, c.assignee_id, c.team_id, c.queued_at, c.last_seq,
	c.last_role, c.last_preview, c.last_at, c.visitor_read_seq, c.agent_read_seq, c.csat_rating, c.csat_comment, c.csat_at,
	c.away_sent, c.created_at, c.updated_at, c.resolved_at, c.version, COALESCE(v.name, ''), COALESCE(v.email, '')
	FROM conversations c LEFT JOIN visitors v ON v.id = c.visitor_id`

func convDest(c *convState) []any {
	return []any{&c.ID, &c.SiteID, &c.VisitorID, &c.Channel, &c.Status, &c.Routing, &c.Assignee, &c.TeamID,
		&c.QueuedAt, &c.LastSeq, &c.LastRole, &c.LastPreview, &c.LastAt, &c.VisitorReadSeq, &c.AgentReadSeq,
		&c.CSATRating, &c.CSATComment, &c.CSATAt, &c.AwaySent, &c.CreatedAt, &c.UpdatedAt, &c.ResolvedAt, &c.Version}
}

func convArgs(c *convState) []any {
	return []any{c.ID, c.SiteID, c.VisitorID, c.Channel, c.Status, c.Routing, c.Assignee, c.TeamID, c.QueuedAt, c.LastSeq,
		c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq, c.CSATRating, c.CSATComment, c.CSATAt,
		c.AwaySent, c.CreatedAt, c.UpdatedAt, c.ResolvedAt, c.Version}
}

func scanConv(row rowScanner) (*convState, error) {
	var c convState
	if err := row.Scan(convDest(&c)...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("read conversation: %w", err)
	}
	return &c, nil
}

func scanConvRow(row rowScanner) (ConversationRow, error) {
	var r ConversationRow
	if err := row.Scan(append(convDest(&r.Conv), &r.Visitor.Name, &r.Visitor.Email)...); err != nil {
		return ConversationRow{}, fmt.Errorf("read conversations: %w", err)
	}
	r.Visitor.ID, r.Visitor.SiteID = r.Conv.VisitorID, r.Conv.SiteID
	return r, nil
}

const messageColumns = `id, conversation_id, seq, client_id, author_role, author_id, author_name, kind, text, attachments, status, reason, categories, event_id, created_at`

func messageArgs(m Message, atts []ingest.Attachment) []any {
	var attJSON string
	if len(atts) > 0 {
		b, _ := json.Marshal(atts)
		attJSON = string(b)
	}
	return []any{m.ID, m.ConversationID, m.Seq, m.ClientID, m.Author.Role, m.Author.ID, m.Author.Name,
		m.Kind, m.Text, attJSON, m.Status, m.reason, strings.Join(m.categories, ","), m.eventID, m.CreatedAt.UnixMilli()}
}

func scanMessage(row rowScanner) (Message, error) {
	var m Message
	var atts, cats string
	var created int64
	err := row.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.ClientID, &m.Author.Role, &m.Author.ID, &m.Author.Name,
		&m.Kind, &m.Text, &atts, &m.Status, &m.reason, &cats, &m.eventID, &created)
	if err != nil {
		return Message{}, err
	}
	m.CreatedAt = msTime(created)
	if atts != "" {
		var list []ingest.Attachment
		if err := json.Unmarshal([]byte(atts), &list); err != nil {
			return Message{}, fmt.Errorf("attachments of message %s: %w", m.ID, err)
		}
		m.Attachments = viewAttachments(list)
	}
	if cats != "" {
		m.categories = strings.Split(cats, ",")
	}
	return m, nil
}

// scanMessageOnce reads one message row; ok is false when there is none.
func scanMessageOnce(row rowScanner) (Message, bool, error) {
	m, err := scanMessage(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, fmt.Errorf("read message: %w", err)
	}
	return m, true, nil
}

const siteColumns = `id, name, site_key, secret, allowed_origins, identity_required, settings, created_at, webhook_secret`

func siteArgs(s Site) []any {
	origins, _ := json.Marshal(s.AllowedOrigins)
	settings, _ := json.Marshal(s.Settings)
	return []any{s.ID, s.Name, s.Key, s.Secret, string(origins), s.IdentityRequired, string(settings), s.CreatedAt.UnixMilli(), s.WebhookSecret}
}

func scanSite(row rowScanner) (Site, error) {
	var s Site
	var origins, settings string
	var created int64
	if err := row.Scan(&s.ID, &s.Name, &s.Key, &s.Secret, &origins, &s.IdentityRequired, &settings, &created, &s.WebhookSecret); err != nil {
		return Site{}, fmt.Errorf("read site: %w", err)
	}
	if err := json.Unmarshal([]byte(origins), &s.AllowedOrigins); err != nil {
		return Site{}, fmt.Errorf("site %s origins: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(settings), &s.Settings); err != nil {
		return Site{}, fmt.Errorf("site %s settings: %w", s.ID, err)
	}
	s.CreatedAt = msTime(created)
	return s, nil
}

const visitorColumns = `id, site_id, external_id, verified, name, email, fields, page_url, page_title, referrer, user_agent, timezone, locale, ip, created_at, last_seen_at`

func scanVisitor(row rowScanner) (Visitor, bool, error) {
	var v Visitor
	var fields string
	var created, seen int64
	err := row.Scan(&v.ID, &v.SiteID, &v.ExternalID, &v.Verified, &v.Name, &v.Email, &fields, &v.PageURL, &v.PageTitle,
		&v.Referrer, &v.UserAgent, &v.Timezone, &v.Locale, &v.IP, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Visitor{}, false, nil
	}
	if err != nil {
		return Visitor{}, false, fmt.Errorf("read visitor: %w", err)
	}
	_ = json.Unmarshal([]byte(fields), &v.Fields)
	v.CreatedAt, v.LastSeenAt = msTime(created), msTime(seen)
	return v, true, nil
}

func fieldsJSON(fields map[string]string) string {
	if fields == nil {
		return ""
	}
	return string(encode(fields))
}

const attachmentColumns = `id, name, content_type, size, uploader_id, conversation_id, created_at, site_id`

func scanAttachment(row rowScanner) (AttachmentRecord, error) {
	var a AttachmentRecord
	var created int64
	err := row.Scan(&a.ID, &a.Name, &a.ContentType, &a.Size, &a.UploaderID, &a.ConversationID, &created, &a.SiteID)
	if errors.Is(err, sql.ErrNoRows) {
		return AttachmentRecord{}, ErrNotFound
	}
	if err != nil {
		return AttachmentRecord{}, fmt.Errorf("read attachment: %w", err)
	}
	a.CreatedAt = msTime(created).Time
	return a, nil
}

func scanCanned(row rowScanner) (Canned, error) {
	var r Canned
	if err := row.Scan(&r.ID, &r.SiteID, &r.Shortcut, &r.Text); err != nil {
		return Canned{}, fmt.Errorf("read canned reply: %w", err)
	}
	return r, nil
}

// keyCount is one row of a count per key.
type keyCount struct {
	key string
	n   int
}

func scanCount(r rowScanner) (keyCount, error) {
	var k keyCount
	err := r.Scan(&k.key, &k.n)
	return k, err
}

func countMap(rows []keyCount) map[string]int {
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.key] = r.n
	}
	return out
}

// keyStatus is one agent's recorded status.
type keyStatus struct{ key, status string }

func scanStatus(r rowScanner) (keyStatus, error) {
	var k keyStatus
	err := r.Scan(&k.key, &k.status)
	return k, err
}

func statusMap(rows []keyStatus) map[string]string {
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.key] = r.status
	}
	return out
}

func scanID(r rowScanner) (string, error) {
	var id string
	err := r.Scan(&id)
	return id, err
}

func scanPresence(r rowScanner) (NodePresence, error) {
	var p NodePresence
	var at int64
	if err := r.Scan(&p.AgentID, &p.Node, &p.Status, &p.TeamID, &p.Name, &at); err != nil {
		return p, fmt.Errorf("read presence: %w", err)
	}
	p.At = time.UnixMilli(at)
	return p, nil
}
