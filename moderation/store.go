package moderation

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// migrations of moderation.db. Times are Unix milliseconds.
var migrations = []sqlstore.Migration{{Version: 1, SQL: `
CREATE TABLE mod_policies (
	site_id TEXT PRIMARY KEY,
	doc TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT NOT NULL
);
CREATE TABLE mod_items (
	id TEXT PRIMARY KEY,
	message_event_id TEXT NOT NULL UNIQUE,
	site_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	message_seq INTEGER NOT NULL,
	visitor_id TEXT NOT NULL,
	actor_role TEXT NOT NULL,
	text TEXT NOT NULL,
	action TEXT NOT NULL,
	categories TEXT NOT NULL,
	spans TEXT NOT NULL,
	severity INTEGER NOT NULL,
	status TEXT NOT NULL DEFAULT 'open',
	claimed_by TEXT NOT NULL DEFAULT '',
	claim_until INTEGER NOT NULL DEFAULT 0,
	decided_by TEXT NOT NULL DEFAULT '',
	decided_at INTEGER NOT NULL DEFAULT 0,
	decision_reason TEXT NOT NULL DEFAULT '',
	message_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX mod_items_queue ON mod_items(status, severity DESC, created_at);
CREATE INDEX mod_items_site ON mod_items(site_id, status);
CREATE TABLE mod_item_categories (
	item_id TEXT NOT NULL REFERENCES mod_items(id) ON DELETE CASCADE,
	category TEXT NOT NULL,
	PRIMARY KEY (item_id, category)
);
CREATE INDEX mod_item_categories_category ON mod_item_categories(category, item_id);
CREATE TABLE mod_audit (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at INTEGER NOT NULL,
	actor_id TEXT NOT NULL,
	actor_email TEXT NOT NULL,
	action TEXT NOT NULL,
	site_id TEXT NOT NULL,
	item_id TEXT NOT NULL DEFAULT '',
	visitor_id TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mod_audit_item ON mod_audit(item_id);
CREATE INDEX mod_audit_site ON mod_audit(site_id, id);
CREATE TABLE mod_bans (
	site_id TEXT NOT NULL,
	visitor_id TEXT NOT NULL,
	until_ms INTEGER NOT NULL,
	reason TEXT NOT NULL,
	banned_by TEXT NOT NULL,
	item_id TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	PRIMARY KEY (site_id, visitor_id)
);
CREATE TABLE mod_outbox (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id TEXT NOT NULL UNIQUE,
	topic TEXT NOT NULL,
	msg_key TEXT NOT NULL,
	event_type TEXT NOT NULL,
	value BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	sent_at INTEGER
);
CREATE INDEX mod_outbox_pending ON mod_outbox(sent_at, seq);
CREATE TABLE mod_processed (
	event_id TEXT PRIMARY KEY,
	at INTEGER NOT NULL
);
CREATE TABLE mod_context (
	site_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	event_id TEXT NOT NULL UNIQUE,
	message_id TEXT NOT NULL,
	role TEXT NOT NULL,
	actor_id TEXT NOT NULL,
	text TEXT NOT NULL,
	at INTEGER NOT NULL
);
CREATE INDEX mod_context_conv ON mod_context(site_id, conversation_id, seq);
CREATE TABLE mod_flood (
	site_id TEXT NOT NULL,
	visitor_id TEXT NOT NULL,
	at INTEGER NOT NULL,
	fingerprint TEXT NOT NULL,
	event_id TEXT NOT NULL UNIQUE
);
CREATE INDEX mod_flood_visitor ON mod_flood(site_id, visitor_id, at);
`}}

// Item statuses.
const (
	StatusOpen     = "open"
	StatusApproved = "approved"
	StatusRemoved  = "removed"
	StatusBanned   = "banned"
	StatusReviewed = "reviewed"
)

// Item is a message in the review queue.
type Item struct {
	ID             string        `json:"id"`
	MessageEventID string        `json:"message_event_id"`
	SiteID         string        `json:"site_id"`
	ConversationID string        `json:"conversation_id"`
	MessageID      string        `json:"message_id"`
	MessageSeq     int64         `json:"message_seq"`
	VisitorID      string        `json:"visitor_id"`
	ActorRole      string        `json:"actor_role"`
	Text           string        `json:"text"`
	Action         string        `json:"action"`
	Categories     []string      `json:"categories"`
	Spans          []ingest.Span `json:"spans"`
	Severity       int           `json:"severity"`
	Status         string        `json:"status"`
	ClaimedBy      string        `json:"claimed_by,omitempty"`
	ClaimUntil     *time.Time    `json:"claim_until,omitempty"`
	DecidedBy      string        `json:"decided_by,omitempty"`
	DecidedAt      *time.Time    `json:"decided_at,omitempty"`
	DecisionReason string        `json:"decision_reason,omitempty"`
	MessageAt      time.Time     `json:"message_at"`
	CreatedAt      time.Time     `json:"created_at"`
}

