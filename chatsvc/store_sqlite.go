package chatsvc

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// sqliteMigrations is chat.db's schema; append steps, never edit applied ones.
var sqliteMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE sites (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	site_key TEXT NOT NULL UNIQUE,
	secret TEXT NOT NULL,
	allowed_origins TEXT NOT NULL DEFAULT '[]',
	identity_required INTEGER NOT NULL DEFAULT 0,
	settings TEXT NOT NULL DEFAULT '{}',
	created_at INTEGER NOT NULL
);
CREATE TABLE visitors (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	external_id TEXT NOT NULL DEFAULT '',
	verified INTEGER NOT NULL DEFAULT 0,
	name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	fields TEXT NOT NULL DEFAULT '{}',
	page_url TEXT NOT NULL DEFAULT '',
	page_title TEXT NOT NULL DEFAULT '',
	referrer TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	timezone TEXT NOT NULL DEFAULT '',
	locale TEXT NOT NULL DEFAULT '',
	ip TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX visitors_external ON visitors(site_id, external_id) WHERE external_id <> '';
CREATE TABLE conversations (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	visitor_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	status TEXT NOT NULL,
	routing TEXT NOT NULL,
	assignee_id TEXT NOT NULL DEFAULT '',
	team_id TEXT NOT NULL DEFAULT '',
	queued_at INTEGER NOT NULL DEFAULT 0,
	last_seq INTEGER NOT NULL DEFAULT 0,
	last_role TEXT NOT NULL DEFAULT '',
	last_preview TEXT NOT NULL DEFAULT '',
	last_at INTEGER NOT NULL DEFAULT 0,
	visitor_read_seq INTEGER NOT NULL DEFAULT 0,
	agent_read_seq INTEGER NOT NULL DEFAULT 0,
	csat_rating INTEGER NOT NULL DEFAULT 0,
	csat_comment TEXT NOT NULL DEFAULT '',
	csat_at INTEGER NOT NULL DEFAULT 0,
	away_sent INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	resolved_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conversations_visitor ON conversations(visitor_id, created_at);
CREATE INDEX conversations_status ON conversations(status, updated_at);
CREATE INDEX conversations_assignee ON conversations(assignee_id, status);
CREATE TABLE messages (
	id TEXT PRIMARY KEY,
	conversation_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	client_id TEXT NOT NULL DEFAULT '',
	author_role TEXT NOT NULL,
	author_id TEXT NOT NULL,
	author_name TEXT NOT NULL DEFAULT '',
	kind TEXT NOT NULL,
	text TEXT NOT NULL,
	attachments TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	categories TEXT NOT NULL DEFAULT '',
	event_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client ON messages(author_id, client_id) WHERE client_id <> '';
CREATE TABLE attachments (
	id TEXT PRIMARY KEY,
	uploader_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL,
	content_type TEXT NOT NULL,
	size INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE canned_replies (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL DEFAULT '',
	shortcut TEXT NOT NULL,
	text TEXT NOT NULL,
	UNIQUE (site_id, shortcut)
);
CREATE TABLE bans (
	site_id TEXT NOT NULL,
	visitor_id TEXT NOT NULL,
	until_ms INTEGER NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (site_id, visitor_id)
);
CREATE TABLE outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,` + sqliteOutboxColumns + `);
` + sqliteOutboxIndexes},
	// Retention (retention.go) finds a site's old resolved conversations
	// and their attachments.
	{Version: 2, SQL: `
CREATE INDEX IF NOT EXISTS conversations_retention ON conversations(site_id, status, updated_at);
CREATE INDEX IF NOT EXISTS attachments_conversation ON attachments(conversation_id);
`},
	// version lets a write notice that a row changed since it was read
	// (PostgreSQL shares rows between nodes; SQLite keeps it for parity).
	{Version: 3, SQL: `ALTER TABLE conversations ADD COLUMN version INTEGER NOT NULL DEFAULT 1;`},
	{Version: 4, SQL: `CREATE TABLE signing_keys (name TEXT PRIMARY KEY, key BLOB NOT NULL);`},
	// Presence as nodes report it and the effective status per agent
	// (kept in SQLite too, for parity with PostgreSQL).
	{Version: 5, SQL: `
CREATE TABLE agent_presence (
	agent_id TEXT NOT NULL,
	node_id TEXT NOT NULL,
	status TEXT NOT NULL,
	team_id TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL DEFAULT '',
	heartbeat_at INTEGER NOT NULL,
	PRIMARY KEY (agent_id, node_id)
);
CREATE INDEX agent_presence_node ON agent_presence(node_id);
CREATE TABLE agent_status (
	agent_id TEXT PRIMARY KEY,
	status TEXT NOT NULL,
	changed_at INTEGER NOT NULL
);
CREATE INDEX conversations_queue ON conversations(routing, status, queued_at);`},
	// Security (docs/security.md): bot webhooks sign with their own secret;
	// attachments know their site for the per-site quota and are swept
	// when never sent; banned anonymous visitors' addresses may be banned.
	{Version: 6, SQL: `
ALTER TABLE sites ADD COLUMN webhook_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE attachments ADD COLUMN site_id TEXT NOT NULL DEFAULT '';
CREATE INDEX attachments_uploader ON attachments(uploader_id);
CREATE INDEX attachments_site ON attachments(site_id);
CREATE INDEX attachments_unbound ON attachments(created_at) WHERE conversation_id = '';
CREATE TABLE ip_bans (
	site_id TEXT NOT NULL,
	ip TEXT NOT NULL,
	until_ms INTEGER NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (site_id, ip)
);`},
	// Indexes on updated_at for resolved rows only (see statusIndexes).
	{Version: 7, SQL: statusIndexes},
	// The outbox without AUTOINCREMENT: it made every commit that appends
	// a record write sqlite_sequence's page too (one page of about ten in
	// a one-message commit). Plain rowids are max + 1, so a new record
	// still sorts after every pending one (pending records are never
	// purged); only ids of purged sent records may come back, and nothing
	// refers to those. Only pending records are copied: sent ones are on
	// Kafka and kept only until the relay purges them, and a busy node
	// holds an hour of them (millions at 1,000 messages a second).
	{Version: 8, SQL: `
CREATE TABLE outbox_rowid (
	id INTEGER PRIMARY KEY,` + sqliteOutboxColumns + `);
INSERT INTO outbox_rowid SELECT id, event_id, topic, msg_key, value, created_at, sent_at FROM outbox WHERE sent_at IS NULL;
DROP TABLE outbox;
ALTER TABLE outbox_rowid RENAME TO outbox;
` + sqliteOutboxIndexes},
}

// statusIndexes replaces the indexes on (status, updated_at) and (site_id,
// status, updated_at) with partial ones (migration 7; PostgreSQL's
// migration 3 does the same on a column of its own). Every message
// changes its conversation's updated_at, and an index holding updated_at
// for every row was rewritten with each one. The newest-first lists of
// resolved conversations and retention need it for resolved rows only;
// open and pending conversations are few enough to sort as they are read,
// so their index holds the status alone, which a message does not change.
const statusIndexes = `
DROP INDEX IF EXISTS conversations_status;
DROP INDEX IF EXISTS conversations_retention;
CREATE INDEX conversations_active ON conversations(status) WHERE status <> 'resolved';
CREATE INDEX conversations_resolved ON conversations(updated_at, id) WHERE status = 'resolved';
CREATE INDEX conversations_resolved_site ON conversations(site_id, updated_at, id) WHERE status = 'resolved';
`

// The outbox's columns after its id, and its indexes, as migrations 1 and
// 8 create them.
const (
	sqliteOutboxColumns = `
	event_id TEXT NOT NULL,
	topic TEXT NOT NULL,
	msg_key TEXT NOT NULL,
	value BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	sent_at INTEGER
`
	sqliteOutboxIndexes = `CREATE INDEX outbox_pending ON outbox(id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox(sent_at) WHERE sent_at IS NOT NULL;
`
)

// SQLiteOptions tunes OpenSQLite.
type SQLiteOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// sqliteChat keeps chat rows in chat.db. One process owns the file, so
// nothing another node writes can surprise the writer's cache.
type sqliteChat struct {
	db  *sql.DB
	log *slog.Logger

	updStmt, routeStmt, actStmt, msgStmt, outStmt, dupStmt *sql.Stmt

	// walCatchUp asks the next commit to finish a checkpoint (see Maintain).
	walCatchUp    atomic.Bool
	walPages      prometheus.Gauge
	walBackfilled prometheus.Gauge
}

// sqliteCacheKiB is chat.db's page cache (SQLite's default is 2 MiB): the
// writer inserts into three message indexes at scattered places (one per
// conversation and author), and a small cache makes most of those inserts
// read their page back from the file. It fills only as the working set grows.
const sqliteCacheKiB = 32 << 10

// OpenSQLite migrates chat.db (opened with sqlstore.Open) and returns the store.
func OpenSQLite(ctx context.Context, db *sql.DB, opt SQLiteOptions) (ChatStore, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if err := sqlstore.Migrate(ctx, db, "chat", sqliteMigrations); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = -%d`, sqliteCacheKiB)); err != nil {
		return nil, fmt.Errorf("size chat.db's page cache: %w", err)
	}
	s := &sqliteChat{db: db, log: opt.Logger,
		walPages: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_chat_wal_pages", Help: "Pages in chat.db's write-ahead log at the last background checkpoint.",
		}),
		walBackfilled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_chat_wal_checkpointed_pages", Help: "Pages of the write-ahead log copied into chat.db at the last background checkpoint.",
		}),
	}
	if err := registerCollectors(opt.Registerer, s.walPages, s.walBackfilled); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		what string
		q    string
	}{
		{&s.updStmt, "conversation update", `UPDATE conversations SET status = ?, routing = ?, assignee_id = ?, team_id = ?, queued_at = ?, last_seq = ?,
	last_role = ?, last_preview = ?, last_at = ?, visitor_read_seq = ?, agent_read_seq = ?, csat_rating = ?, csat_comment = ?,
	csat_at = ?, away_sent = ?, updated_at = ?, resolved_at = ?, version = version + 1 WHERE id = ? AND version = ?`},
		// SQLite rewrites every index holding a column an UPDATE sets, so
		// the lighter statements leave columns out: without status and
		// assignee conversations_assignee and conversations_by_status stay
		// as they are, and without routing, team and queue time
		// conversations_queue too. A message's update (changeActivity, most
		// updates) then writes no index at all: the resolved lists' indexes
		// on updated_at hold only resolved rows (migration 7).
		{&s.routeStmt, "conversation routing update", `UPDATE conversations SET routing = ?, team_id = ?, queued_at = ?, last_seq = ?,
	last_role = ?, last_preview = ?, last_at = ?, visitor_read_seq = ?, agent_read_seq = ?, csat_rating = ?, csat_comment = ?,
	csat_at = ?, away_sent = ?, updated_at = ?, resolved_at = ?, version = version + 1 WHERE id = ? AND version = ?`},
		{&s.actStmt, "conversation activity update", sqliteActivityUpdate},
		{&s.msgStmt, "message insert", `INSERT INTO messages (` + messageColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.outStmt, "outbox insert", `INSERT INTO outbox (event_id, topic, msg_key, value, created_at) VALUES (?, ?, ?, ?, ?)`},
		{&s.dupStmt, "client id lookup", `SELECT ` + messageColumns + ` FROM messages WHERE author_id = ? AND client_id = ? AND client_id <> ''`},
	} {
		var err error
		if *p.stmt, err = db.PrepareContext(ctx, p.q); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", p.what, err)
		}
	}
	return s, nil
}

