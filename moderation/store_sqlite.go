package moderation

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// sqliteMigrations is moderation.db's history; append steps, never edit
// applied ones. Times are Unix milliseconds.
var sqliteMigrations = []sqlstore.Migration{{Version: 1, SQL: `
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
`}, {Version: 2, SQL: `
ALTER TABLE mod_items ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
CREATE TABLE mod_labels (
	item_id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	text TEXT NOT NULL,
	label TEXT NOT NULL,
	decision TEXT NOT NULL,
	action TEXT NOT NULL,
	categories TEXT NOT NULL,
	sources TEXT NOT NULL,
	decided_by TEXT NOT NULL,
	decided_at INTEGER NOT NULL
);
CREATE INDEX mod_labels_at ON mod_labels(decided_at, item_id);
CREATE INDEX mod_labels_site ON mod_labels(site_id, decided_at, item_id);
`}, {Version: 3, SQL: ` -- the flood count reads only this index (sqliteFloodCount)
DROP INDEX mod_flood_visitor;
CREATE INDEX mod_flood_visitor ON mod_flood(site_id, visitor_id, at, fingerprint, event_id);
`}}

// sqliteStore keeps moderation's state in an SQLite file (moderation.db).
// sqlstore.Open gives it one connection and IMMEDIATE transactions, so a
// transaction holds the write lock from its start: LockItem needs no
// more, and one process owns the file, so outbox claims need no lock
// beyond the relay's own loop.
type sqliteStore struct{ db *sql.DB }

// OpenSQLite migrates moderation's tables on db (sqlstore.Open) and
// returns the store.
func OpenSQLite(ctx context.Context, db *sql.DB) (Store, error) {
	if err := sqlstore.Migrate(ctx, db, "moderation", sqliteMigrations); err != nil {
		return nil, fmt.Errorf("moderation: %w", err)
	}
	return &sqliteStore{db: db}, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// sqliteQuerier is what *sql.DB and *sql.Tx share.
type sqliteQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *sqliteStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("moderation db: %w", err)
	}
	return nil
}