// ContextMessage is a message of the conversation around an item.
type ContextMessage struct {
	Seq       int64     `json:"seq"`
	MessageID string    `json:"message_id"`
	Role      string    `json:"role"`
	ActorID   string    `json:"actor_id"`
	Text      string    `json:"text"`
	At        time.Time `json:"at"`
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	ActorID    string    `json:"actor_id"`
	ActorEmail string    `json:"actor_email"`
	Action     string    `json:"action"`
	SiteID     string    `json:"site_id"`
	ItemID     string    `json:"item_id,omitempty"`
	VisitorID  string    `json:"visitor_id,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Ban keeps a visitor out of a site's chat until a time.
type Ban struct {
	SiteID    string    `json:"site_id"`
	VisitorID string    `json:"visitor_id"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason"`
	BannedBy  string    `json:"banned_by"`
	ItemID    string    `json:"item_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// derivedID returns a UUID (version 5) fixed by a message event id and a
// purpose, so that reprocessing a message yields the same ids.
func derivedID(eventID, purpose string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("parley:moderation:"+eventID+":"+purpose)).String()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const itemColumns = `id, message_event_id, site_id, conversation_id, message_id, message_seq, visitor_id, actor_role,
	text, action, categories, spans, severity, status, claimed_by, claim_until, decided_by, decided_at,
	decision_reason, message_at, created_at`

func scanItem(row interface{ Scan(...any) error }) (Item, error) {
	var it Item
	var cats, spans string
	var claimUntil, decidedAt, messageAt, createdAt int64
	err := row.Scan(&it.ID, &it.MessageEventID, &it.SiteID, &it.ConversationID, &it.MessageID, &it.MessageSeq,
		&it.VisitorID, &it.ActorRole, &it.Text, &it.Action, &cats, &spans, &it.Severity, &it.Status,
		&it.ClaimedBy, &claimUntil, &it.DecidedBy, &decidedAt, &it.DecisionReason, &messageAt, &createdAt)
	if err != nil {
		return Item{}, err
	}
	if err := json.Unmarshal([]byte(cats), &it.Categories); err != nil {
		return Item{}, fmt.Errorf("item %s categories: %w", it.ID, err)
	}
	if err := json.Unmarshal([]byte(spans), &it.Spans); err != nil {
		return Item{}, fmt.Errorf("item %s spans: %w", it.ID, err)
	}
	if it.ClaimedBy != "" {
		t := fromMS(claimUntil)
		it.ClaimUntil = &t
	}
	if decidedAt > 0 {
		t := fromMS(decidedAt)
		it.DecidedAt = &t
	}
	it.MessageAt, it.CreatedAt = fromMS(messageAt), fromMS(createdAt)
	return it, nil
}

func getItem(ctx context.Context, q querier, id string) (Item, error) {
	it, err := scanItem(q.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM mod_items WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, fmt.Errorf("item %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Item{}, fmt.Errorf("load item %s: %w", id, err)
	}
	return it, nil
}

func insertItem(ctx context.Context, tx *sql.Tx, it Item) (bool, error) {
	cats, _ := json.Marshal(it.Categories)
	spans, _ := json.Marshal(it.Spans)
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_items (id, message_event_id, site_id, conversation_id,
		message_id, message_seq, visitor_id, actor_role, text, action, categories, spans, severity, status,
		message_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)`,
		it.ID, it.MessageEventID, it.SiteID, it.ConversationID, it.MessageID, it.MessageSeq, it.VisitorID,
		it.ActorRole, it.Text, it.Action, string(cats), string(spans), it.Severity, ms(it.MessageAt), ms(it.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("insert item %s: %w", it.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	for _, c := range it.Categories {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_item_categories (item_id, category) VALUES (?, ?)`, it.ID, c); err != nil {
			return false, fmt.Errorf("insert item %s category: %w", it.ID, err)
		}
	}
	return true, nil
}

// ItemFilter selects queue items.
type ItemFilter struct {
	Status   string
	Category string
	SiteID   string
	Limit    int
	Offset   int
}

// ItemPage is a page of the queue with counts per category of the items
// matching the status and site filters.
type ItemPage struct {
	Items  []Item         `json:"items"`
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

func listItems(ctx context.Context, db *sql.DB, f ItemFilter) (ItemPage, error) {
	where := []string{"i.status = ?"}
	args := []any{f.Status}
	if f.SiteID != "" {
		where = append(where, "i.site_id = ?")
		args = append(args, f.SiteID)
	}
	base := strings.Join(where, " AND ")
	page := ItemPage{Items: []Item{}, Counts: map[string]int{}}
	rows, err := db.QueryContext(ctx, `SELECT c.category, COUNT(*) FROM mod_item_categories c
		JOIN mod_items i ON i.id = c.item_id WHERE `+base+` GROUP BY c.category`, args...)
	if err != nil {
		return page, fmt.Errorf("count items: %w", err)
	}
	for rows.Next() {
		var c string
		var n int
		if err := rows.Scan(&c, &n); err != nil {
			rows.Close()
			return page, fmt.Errorf("count items: %w", err)
		}
		page.Counts[c] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("count items: %w", err)
	}
	if f.Category != "" {
		base += " AND EXISTS (SELECT 1 FROM mod_item_categories c WHERE c.item_id = i.id AND c.category = ?)"
		args = append(args, f.Category)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_items i WHERE `+base, args...).Scan(&page.Total); err != nil {
		return page, fmt.Errorf("count items: %w", err)
	}
	rows, err = db.QueryContext(ctx, `SELECT `+prefixed(itemColumns, "i.")+` FROM mod_items i WHERE `+base+`
		ORDER BY i.severity DESC, i.created_at ASC, i.id LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return page, fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return page, fmt.Errorf("list items: %w", err)
		}
		page.Items = append(page.Items, it)
	}
	return page, rows.Err()
}

func prefixed(cols, p string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// contextAround returns up to before messages before seq and after after it.
func contextAround(ctx context.Context, db *sql.DB, site, conv string, seq int64, before, after int) ([]ContextMessage, error) {
	out := []ContextMessage{}
	rows, err := db.QueryContext(ctx, `SELECT seq, message_id, role, actor_id, text, at FROM (
		SELECT * FROM mod_context WHERE site_id = ? AND conversation_id = ? AND seq <= ? ORDER BY seq DESC LIMIT ?)
		UNION ALL SELECT seq, message_id, role, actor_id, text, at FROM (
		SELECT * FROM mod_context WHERE site_id = ? AND conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?)
		ORDER BY seq`, site, conv, seq, before+1, site, conv, seq, after)
	if err != nil {
		return nil, fmt.Errorf("load context of %s: %w", conv, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m ContextMessage
		var at int64
		if err := rows.Scan(&m.Seq, &m.MessageID, &m.Role, &m.ActorID, &m.Text, &at); err != nil {
			return nil, fmt.Errorf("load context of %s: %w", conv, err)
		}
		m.At = fromMS(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

func insertAudit(ctx context.Context, tx *sql.Tx, a AuditEntry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO mod_audit (at, actor_id, actor_email, action, site_id, item_id, visitor_id, reason, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ms(a.At), a.ActorID, a.ActorEmail, a.Action, a.SiteID, a.ItemID, a.VisitorID, a.Reason, a.Detail)
	if err != nil {
		return fmt.Errorf("write audit %s: %w", a.Action, err)
	}
	return nil
}

// AuditFilter selects audit rows, newest first.
type AuditFilter struct {
	SiteID string
	ItemID string
	Before int64 // rows with id < Before; 0 for the newest
	Limit  int
}

func listAudit(ctx context.Context, q querier, f AuditFilter) ([]AuditEntry, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.SiteID != "" {
		where = append(where, "site_id = ?")
		args = append(args, f.SiteID)
	}
	if f.ItemID != "" {
		where = append(where, "item_id = ?")
		args = append(args, f.ItemID)
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, at, actor_id, actor_email, action, site_id, item_id, visitor_id, reason, detail
		FROM mod_audit WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var a AuditEntry
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.ActorID, &a.ActorEmail, &a.Action, &a.SiteID, &a.ItemID, &a.VisitorID, &a.Reason, &a.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// insertOutbox stores an event for the relay; an event id already stored
// is ignored, which makes reprocessing harmless.
func insertOutbox(ctx context.Context, tx *sql.Tx, e ingest.Event, now time.Time) error {
	b, err := e.Encode()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_outbox (event_id, topic, msg_key, event_type, value, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, e.ID, ingest.TopicFor(e.Type), e.ConversationID, string(e.Type), b, ms(now)); err != nil {
		return fmt.Errorf("outbox %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}