func (s *sqliteChat) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *sqliteChat) Begin(ctx context.Context) (ChatTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &sqliteTx{s: s, tx: tx}, nil
}

func (s *sqliteChat) OpenConversations(ctx context.Context) ([]*convState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+convColumns+` FROM conversations WHERE status <> 'resolved'`)
	if err != nil {
		return nil, fmt.Errorf("load open conversations: %w", err)
	}
	defer rows.Close()
	var out []*convState
	for rows.Next() {
		c, err := scanConv(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load open conversations: %w", err)
	}
	return out, nil
}

func (s *sqliteChat) Conversation(ctx context.Context, id string) (*convState, error) {
	return scanConv(s.db.QueryRowContext(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = ?`, id))
}

func (s *sqliteChat) ConversationRows(ctx context.Context, f ConversationFilter) ([]ConversationRow, error) {
	if f.Sites != nil && len(f.Sites) == 0 {
		return nil, nil // a staff member on no site sees nothing
	}
	q, args := sqliteConversationList(f)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return collectSQLRows(rows, scanConvRow)
}

// sqliteConversationList is ConversationRows' query (f.Sites nil or not empty).
func sqliteConversationList(f ConversationFilter) (string, []any) {
	var where []string
	var args []any
	switch f.Status {
	case "all":
	case StatusResolved:
		where = append(where, "c."+resolvedOnly)
	default:
		status := cmp.Or(f.Status, StatusOpen)
		where, args = append(where, "c.status = ?", "c."+notResolved), append(args, status)
	}
	switch f.Scope {
	case "unassigned":
		where = append(where, "c.assignee_id = ''")
	case "mine":
		where, args = append(where, "c.assignee_id = ?"), append(args, f.Me)
	}
	if f.SiteID != "" {
		where, args = append(where, "c.site_id = ?"), append(args, f.SiteID)
	}
	if len(f.Sites) > 0 {
		where = append(where, "c.site_id IN (?"+strings.Repeat(", ?", len(f.Sites)-1)+")")
		for _, site := range f.Sites {
			args = append(args, site)
		}
	}
	if f.VisitorID != "" {
		where, args = append(where, "c.visitor_id = ?"), append(args, f.VisitorID)
	}
	if !f.Before.IsZero() {
		where, args = append(where, "c.updated_at < ?"), append(args, f.Before.UnixMilli())
	}
	q := convSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q + " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?", append(args, f.Limit)
}

func (s *sqliteChat) LatestConversationRow(ctx context.Context, visitorID string) (*ConversationRow, error) {
	rows, err := s.db.QueryContext(ctx, convSelect+` WHERE c.visitor_id = ? ORDER BY c.created_at DESC LIMIT 1`, visitorID)
	if err != nil {
		return nil, fmt.Errorf("latest conversation of %s: %w", visitorID, err)
	}
	list, err := collectSQLRows(rows, scanConvRow)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// collectSQLRows scans every row with scan and closes rows.
func collectSQLRows[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *sqliteChat) MessagesAfter(ctx context.Context, convID string, after int64, limit int) ([]Message, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?`, convID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", convID, err)
	}
	return collectSQLRows(rows, scanMessage)
}

func (s *sqliteChat) VisitorExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM visitors WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read visitor %s: %w", id, err)
	}
	return true, nil
}