func (s *sqliteStore) Update(ctx context.Context, f func(Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("moderation: begin: %w", err)
	}
	defer tx.Rollback()
	if err := f(sqliteTx{tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("moderation: commit: %w", err)
	}
	return nil
}

func (s *sqliteStore) Policy(ctx context.Context, siteID string) (StoredPolicy, error) {
	return sqlitePolicy(ctx, s.db, siteID)
}

func sqlitePolicy(ctx context.Context, q sqliteQuerier, siteID string) (StoredPolicy, error) {
	var p StoredPolicy
	var doc string
	var at int64
	err := q.QueryRowContext(ctx, `SELECT doc, updated_at, updated_by FROM mod_policies WHERE site_id = ?`, siteID).Scan(&doc, &at, &p.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredPolicy{}, fmt.Errorf("policy of %s: %w", siteID, ErrNotFound)
	}
	if err != nil {
		return StoredPolicy{}, fmt.Errorf("load policy of %s: %w", siteID, err)
	}
	p.Doc, p.UpdatedAt = []byte(doc), fromMS(at)
	return p, nil
}

const sqliteBanColumns = `site_id, visitor_id, until_ms, reason, banned_by, item_id, created_at`

func scanSQLiteBan(row interface{ Scan(...any) error }) (Ban, error) {
	var b Ban
	var until, created int64
	if err := row.Scan(&b.SiteID, &b.VisitorID, &until, &b.Reason, &b.BannedBy, &b.ItemID, &created); err != nil {
		return Ban{}, err
	}
	b.Until, b.CreatedAt = fromMS(until), fromMS(created)
	return b, nil
}

func (s *sqliteStore) Ban(ctx context.Context, siteID, visitorID string) (Ban, error) {
	b, err := scanSQLiteBan(s.db.QueryRowContext(ctx, `SELECT `+sqliteBanColumns+` FROM mod_bans WHERE site_id = ? AND visitor_id = ?`, siteID, visitorID))
	if errors.Is(err, sql.ErrNoRows) {
		return Ban{}, fmt.Errorf("ban of %s on %s: %w", visitorID, siteID, ErrNotFound)
	}
	if err != nil {
		return Ban{}, fmt.Errorf("ban lookup of %s on %s: %w", visitorID, siteID, err)
	}
	return b, nil
}

func (s *sqliteStore) Bans(ctx context.Context, f BanFilter) ([]Ban, error) {
	q := `SELECT ` + sqliteBanColumns + ` FROM mod_bans WHERE 1 = 1`
	var args []any
	if f.SiteID != "" {
		q += ` AND site_id = ?`
		args = append(args, f.SiteID)
	}
	if !f.After.IsZero() {
		q += ` AND until_ms > ?`
		args = append(args, ms(f.After))
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at DESC, site_id, visitor_id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	defer rows.Close()
	out := []Ban{}
	for rows.Next() {
		b, err := scanSQLiteBan(rows)
		if err != nil {
			return nil, fmt.Errorf("list bans: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

const sqliteItemColumns = `id, message_event_id, site_id, conversation_id, message_id, message_seq, visitor_id, actor_role,
	text, action, categories, spans, severity, status, claimed_by, claim_until, decided_by, decided_at,
	decision_reason, message_at, created_at, sources`

func scanSQLiteItem(row interface{ Scan(...any) error }) (Item, error) {
	var it Item
	var cats, spans, sources string
	var claimUntil, decidedAt, messageAt, createdAt int64
	err := row.Scan(&it.ID, &it.MessageEventID, &it.SiteID, &it.ConversationID, &it.MessageID, &it.MessageSeq,
		&it.VisitorID, &it.ActorRole, &it.Text, &it.Action, &cats, &spans, &it.Severity, &it.Status,
		&it.ClaimedBy, &claimUntil, &it.DecidedBy, &decidedAt, &it.DecisionReason, &messageAt, &createdAt, &sources)
	if err != nil {
		return Item{}, err
	}
	if err := json.Unmarshal([]byte(sources), &it.Sources); err != nil {
		return Item{}, fmt.Errorf("item %s sources: %w", it.ID, err)
	}
	if len(it.Sources) == 0 {
		it.Sources = nil
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

func sqliteItem(ctx context.Context, q sqliteQuerier, id string) (Item, error) {
	it, err := scanSQLiteItem(q.QueryRowContext(ctx, `SELECT `+sqliteItemColumns+` FROM mod_items WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, fmt.Errorf("item %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Item{}, fmt.Errorf("load item %s: %w", id, err)
	}
	return it, nil
}

func (s *sqliteStore) Item(ctx context.Context, id string) (Item, error) {
	return sqliteItem(ctx, s.db, id)
}

func (s *sqliteStore) Items(ctx context.Context, f ItemFilter) (ItemPage, error) {
	where := []string{"i.status = ?"}
	args := []any{f.Status}
	if f.SiteID != "" {
		where = append(where, "i.site_id = ?")
		args = append(args, f.SiteID)
	}
	if f.Sites != nil {
		where, args = sqliteSiteIn(where, args, "i.site_id", f.Sites)
	}
	base := strings.Join(where, " AND ")
	page := ItemPage{Items: []Item{}, Counts: map[string]int{}}
	rows, err := s.db.QueryContext(ctx, `SELECT c.category, COUNT(*) FROM mod_item_categories c
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
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_items i WHERE `+base, args...).Scan(&page.Total); err != nil {
		return page, fmt.Errorf("count items: %w", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT `+prefixed(sqliteItemColumns, "i.")+` FROM mod_items i WHERE `+base+`
		ORDER BY i.severity DESC, i.created_at ASC, i.id LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return page, fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanSQLiteItem(rows)
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

func (s *sqliteStore) OpenItems(ctx context.Context) (int, error) {
	var open int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_items WHERE status = 'open'`).Scan(&open); err != nil {
		return 0, fmt.Errorf("count open items: %w", err)
	}
	return open, nil
}

func (s *sqliteStore) Context(ctx context.Context, site, conv string, seq int64, before, after int) ([]ContextMessage, error) {
	out := []ContextMessage{}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, message_id, role, actor_id, text, at FROM (
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

func (s *sqliteStore) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.SiteID != "" {
		where = append(where, "site_id = ?")
		args = append(args, f.SiteID)
	}
	if f.Sites != nil {
		where, args = sqliteSiteIn(where, args, "site_id", f.Sites)
	}
	if f.ItemID != "" {
		where = append(where, "item_id = ?")
		args = append(args, f.ItemID)
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor_id, actor_email, action, site_id, item_id, visitor_id, reason, detail
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

func (s *sqliteStore) Prune(ctx context.Context, c PruneCutoffs) error {
	for _, q := range []struct {
		sql    string
		before time.Time
	}{
		{`DELETE FROM mod_flood WHERE at < ?`, c.Flood},
		{`DELETE FROM mod_processed WHERE at < ?`, c.Processed},
		{`DELETE FROM mod_context WHERE at < ?`, c.Context},
	} {
		if _, err := s.db.ExecContext(ctx, q.sql, ms(q.before)); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}

func (s *sqliteStore) ClaimOutbox(ctx context.Context, limit int, publish ingest.PublishFunc) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event_id, topic, msg_key, event_type, value, created_at FROM mod_outbox
		WHERE sent_at IS NULL ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	var recs []ingest.OutboxRecord
	for rows.Next() {
		var r ingest.OutboxRecord
		var typ string
		var created int64
		if err := rows.Scan(&r.Seq, &r.EventID, &r.Topic, &r.Key, &typ, &r.Value, &created); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read outbox: %w", err)
		}
		r.Type, r.CreatedAt = ingest.Type(typ), fromMS(created)
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	acked, pubErr := publish(ctx, recs)
	if len(acked) > 0 {
		args := []any{ms(time.Now())}
		for _, s := range acked {
			args = append(args, s)
		}
		q := `UPDATE mod_outbox SET sent_at = ? WHERE seq IN (?` + strings.Repeat(",?", len(acked)-1) + `)`
		if _, err := s.db.ExecContext(context.WithoutCancel(ctx), q, args...); err != nil {
			return len(recs), fmt.Errorf("mark outbox sent: %w", err)
		}
	}
	return len(recs), pubErr
}

func (s *sqliteStore) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var n int64
	var oldest *int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM mod_outbox WHERE sent_at IS NULL`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("count outbox: %w", err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, fromMS(*oldest), nil
}

func (s *sqliteStore) PurgeOutbox(ctx context.Context, cutoff time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM mod_outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, ms(cutoff)); err != nil {
		return fmt.Errorf("purge outbox: %w", err)
	}
	return nil
}

// sqliteTx is one IMMEDIATE transaction on moderation.db.
type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) LockItem(ctx context.Context, id string) (Item, error) {
	return sqliteItem(ctx, t.tx, id)
}

func (t sqliteTx) AddItem(ctx context.Context, it Item) (bool, error) {
	cats, err := jsonMarshal(it.Categories)
	if err != nil {
		return false, err
	}
	spans, err := jsonMarshal(it.Spans)
	if err != nil {
		return false, err
	}
	sources, err := jsonMarshal(nonNil(it.Sources))
	if err != nil {
		return false, err
	}
	res, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_items (id, message_event_id, site_id, conversation_id,
		message_id, message_seq, visitor_id, actor_role, text, action, categories, spans, severity, status,
		message_at, created_at, sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)`,
		it.ID, it.MessageEventID, it.SiteID, it.ConversationID, it.MessageID, it.MessageSeq, it.VisitorID,
		it.ActorRole, it.Text, it.Action, string(cats), string(spans), it.Severity, ms(it.MessageAt), ms(it.CreatedAt), string(sources))
	if err != nil {
		return false, fmt.Errorf("insert item %s: %w", it.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	for _, c := range it.Categories {
		if _, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_item_categories (item_id, category) VALUES (?, ?)`, it.ID, c); err != nil {
			return false, fmt.Errorf("insert item %s category: %w", it.ID, err)
		}
	}
	return true, nil
}

func (t sqliteTx) ClaimItem(ctx context.Context, id, userID string, until time.Time) error {
	u := ms(until)
	if userID == "" {
		u = 0
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE mod_items SET claimed_by = ?, claim_until = ? WHERE id = ?`, userID, u, id); err != nil {
		return fmt.Errorf("claim %s: %w", id, err)
	}
	return nil
}

func (t sqliteTx) DecideItem(ctx context.Context, id string, d ItemDecision) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE mod_items SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?,
		claimed_by = '', claim_until = 0 WHERE id = ?`, d.Status, d.By, ms(d.At), d.Reason, id); err != nil {
		return fmt.Errorf("decide %s: %w", id, err)
	}
	return nil
}

func (t sqliteTx) PutBan(ctx context.Context, b Ban) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO mod_bans (`+sqliteBanColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, visitor_id) DO UPDATE SET until_ms = excluded.until_ms,
		reason = excluded.reason, banned_by = excluded.banned_by, item_id = excluded.item_id, created_at = excluded.created_at`,
		b.SiteID, b.VisitorID, ms(b.Until), b.Reason, b.BannedBy, b.ItemID, ms(b.CreatedAt)); err != nil {
		return fmt.Errorf("ban %s: %w", b.VisitorID, err)
	}
	return nil
}

func (t sqliteTx) DeleteBan(ctx context.Context, siteID, visitorID string) (Ban, error) {
	b, err := scanSQLiteBan(t.tx.QueryRowContext(ctx, `DELETE FROM mod_bans WHERE site_id = ? AND visitor_id = ? RETURNING `+sqliteBanColumns, siteID, visitorID))
	if errors.Is(err, sql.ErrNoRows) {
		return Ban{}, fmt.Errorf("ban of %s on %s: %w", visitorID, siteID, ErrNotFound)
	}
	if err != nil {
		return Ban{}, fmt.Errorf("lift ban of %s on %s: %w", visitorID, siteID, err)
	}
	return b, nil
}

// LockPolicy reads the policy: the IMMEDIATE transaction already holds
// the database's write lock.
func (t sqliteTx) LockPolicy(ctx context.Context, siteID string) (StoredPolicy, error) {
	return sqlitePolicy(ctx, t.tx, siteID)
}

func (t sqliteTx) AddLabel(ctx context.Context, l DecisionLabel) error {
	cats, err := jsonMarshal(nonNil(l.Categories))
	if err != nil {
		return err
	}
	sources, err := jsonMarshal(nonNil(l.Sources))
	if err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO mod_labels (`+sqliteLabelColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (item_id) DO UPDATE SET site_id = excluded.site_id, text = excluded.text, label = excluded.label,
		decision = excluded.decision, action = excluded.action, categories = excluded.categories, sources = excluded.sources,
		decided_by = excluded.decided_by, decided_at = excluded.decided_at`,
		l.ItemID, l.SiteID, l.Text, l.Label, l.Decision, l.Action, string(cats), string(sources), l.DecidedBy, ms(l.DecidedAt)); err != nil {
		return fmt.Errorf("label item %s: %w", l.ItemID, err)
	}
	return nil
}

func (t sqliteTx) PutPolicy(ctx context.Context, siteID string, p StoredPolicy) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO mod_policies (site_id, doc, updated_at, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (site_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		siteID, string(p.Doc), ms(p.UpdatedAt), p.UpdatedBy); err != nil {
		return fmt.Errorf("save policy of %s: %w", siteID, err)
	}
	return nil
}

func (t sqliteTx) AddAudit(ctx context.Context, a AuditEntry) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO mod_audit (at, actor_id, actor_email, action, site_id, item_id, visitor_id, reason, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ms(a.At), a.ActorID, a.ActorEmail, a.Action, a.SiteID, a.ItemID, a.VisitorID, a.Reason, a.Detail)
	if err != nil {
		return fmt.Errorf("write audit %s: %w", a.Action, err)
	}
	return nil
}

func (t sqliteTx) AddEvent(ctx context.Context, e ingest.Event, at time.Time) error {
	r, err := ingest.NewOutboxRecord(e)
	if err != nil {
		return fmt.Errorf("outbox %s %s: %w", e.Type, e.ID, err)
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_outbox (event_id, topic, msg_key, event_type, value, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, r.EventID, r.Topic, r.Key, string(r.Type), r.Value, ms(at)); err != nil {
		return fmt.Errorf("outbox %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

func (t sqliteTx) MarkProcessed(ctx context.Context, eventIDs []string, at time.Time) (map[string]bool, error) {
	fresh := make(map[string]bool, len(eventIDs))
	for _, id := range eventIDs {
		res, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_processed (event_id, at) VALUES (?, ?)`, id, ms(at))
		if err != nil {
			return nil, fmt.Errorf("mark %s processed: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("mark %s processed: %w", id, err)
		} else if n == 1 {
			fresh[id] = true
		}
	}
	return fresh, nil
}

func (t sqliteTx) AddContext(ctx context.Context, m ContextEntry) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_context (site_id, conversation_id, seq, event_id, message_id, role, actor_id, text, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.SiteID, m.ConversationID, m.Seq, m.EventID, m.MessageID,
		m.Role, m.ActorID, m.Text, ms(m.At)); err != nil {
		return fmt.Errorf("context of %s: %w", m.EventID, err)
	}
	return nil
}

func (t sqliteTx) ObserveFloods(ctx context.Context, marks []FloodMark) ([]FloodCount, error) {
	for _, m := range marks {
		if _, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_flood (site_id, visitor_id, at, fingerprint, event_id)
			VALUES (?, ?, ?, ?, ?)`, m.SiteID, m.VisitorID, ms(m.At), m.Fingerprint, m.EventID); err != nil {
			return nil, fmt.Errorf("record flood of %s: %w", m.VisitorID, err)
		}
	}
	counts := make([]FloodCount, len(marks))
	for i, m := range marks {
		if err := t.tx.QueryRowContext(ctx, sqliteFloodCount,
			m.Fingerprint, m.SiteID, m.VisitorID, ms(m.Since), ms(m.At), m.EventID).Scan(&counts[i].Recent, &counts[i].Same); err != nil {
			return nil, fmt.Errorf("flood history of %s: %w", m.VisitorID, err)
		}
	}
	return counts, nil
}

// sqliteFloodCount counts a visitor's messages in a flood window, and
// those among them with the same fingerprint, from mod_flood_visitor alone
// (TestSQLiteFloodCountReadsOnlyTheIndex).
const sqliteFloodCount = `SELECT COUNT(*), COALESCE(SUM(fingerprint = ? AND fingerprint != ''), 0)
	FROM mod_flood WHERE site_id = ? AND visitor_id = ? AND at > ? AND at <= ? AND event_id != ?`

// sqliteSiteIn adds "col IN (sites)" (never true for no sites).
func sqliteSiteIn(where []string, args []any, col string, sites []string) ([]string, []any) {
	if len(sites) == 0 {
		return append(where, "1 = 0"), args
	}
	where = append(where, col+" IN (?"+strings.Repeat(", ?", len(sites)-1)+")")
	for _, s := range sites {
		args = append(args, s)
	}
	return where, args
}