func (s *sqliteChat) InsertVisitor(ctx context.Context, v VisitorRecord) error {
	ms := v.CreatedAt.UnixMilli()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO visitors (id, site_id, external_id, verified, ip, user_agent, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.SiteID, v.ExternalID, v.Verified, v.IP, v.UserAgent, ms, ms); err != nil {
		return fmt.Errorf("create visitor: %w", err)
	}
	return nil
}

func (s *sqliteChat) EnsureExternalVisitor(ctx context.Context, v VisitorRecord) (string, error) {
	ms := v.CreatedAt.UnixMilli()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO visitors (id, site_id, external_id, verified, ip, user_agent, created_at, last_seen_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT(site_id, external_id) WHERE external_id <> '' DO NOTHING`,
		v.ID, v.SiteID, v.ExternalID, v.IP, v.UserAgent, ms, ms); err != nil {
		return "", fmt.Errorf("create visitor %s: %w", v.ExternalID, err)
	}
	var id string
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM visitors WHERE site_id = ? AND external_id = ?`, v.SiteID, v.ExternalID).Scan(&id); err != nil {
		return "", fmt.Errorf("find visitor %s: %w", v.ExternalID, err)
	}
	return id, nil
}

func (s *sqliteChat) TouchVisitor(ctx context.Context, id, ip, ua string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE visitors SET last_seen_at = ?, ip = ?, user_agent = ? WHERE id = ?`, at.UnixMilli(), ip, ua, id); err != nil {
		return fmt.Errorf("touch visitor %s: %w", id, err)
	}
	return nil
}

func (s *sqliteChat) SetVisitorPage(ctx context.Context, id string, p VisitorPage, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE visitors SET page_url = ?, page_title = ?, referrer = ?, timezone = ?, locale = ?, last_seen_at = ? WHERE id = ?`,
		p.URL, p.Title, p.Referrer, p.Timezone, p.Locale, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("store context of visitor %s: %w", id, err)
	}
	return nil
}

func (s *sqliteChat) Visitor(ctx context.Context, id string) (Visitor, bool, error) {
	return scanVisitor(s.db.QueryRowContext(ctx, `SELECT `+visitorColumns+` FROM visitors WHERE id = ?`, id))
}

func (s *sqliteChat) Sites(ctx context.Context) ([]Site, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+siteColumns+` FROM sites`)
	if err != nil {
		return nil, fmt.Errorf("load sites: %w", err)
	}
	return collectSQLRows(rows, scanSite)
}

// inTx runs f in a transaction of its own.
func (s *sqliteChat) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	return sqlstore.InTx(ctx, s.db, "chat store", f)
}

func sqliteAppendOutbox(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, r ingest.OutboxRecord) error {
	if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, r.EventID, r.Topic, r.Key, r.Value, r.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("outbox %s: %w", r.Type, err)
	}
	return nil
}

func (s *sqliteChat) InsertSite(ctx context.Context, site Site, e ingest.OutboxRecord) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sites (`+siteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, siteArgs(site)...); err != nil {
			return fmt.Errorf("create site %q: %w", site.Name, err)
		}
		return sqliteAppendOutbox(ctx, tx, s.outStmt, e)
	})
}

func (s *sqliteChat) UpdateSite(ctx context.Context, site Site, e ingest.OutboxRecord) error {
	a := siteArgs(site)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sites SET name = ?, allowed_origins = ?, identity_required = ?, settings = ? WHERE id = ?`,
			a[1], a[4], a[5], a[6], site.ID)
		if err != nil {
			return fmt.Errorf("update site %s: %w", site.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return sqliteAppendOutbox(ctx, tx, s.outStmt, e)
	})
}

func (s *sqliteChat) SetSiteSecret(ctx context.Context, id, secret string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sites SET secret = ? WHERE id = ?`, secret, id)
	if err != nil {
		return fmt.Errorf("rotate secret of site %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqliteChat) DeleteSite(ctx context.Context, id string, e ingest.OutboxRecord) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sites WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete site %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return sqliteAppendOutbox(ctx, tx, s.outStmt, e)
	})
}

func (s *sqliteChat) AppendOutbox(ctx context.Context, events []ingest.OutboxRecord) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range events {
			if err := sqliteAppendOutbox(ctx, tx, s.outStmt, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *sqliteChat) CannedReplies(ctx context.Context, siteID string) ([]Canned, error) {
	q := `SELECT id, site_id, shortcut, text FROM canned_replies`
	var args []any
	if siteID != "" {
		q += ` WHERE site_id = '' OR site_id = ?`
		args = append(args, siteID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY shortcut, site_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list canned replies: %w", err)
	}
	return collectSQLRows(rows, scanCanned)
}

func isSQLiteUnique(err error, column string) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(se.Error(), column)
}

func (s *sqliteChat) InsertCanned(ctx context.Context, r Canned) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO canned_replies (id, site_id, shortcut, text) VALUES (?, ?, ?, ?)`, r.ID, r.SiteID, r.Shortcut, r.Text)
	if isSQLiteUnique(err, "canned_replies.") {
		return errShortcutTaken
	}
	if err != nil {
		return fmt.Errorf("create canned reply: %w", err)
	}
	return nil
}

func (s *sqliteChat) UpdateCanned(ctx context.Context, r Canned) error {
	res, err := s.db.ExecContext(ctx, `UPDATE canned_replies SET site_id = ?, shortcut = ?, text = ? WHERE id = ?`, r.SiteID, r.Shortcut, r.Text, r.ID)
	if isSQLiteUnique(err, "canned_replies.") {
		return errShortcutTaken
	}
	if err != nil {
		return fmt.Errorf("update canned reply: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqliteChat) DeleteCanned(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM canned_replies WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete canned reply: %w", err)
	}
	return nil
}

func (s *sqliteChat) InsertAttachment(ctx context.Context, a AttachmentRecord) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO attachments (id, uploader_id, name, content_type, size, created_at, site_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.UploaderID, a.Name, a.ContentType, a.Size, a.CreatedAt.UnixMilli(), a.SiteID); err != nil {
		return fmt.Errorf("record attachment: %w", err)
	}
	return nil
}

func (s *sqliteChat) Attachment(ctx context.Context, id string) (AttachmentRecord, error) {
	return scanAttachment(s.db.QueryRowContext(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE id = ?`, id))
}

func (s *sqliteChat) ActiveBans(ctx context.Context, now time.Time) ([]BanRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT site_id, visitor_id, until_ms, reason FROM bans WHERE until_ms > ?`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("load bans: %w", err)
	}
	return collectSQLRows(rows, scanBan)
}

func scanBan(row rowScanner) (BanRecord, error) {
	var b BanRecord
	var until int64
	if err := row.Scan(&b.SiteID, &b.VisitorID, &until, &b.Reason); err != nil {
		return BanRecord{}, fmt.Errorf("read ban: %w", err)
	}
	b.Until = time.UnixMilli(until)
	return b, nil
}

func (s *sqliteChat) PutBan(ctx context.Context, b BanRecord) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO bans (site_id, visitor_id, until_ms, reason) VALUES (?, ?, ?, ?)
		ON CONFLICT(site_id, visitor_id) DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason`,
		b.SiteID, b.VisitorID, b.Until.UnixMilli(), b.Reason); err != nil {
		return fmt.Errorf("store ban of %s: %w", b.VisitorID, err)
	}
	return nil
}

func (s *sqliteChat) DeleteBan(ctx context.Context, siteID, visitorID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE site_id = ? AND visitor_id = ?`, siteID, visitorID); err != nil {
		return fmt.Errorf("lift ban of %s: %w", visitorID, err)
	}
	return nil
}

func (s *sqliteChat) QueuedConversations(ctx context.Context) ([]*convState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+convColumns+` FROM conversations WHERE routing = ? AND status <> ? ORDER BY queued_at, id`, RoutingQueued, StatusResolved)
	if err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	return collectSQLRows(rows, scanConv)
}

func (s *sqliteChat) AgentLoads(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT assignee_id, count(*) FROM conversations
		WHERE routing = ? AND status <> ? AND assignee_id <> '' GROUP BY assignee_id`, RoutingAssigned, StatusResolved)
	if err != nil {
		return nil, fmt.Errorf("count agent loads: %w", err)
	}
	pairs, err := collectSQLRows(rows, scanCount)
	return countMap(pairs), err
}

func (s *sqliteChat) ReportPresence(ctx context.Context, node string, agents []NodePresence, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM agent_presence WHERE node_id = ?`, node); err != nil {
			return fmt.Errorf("report presence of %s: %w", node, err)
		}
		for _, a := range agents {
			if _, err := tx.ExecContext(ctx, `INSERT INTO agent_presence (agent_id, node_id, status, team_id, name, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)`,
				a.AgentID, node, a.Status, a.TeamID, a.Name, at.UnixMilli()); err != nil {
				return fmt.Errorf("report presence of %s: %w", node, err)
			}
		}
		return nil
	})
}

func (s *sqliteChat) FreshPresence(ctx context.Context, since time.Time) ([]NodePresence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT agent_id, node_id, status, team_id, name, heartbeat_at FROM agent_presence WHERE heartbeat_at >= ? ORDER BY agent_id, node_id`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read presence: %w", err)
	}
	return collectSQLRows(rows, scanPresence)
}

func (s *sqliteChat) AgentStatuses(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT agent_id, status FROM agent_status`)
	if err != nil {
		return nil, fmt.Errorf("read agent statuses: %w", err)
	}
	pairs, err := collectSQLRows(rows, scanStatus)
	return statusMap(pairs), err
}

// TryLead always succeeds: one process owns chat.db, so it leads alone.
func (s *sqliteChat) TryLead(ctx context.Context, name string) (Lease, bool, error) {
	return soleLease{lost: make(chan struct{})}, true, nil
}

// soleLease is the leadership of a node that runs alone.
type soleLease struct{ lost chan struct{} }

func (l soleLease) Lost() <-chan struct{} { return l.lost }
func (l soleLease) Release()              {}

func (s *sqliteChat) SigningKey(ctx context.Context, candidate []byte) ([]byte, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO signing_keys (name, key) VALUES ('visitor-token', ?) ON CONFLICT (name) DO NOTHING`, candidate); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	var key []byte
	if err := s.db.QueryRowContext(ctx, `SELECT key FROM signing_keys WHERE name = 'visitor-token'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return key, nil
}

// ClaimOutbox needs no lock: one process owns chat.db and its one relay
// loop is the only claimer.
func (s *sqliteChat) ClaimOutbox(ctx context.Context, limit int, publish ingest.PublishFunc) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, event_id, topic, msg_key, value, created_at FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	recs, err := collectSQLRows(rows, scanOutbox)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	acked, pubErr := publish(ctx, recs)
	// Marking must not be abandoned half way when ctx ends: the events are in Kafka.
	work := context.WithoutCancel(ctx)
	now := time.Now().UnixMilli()
	for ids := acked; len(ids) > 0; {
		n := min(len(ids), 500)
		args := make([]any, 0, n+1)
		args = append(args, now)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		if _, err := s.db.ExecContext(work, `UPDATE outbox SET sent_at = ? WHERE id IN (?`+strings.Repeat(",?", n-1)+`)`, args...); err != nil {
			return len(recs), fmt.Errorf("mark %d outbox events sent: %w", n, err)
		}
		ids = ids[n:]
	}
	return len(recs), pubErr
}

func scanOutbox(row rowScanner) (ingest.OutboxRecord, error) {
	var r ingest.OutboxRecord
	var created int64
	if err := row.Scan(&r.Seq, &r.EventID, &r.Topic, &r.Key, &r.Value, &created); err != nil {
		return r, fmt.Errorf("read outbox: %w", err)
	}
	r.CreatedAt = time.UnixMilli(created)
	return r, nil
}

func (s *sqliteChat) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var n int64
	var oldest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("count outbox: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(oldest.Int64), nil
}

func (s *sqliteChat) PurgeOutbox(ctx context.Context, cutoff time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, cutoff.UnixMilli()); err != nil {
		return fmt.Errorf("purge outbox: %w", err)
	}
	return nil
}

// sqliteTx is the writer's batch transaction on chat.db.
type sqliteTx struct {
	s  *sqliteChat
	tx *sql.Tx
}

func (t *sqliteTx) stmt(ctx context.Context, s *sql.Stmt) *sql.Stmt { return t.tx.StmtContext(ctx, s) }

func (t *sqliteTx) Conversation(ctx context.Context, id string) (*convState, error) {
	return scanConv(t.tx.QueryRowContext(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = ?`, id))
}

// LockConversations only reads: chat.db has one writer, this one.
func (t *sqliteTx) LockConversations(ctx context.Context, ids []string) ([]*convState, error) {
	var out []*convState
	for _, id := range ids {
		c, err := t.Conversation(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// TryLockConversations only reads too: no other transaction can hold a row.
func (t *sqliteTx) TryLockConversations(ctx context.Context, ids []string) ([]*convState, error) {
	return t.LockConversations(ctx, ids)
}

func (t *sqliteTx) NewestConversationOf(ctx context.Context, visitorID string) (string, error) {
	var id string
	err := t.tx.QueryRowContext(ctx, `SELECT id FROM conversations WHERE visitor_id = ? ORDER BY created_at DESC LIMIT 1`, visitorID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find conversation of visitor %s: %w", visitorID, err)
	}
	return id, nil
}

func (t *sqliteTx) VisitorSummary(ctx context.Context, id string) (visitorState, error) {
	v := visitorState{ID: id}
	err := t.tx.QueryRowContext(ctx, `SELECT site_id, name, email FROM visitors WHERE id = ?`, id).Scan(&v.SiteID, &v.Name, &v.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return visitorState{ID: id}, nil
	}
	if err != nil {
		return visitorState{}, fmt.Errorf("read visitor %s: %w", id, err)
	}
	return v, nil
}

func (t *sqliteTx) InsertConversation(ctx context.Context, c *convState) error {
	c.Version = 1
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO conversations (`+convColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		convArgs(c)...); err != nil {
		return fmt.Errorf("insert conversation %s: %w", c.ID, err)
	}
	return nil
}

func (t *sqliteTx) UpdateConversation(ctx context.Context, c *convState, change convChange) error {
	var res sql.Result
	var err error
	switch change {
	case changeActivity:
		res, err = t.stmt(ctx, t.s.actStmt).ExecContext(ctx, c.LastSeq,
			c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq, c.CSATRating, c.CSATComment, c.CSATAt,
			c.AwaySent, c.UpdatedAt, c.ResolvedAt, c.ID, c.Version)
	case changeRouting:
		res, err = t.stmt(ctx, t.s.routeStmt).ExecContext(ctx, c.Routing, c.TeamID, c.QueuedAt, c.LastSeq,
			c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq, c.CSATRating, c.CSATComment, c.CSATAt,
			c.AwaySent, c.UpdatedAt, c.ResolvedAt, c.ID, c.Version)
	default:
		res, err = t.stmt(ctx, t.s.updStmt).ExecContext(ctx, c.Status, c.Routing, c.Assignee, c.TeamID, c.QueuedAt, c.LastSeq,
			c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq, c.CSATRating, c.CSATComment, c.CSATAt,
			c.AwaySent, c.UpdatedAt, c.ResolvedAt, c.ID, c.Version)
	}
	if err != nil {
		return fmt.Errorf("update conversation %s: %w", c.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &conflictError{conversationID: c.ID}
	}
	c.Version++
	return nil
}

func (t *sqliteTx) InsertMessage(ctx context.Context, m Message, atts []ingest.Attachment) error {
	if _, err := t.stmt(ctx, t.s.msgStmt).ExecContext(ctx, messageArgs(m, atts)...); err != nil {
		switch {
		case m.ClientID != "" && isSQLiteUnique(err, "messages.client_id"):
			return &resendError{author: m.Author.ID, clientID: m.ClientID}
		case isSQLiteUnique(err, "messages.seq"):
			return &conflictError{conversationID: m.ConversationID}
		}
		return fmt.Errorf("insert message into %s: %w", m.ConversationID, err)
	}
	return nil
}

func (t *sqliteTx) MessageByClientID(ctx context.Context, authorID, clientID string) (Message, bool, error) {
	return scanMessageOnce(t.stmt(ctx, t.s.dupStmt).QueryRowContext(ctx, authorID, clientID))
}

func (t *sqliteTx) MessageByID(ctx context.Context, id string) (Message, bool, error) {
	return scanMessageOnce(t.tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = ?`, id))
}

func (t *sqliteTx) SetMessageStatus(ctx context.Context, id, status string) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE messages SET status = ? WHERE id = ?`, status, id); err != nil {
		return fmt.Errorf("set status of message %s: %w", id, err)
	}
	return nil
}

func (t *sqliteTx) Attachment(ctx context.Context, id string) (AttachmentRecord, error) {
	return scanAttachment(t.tx.QueryRowContext(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE id = ?`, id))
}

func (t *sqliteTx) BindAttachment(ctx context.Context, id, convID string) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE attachments SET conversation_id = ? WHERE id = ?`, convID, id); err != nil {
		return fmt.Errorf("bind attachment %s: %w", id, err)
	}
	return nil
}

func (t *sqliteTx) AppendOutbox(ctx context.Context, e ingest.OutboxRecord) error {
	return sqliteAppendOutbox(ctx, t.tx, t.s.outStmt, e)
}

func (t *sqliteTx) UpdateVisitorProfile(ctx context.Context, id, name, email string, fields map[string]string) error {
	var err error
	if fields == nil {
		_, err = t.tx.ExecContext(ctx, `UPDATE visitors SET name = ?, email = ? WHERE id = ?`, name, email, id)
	} else {
		_, err = t.tx.ExecContext(ctx, `UPDATE visitors SET name = ?, email = ?, fields = ? WHERE id = ?`, name, email, fieldsJSON(fields), id)
	}
	if err != nil {
		return fmt.Errorf("update visitor %s: %w", id, err)
	}
	return nil
}

func (t *sqliteTx) AssignedConversations(ctx context.Context, agentID string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id FROM conversations WHERE assignee_id = ? AND routing = ? AND status <> ? ORDER BY id`,
		agentID, RoutingAssigned, StatusResolved)
	if err != nil {
		return nil, fmt.Errorf("conversations of agent %s: %w", agentID, err)
	}
	return collectSQLRows(rows, scanID)
}

func (t *sqliteTx) SetAgentStatus(ctx context.Context, agentID, status string, at time.Time) (string, error) {
	var prev string
	err := t.tx.QueryRowContext(ctx, `SELECT status FROM agent_status WHERE agent_id = ?`, agentID).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read status of agent %s: %w", agentID, err)
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO agent_status (agent_id, status, changed_at) VALUES (?, ?, ?)
		ON CONFLICT (agent_id) DO UPDATE SET status = excluded.status, changed_at = excluded.changed_at`, agentID, status, at.UnixMilli()); err != nil {
		return "", fmt.Errorf("record status of agent %s: %w", agentID, err)
	}
	return prev, nil
}

// sqliteActivityUpdate stores what a message or a read receipt changes in
// its conversation (changeActivity).
const sqliteActivityUpdate = `UPDATE conversations SET last_seq = ?,
	last_role = ?, last_preview = ?, last_at = ?, visitor_read_seq = ?, agent_read_seq = ?, csat_rating = ?, csat_comment = ?,
	csat_at = ?, away_sent = ?, updated_at = ?, resolved_at = ?, version = version + 1 WHERE id = ? AND version = ?`

// sqliteExpired finds a site's resolved conversations last changed before
// a time, oldest first.
const sqliteExpired = `SELECT id, visitor_id FROM conversations
	WHERE site_id = ? AND ` + resolvedOnly + ` AND updated_at < ? ORDER BY updated_at LIMIT ?`

func (t *sqliteTx) ExpiredConversations(ctx context.Context, siteID string, cutoff time.Time, limit int) ([]ExpiredConversation, error) {
	rows, err := t.tx.QueryContext(ctx, sqliteExpired, siteID, cutoff.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("find expired conversations: %w", err)
	}
	return collectSQLRows(rows, func(r rowScanner) (ExpiredConversation, error) {
		var x ExpiredConversation
		err := r.Scan(&x.ID, &x.VisitorID)
		return x, err
	})
}

func (t *sqliteTx) DeleteConversation(ctx context.Context, id string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id FROM attachments WHERE conversation_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("find attachments of %s: %w", id, err)
	}
	files, err := collectSQLRows(rows, func(r rowScanner) (string, error) {
		var a string
		err := r.Scan(&a)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("find attachments of %s: %w", id, err)
	}
	for _, q := range []string{
		`DELETE FROM messages WHERE conversation_id = ?`,
		`DELETE FROM attachments WHERE conversation_id = ?`,
		`DELETE FROM conversations WHERE id = ?`,
	} {
		if _, err := t.tx.ExecContext(ctx, q, id); err != nil {
			return nil, fmt.Errorf("delete conversation %s: %w", id, err)
		}
	}
	return files, nil
}

func (t *sqliteTx) Commit(ctx context.Context) error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	t.s.catchUpWAL(ctx)
	return nil
}

func (t *sqliteTx) Rollback(context.Context) { t.tx.Rollback() }

// checkpointEvery is how often Maintain copies the write-ahead log into chat.db.
const checkpointEvery = 250 * time.Millisecond

// walAutoCheckpoint is SQLite's default, restored when Maintain stops.
const walAutoCheckpoint = 1000

// Maintain moves SQLite's WAL checkpoints off the writer: left to itself
// SQLite checkpoints inside the commit that crosses 1000 WAL pages, so one
// group commit in a few pays for copying pages into chat.db and an fsync
// while every sender waits. Here the writer's connection stops
// checkpointing and a second connection to the same file runs passive
// checkpoints (which never block the writer) on a timer. When chat.db has
// no file (in memory) or the second connection cannot be opened, SQLite's
// own checkpoints stay on.
func (s *sqliteChat) Maintain(ctx context.Context) {
	var path string
	if err := s.db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil || path == "" {
		if err != nil {
			s.log.Warn("chat.db path unknown; checkpoints stay in the writer", "err", err)
		}
		return
	}
	ck, err := sqlstore.Open(path)
	if err != nil {
		s.log.Warn("open chat.db for checkpoints; checkpoints stay in the writer", "err", err)
		return
	}
	defer ck.Close()
	if err := s.setAutoCheckpoint(ctx, 0); err != nil {
		s.log.Warn("checkpoints stay in the writer", "err", err)
		return
	}
	defer func() {
		if err := s.setAutoCheckpoint(context.WithoutCancel(ctx), walAutoCheckpoint); err != nil {
			s.log.Warn("restore automatic checkpoints", "err", err)
		}
	}()
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			logPages, done, err := checkpoint(ctx, ck)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("checkpoint chat.db", "err", err)
				}
				continue
			}
			if logPages < 0 {
				continue // the writer's catch-up was checkpointing at that moment
			}
			s.walPages.Set(float64(logPages))
			s.walBackfilled.Set(float64(done))
			if logPages >= walAutoCheckpoint {
				// Under steady writes the log is never fully copied at the
				// moment a transaction starts, so SQLite never rewinds it:
				// the writer finishes the copy after its next commit.
				s.walCatchUp.Store(true)
			}
		}
	}
}

// catchUpWAL runs after the writer's commits: it copies the few log pages
// the background checkpointer has not, so that the next transaction starts
// the log again from its beginning.
func (s *sqliteChat) catchUpWAL(ctx context.Context) {
	if !s.walCatchUp.Swap(false) {
		return
	}
	if _, _, err := checkpoint(ctx, s.db); err != nil && ctx.Err() == nil {
		s.log.Warn("checkpoint chat.db from the writer", "err", err)
	}
}

// setAutoCheckpoint sets the writer connection's automatic checkpoint
// threshold in pages (0: off). chat.db's handle has one connection; a
// connection it opens later starts with SQLite's default again.
func (s *sqliteChat) setAutoCheckpoint(ctx context.Context, pages int) error {
	var got int
	if err := s.db.QueryRowContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, pages)).Scan(&got); err != nil {
		return fmt.Errorf("set wal_autocheckpoint to %d: %w", pages, err)
	}
	return nil
}

// checkpoint copies what it can of the WAL into the database file without
// waiting for the writer; it returns the WAL's pages and how many of them
// are in the database file now.
func checkpoint(ctx context.Context, db *sql.DB) (logPages, done int, err error) {
	var busy int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done); err != nil {
		return 0, 0, fmt.Errorf("passive checkpoint: %w", err)
	}
	return logPages, done, nil
}

func (s *sqliteChat) SetWebhookSecret(ctx context.Context, id, secret string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sites SET webhook_secret = ? WHERE id = ?`, secret, id)
	if err != nil {
		return fmt.Errorf("rotate webhook secret of site %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqliteChat) AttachmentBytes(ctx context.Context, uploaderID, siteID string) (int64, int64, error) {
	var mine, site int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM attachments WHERE uploader_id = ?`, uploaderID).Scan(&mine); err != nil {
		return 0, 0, fmt.Errorf("attachment bytes of %s: %w", uploaderID, err)
	}
	if siteID != "" {
		if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM attachments WHERE site_id = ?`, siteID).Scan(&site); err != nil {
			return 0, 0, fmt.Errorf("attachment bytes of site %s: %w", siteID, err)
		}
	}
	return mine, site, nil
}

func (s *sqliteChat) DeleteUnboundAttachments(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `DELETE FROM attachments WHERE id IN (
		SELECT id FROM attachments WHERE conversation_id = '' AND created_at < ? ORDER BY created_at LIMIT ?) RETURNING id`,
		before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("delete unbound attachments: %w", err)
	}
	return collectSQLRows(rows, scanID)
}

func (s *sqliteChat) PutIPBan(ctx context.Context, b IPBanRecord) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO ip_bans (site_id, ip, until_ms, reason) VALUES (?, ?, ?, ?)
		ON CONFLICT(site_id, ip) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms), reason = excluded.reason`,
		b.SiteID, b.IP, b.Until.UnixMilli(), b.Reason); err != nil {
		return fmt.Errorf("store address ban: %w", err)
	}
	return nil
}

func (s *sqliteChat) IPBan(ctx context.Context, siteID, ip string, now time.Time) (IPBanRecord, bool, error) {
	b := IPBanRecord{SiteID: siteID, IP: ip}
	var until int64
	err := s.db.QueryRowContext(ctx, `SELECT until_ms, reason FROM ip_bans WHERE site_id = ? AND ip = ? AND until_ms > ?`,
		siteID, ip, now.UnixMilli()).Scan(&until, &b.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return IPBanRecord{}, false, nil
	}
	if err != nil {
		return IPBanRecord{}, false, fmt.Errorf("read address ban: %w", err)
	}
	b.Until = time.UnixMilli(until)
	return b, true, nil
}

func (s *sqliteChat) DeleteIPBans(ctx context.Context, siteID, ip string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM ip_bans WHERE site_id = ? AND ip = ?`, siteID, ip); err != nil {
		return fmt.Errorf("lift address ban: %w", err)
	}
	return nil
}
