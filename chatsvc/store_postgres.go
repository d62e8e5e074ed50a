package chatsvc

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// PostgresSchema is the PostgreSQL schema chat keeps its tables in.
const PostgresSchema = "chat"

// postgresMigrations is the chat schema's history on PostgreSQL; append
// steps, never edit applied ones. Times are Unix milliseconds (BIGINT),
// as in chat.db, so both stores share their row codecs (store_sql.go).
var postgresMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE sites (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	site_key TEXT NOT NULL UNIQUE,
	secret TEXT NOT NULL,
	allowed_origins TEXT NOT NULL DEFAULT '[]',
	identity_required BOOLEAN NOT NULL DEFAULT false,
	settings TEXT NOT NULL DEFAULT '{}',
	created_at BIGINT NOT NULL
);
CREATE TABLE visitors (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	external_id TEXT NOT NULL DEFAULT '',
	verified BOOLEAN NOT NULL DEFAULT false,
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
	created_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL
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
	queued_at BIGINT NOT NULL DEFAULT 0,
	last_seq BIGINT NOT NULL DEFAULT 0,
	last_role TEXT NOT NULL DEFAULT '',
	last_preview TEXT NOT NULL DEFAULT '',
	last_at BIGINT NOT NULL DEFAULT 0,
	visitor_read_seq BIGINT NOT NULL DEFAULT 0,
	agent_read_seq BIGINT NOT NULL DEFAULT 0,
	csat_rating INTEGER NOT NULL DEFAULT 0,
	csat_comment TEXT NOT NULL DEFAULT '',
	csat_at BIGINT NOT NULL DEFAULT 0,
	away_sent BOOLEAN NOT NULL DEFAULT false,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	resolved_at BIGINT NOT NULL DEFAULT 0,
	version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX conversations_visitor ON conversations(visitor_id, created_at);
CREATE INDEX conversations_status ON conversations(status, updated_at);
CREATE INDEX conversations_assignee ON conversations(assignee_id, status);
CREATE INDEX conversations_retention ON conversations(site_id, status, updated_at);
CREATE TABLE messages (
	id TEXT PRIMARY KEY,
	conversation_id TEXT NOT NULL,
	seq BIGINT NOT NULL,
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
	created_at BIGINT NOT NULL,
	CONSTRAINT messages_seq UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client ON messages(author_id, client_id) WHERE client_id <> '';
CREATE TABLE attachments (
	id TEXT PRIMARY KEY,
	uploader_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL,
	content_type TEXT NOT NULL,
	size BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX attachments_conversation ON attachments(conversation_id);
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
	until_ms BIGINT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (site_id, visitor_id)
);
CREATE TABLE outbox (
	id BIGSERIAL PRIMARY KEY,
	event_id TEXT NOT NULL,
	topic TEXT NOT NULL,
	msg_key TEXT NOT NULL,
	value BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	sent_at BIGINT
);
CREATE INDEX outbox_pending ON outbox(id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox(sent_at) WHERE sent_at IS NOT NULL;
CREATE TABLE signing_keys (name TEXT PRIMARY KEY, key BYTEA NOT NULL);
CREATE TABLE agent_presence (
	agent_id TEXT NOT NULL,
	node_id TEXT NOT NULL,
	status TEXT NOT NULL,
	team_id TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL DEFAULT '',
	heartbeat_at BIGINT NOT NULL,
	PRIMARY KEY (agent_id, node_id)
);
CREATE INDEX agent_presence_node ON agent_presence(node_id);
CREATE TABLE agent_status (
	agent_id TEXT PRIMARY KEY,
	status TEXT NOT NULL,
	changed_at BIGINT NOT NULL
);
CREATE INDEX conversations_queue ON conversations(routing, status, queued_at);
CREATE TABLE attachment_files (id TEXT PRIMARY KEY, data BYTEA NOT NULL);
`},
	// Security (docs/security.md): as SQLite's step 6.
	{Version: 2, SQL: `
ALTER TABLE sites ADD COLUMN webhook_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE attachments ADD COLUMN site_id TEXT NOT NULL DEFAULT '';
CREATE INDEX attachments_uploader ON attachments(uploader_id);
CREATE INDEX attachments_site ON attachments(site_id);
CREATE INDEX attachments_unbound ON attachments(created_at) WHERE conversation_id = '';
CREATE TABLE ip_bans (
	site_id TEXT NOT NULL,
	ip TEXT NOT NULL,
	until_ms BIGINT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (site_id, ip)
);`},
	// SQLite's step 7 (see statusIndexes), with one difference: PostgreSQL
	// updates a row in place, adding no index entry (a HOT update), only
	// when no indexed column changes, and a message changes updated_at.
	// So the resolved lists are ordered by list_at, which the conversation
	// update keeps equal to updated_at on resolved rows and leaves alone
	// on the others (pgConversationUpdate); fillfactor leaves room on each
	// page for the new row versions.
	{Version: 3, SQL: `
DROP INDEX IF EXISTS conversations_status;
DROP INDEX IF EXISTS conversations_retention;
ALTER TABLE conversations ADD COLUMN list_at BIGINT NOT NULL DEFAULT 0;
UPDATE conversations SET list_at = updated_at WHERE status = 'resolved';
ALTER TABLE conversations SET (fillfactor = 70);
CREATE INDEX conversations_active ON conversations(status) WHERE status <> 'resolved';
CREATE INDEX conversations_resolved ON conversations(list_at, id) WHERE status = 'resolved';
CREATE INDEX conversations_resolved_site ON conversations(site_id, list_at, id) WHERE status = 'resolved';
`},
}

// outboxLock is the advisory lock a relay holds while it claims chat's
// outbox, so one node at a time publishes and a key's events keep their order.
const outboxLock = 0x63686174 // "chat"

// postgresChat keeps chat rows in PostgreSQL, shared by every chat node:
// a conversation row's version tells a node that another one changed it.
type postgresChat struct {
	db *pgxpool.Pool
}

// OpenPostgres migrates the chat schema on pool (opened with search_path
// "chat", see sqlstore.OpenPostgres) and returns the store.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool) (ChatStore, error) {
	if err := sqlstore.MigratePostgres(ctx, pool, PostgresSchema, postgresMigrations); err != nil {
		return nil, err
	}
	return &postgresChat{db: pool}, nil
}

// pgRow turns pgx's "no rows" into database/sql's, which the shared
// scanners of store_sql.go test for.
type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// collectPgRows scans every row with scan and closes rows.
func collectPgRows[T any](rows pgx.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
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

// pgLostRace reports whether PostgreSQL gave up err's statement to let
// another transaction go on (a deadlock, or a lock wait over
// lock_timeout): for the writer that is a lost race, redone at once.
func pgLostRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "55P03")
}

// pgConstraint reports whether err is a unique violation of constraint.
func pgConstraint(err error, constraint string) bool {
	return sqlstore.IsUniqueViolation(err, constraint)
}

func (s *postgresChat) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Maintain has nothing to do: PostgreSQL runs its own checkpoints and vacuum.
func (s *postgresChat) Maintain(ctx context.Context) {}

func (s *postgresChat) Begin(ctx context.Context) (ChatTx, error) {
	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &postgresTx{conn: conn}, nil
}

func (s *postgresChat) OpenConversations(ctx context.Context) ([]*convState, error) {
	rows, err := s.db.Query(ctx, `SELECT `+convColumns+` FROM conversations WHERE status <> 'resolved'`)
	out, err := collectPgRows(rows, err, scanConv)
	if err != nil {
		return nil, fmt.Errorf("load open conversations: %w", err)
	}
	return out, nil
}

func (s *postgresChat) Conversation(ctx context.Context, id string) (*convState, error) {
	return scanConv(pgRow{s.db.QueryRow(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = $1`, id)})
}

// pgArgs numbers placeholders as they are added.
type pgArgs []any

func (a *pgArgs) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

func (s *postgresChat) ConversationRows(ctx context.Context, f ConversationFilter) ([]ConversationRow, error) {
	var where []string
	var args pgArgs
	// Resolved rows are read in list_at order, which is their updated_at
	// (see migration 3).
	order := "c.updated_at"
	switch f.Status {
	case "all":
	case StatusResolved:
		where, order = append(where, "c."+resolvedOnly), "c.list_at"
	default:
		where = append(where, "c.status = "+args.add(cmp.Or(f.Status, StatusOpen)), "c."+notResolved)
	}
	switch f.Scope {
	case "unassigned":
		where = append(where, "c.assignee_id = ''")
	case "mine":
		where = append(where, "c.assignee_id = "+args.add(f.Me))
	}
	if f.SiteID != "" {
		where = append(where, "c.site_id = "+args.add(f.SiteID))
	}
	if f.Sites != nil {
		if len(f.Sites) == 0 {
			return nil, nil // a staff member on no site sees nothing
		}
		where = append(where, "c.site_id = ANY("+args.add(f.Sites)+"::TEXT[])")
	}
	if f.VisitorID != "" {
		where = append(where, "c.visitor_id = "+args.add(f.VisitorID))
	}
	if !f.Before.IsZero() {
		where = append(where, order+" < "+args.add(f.Before.UnixMilli()))
	}
	q := convSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order + " DESC, c.id DESC LIMIT " + args.add(f.Limit)
	rows, err := s.db.Query(ctx, q, args...)
	out, err := collectPgRows(rows, err, scanConvRow)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return out, nil
}

func (s *postgresChat) LatestConversationRow(ctx context.Context, visitorID string) (*ConversationRow, error) {
	rows, err := s.db.Query(ctx, convSelect+` WHERE c.visitor_id = $1 ORDER BY c.created_at DESC LIMIT 1`, visitorID)
	list, err := collectPgRows(rows, err, scanConvRow)
	if err != nil {
		return nil, fmt.Errorf("latest conversation of %s: %w", visitorID, err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	return &list[0], nil
}

func (s *postgresChat) MessagesAfter(ctx context.Context, convID string, after int64, limit int) ([]Message, error) {
	rows, err := s.db.Query(ctx, `SELECT `+messageColumns+` FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, convID, after, limit)
	out, err := collectPgRows(rows, err, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", convID, err)
	}
	return out, nil
}

func (s *postgresChat) VisitorExists(ctx context.Context, id string) (bool, error) {
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM visitors WHERE id = $1)`, id).Scan(&exists); err != nil {
		return false, fmt.Errorf("read visitor %s: %w", id, err)
	}
	return exists, nil
}

func (s *postgresChat) InsertVisitor(ctx context.Context, v VisitorRecord) error {
	ms := v.CreatedAt.UnixMilli()
	if _, err := s.db.Exec(ctx, `INSERT INTO visitors (id, site_id, external_id, verified, ip, user_agent, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
		v.ID, v.SiteID, v.ExternalID, v.Verified, v.IP, v.UserAgent, ms); err != nil {
		return fmt.Errorf("create visitor: %w", err)
	}
	return nil
}

func (s *postgresChat) EnsureExternalVisitor(ctx context.Context, v VisitorRecord) (string, error) {
	ms := v.CreatedAt.UnixMilli()
	if _, err := s.db.Exec(ctx, `INSERT INTO visitors (id, site_id, external_id, verified, ip, user_agent, created_at, last_seen_at) VALUES ($1, $2, $3, true, $4, $5, $6, $6)
		ON CONFLICT (site_id, external_id) WHERE external_id <> '' DO NOTHING`,
		v.ID, v.SiteID, v.ExternalID, v.IP, v.UserAgent, ms); err != nil {
		return "", fmt.Errorf("create visitor %s: %w", v.ExternalID, err)
	}
	var id string
	if err := s.db.QueryRow(ctx, `SELECT id FROM visitors WHERE site_id = $1 AND external_id = $2`, v.SiteID, v.ExternalID).Scan(&id); err != nil {
		return "", fmt.Errorf("find visitor %s: %w", v.ExternalID, err)
	}
	return id, nil
}

func (s *postgresChat) TouchVisitor(ctx context.Context, id, ip, ua string, at time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE visitors SET last_seen_at = $1, ip = $2, user_agent = $3 WHERE id = $4`, at.UnixMilli(), ip, ua, id); err != nil {
		return fmt.Errorf("touch visitor %s: %w", id, err)
	}
	return nil
}

func (s *postgresChat) SetVisitorPage(ctx context.Context, id string, p VisitorPage, at time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE visitors SET page_url = $1, page_title = $2, referrer = $3, timezone = $4, locale = $5, last_seen_at = $6 WHERE id = $7`,
		p.URL, p.Title, p.Referrer, p.Timezone, p.Locale, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("store context of visitor %s: %w", id, err)
	}
	return nil
}

func (s *postgresChat) Visitor(ctx context.Context, id string) (Visitor, bool, error) {
	return scanVisitor(pgRow{s.db.QueryRow(ctx, `SELECT `+visitorColumns+` FROM visitors WHERE id = $1`, id)})
}

func (s *postgresChat) Sites(ctx context.Context) ([]Site, error) {
	rows, err := s.db.Query(ctx, `SELECT `+siteColumns+` FROM sites`)
	out, err := collectPgRows(rows, err, scanSite)
	if err != nil {
		return nil, fmt.Errorf("load sites: %w", err)
	}
	return out, nil
}

// pgExecer is what a pool and a transaction share.
type pgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const pgOutboxInsert = `INSERT INTO outbox (event_id, topic, msg_key, value, created_at) VALUES ($1, $2, $3, $4, $5)`

// pgOutboxInsertAll inserts many records with one statement, in their
// order (the relay publishes in id order). A statement per record was the
// largest count in the cross-node bench: one per chat event.
const pgOutboxInsertAll = `INSERT INTO outbox (event_id, topic, msg_key, value, created_at)
	SELECT e, t, k, v, c FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bigint[]) WITH ORDINALITY AS r(e, t, k, v, c, n) ORDER BY n`

// pgOutboxArgs are pgOutboxInsertAll's arguments for records.
func pgOutboxArgs(records []ingest.OutboxRecord) []any {
	ids, topics, keys := make([]string, len(records)), make([]string, len(records)), make([]string, len(records))
	values, created := make([][]byte, len(records)), make([]int64, len(records))
	for i, r := range records {
		ids[i], topics[i], keys[i], values[i], created[i] = r.EventID, r.Topic, r.Key, r.Value, r.CreatedAt.UnixMilli()
	}
	return []any{ids, topics, keys, values, created}
}

func pgAppendOutbox(ctx context.Context, db pgExecer, r ingest.OutboxRecord) error {
	if _, err := db.Exec(ctx, pgOutboxInsert, r.EventID, r.Topic, r.Key, r.Value, r.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("outbox %s: %w", r.Type, err)
	}
	return nil
}

func (s *postgresChat) InsertSite(ctx context.Context, site Site, e ingest.OutboxRecord) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sites (`+siteColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, siteArgs(site)...); err != nil {
			return fmt.Errorf("create site %q: %w", site.Name, err)
		}
		return pgAppendOutbox(ctx, tx, e)
	})
}

func (s *postgresChat) UpdateSite(ctx context.Context, site Site, e ingest.OutboxRecord) error {
	a := siteArgs(site)
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sites SET name = $1, allowed_origins = $2, identity_required = $3, settings = $4 WHERE id = $5`,
			a[1], a[4], a[5], a[6], site.ID)
		if err != nil {
			return fmt.Errorf("update site %s: %w", site.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return pgAppendOutbox(ctx, tx, e)
	})
}

func (s *postgresChat) SetSiteSecret(ctx context.Context, id, secret string) error {
	tag, err := s.db.Exec(ctx, `UPDATE sites SET secret = $1 WHERE id = $2`, secret, id)
	if err != nil {
		return fmt.Errorf("rotate secret of site %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *postgresChat) DeleteSite(ctx context.Context, id string, e ingest.OutboxRecord) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sites WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete site %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return pgAppendOutbox(ctx, tx, e)
	})
}

func (s *postgresChat) AppendOutbox(ctx context.Context, events []ingest.OutboxRecord) error {
	if len(events) == 0 {
		return nil
	}
	if _, err := s.db.Exec(ctx, pgOutboxInsertAll, pgOutboxArgs(events)...); err != nil {
		return fmt.Errorf("outbox of %d events: %w", len(events), err)
	}
	return nil
}

func (s *postgresChat) CannedReplies(ctx context.Context, siteID string) ([]Canned, error) {
	var rows pgx.Rows
	var err error
	if siteID == "" {
		rows, err = s.db.Query(ctx, `SELECT id, site_id, shortcut, text FROM canned_replies ORDER BY shortcut, site_id`)
	} else {
		rows, err = s.db.Query(ctx, `SELECT id, site_id, shortcut, text FROM canned_replies WHERE site_id = '' OR site_id = $1 ORDER BY shortcut, site_id`, siteID)
	}
	out, err := collectPgRows(rows, err, scanCanned)
	if err != nil {
		return nil, fmt.Errorf("list canned replies: %w", err)
	}
	return out, nil
}

func (s *postgresChat) InsertCanned(ctx context.Context, r Canned) error {
	_, err := s.db.Exec(ctx, `INSERT INTO canned_replies (id, site_id, shortcut, text) VALUES ($1, $2, $3, $4)`, r.ID, r.SiteID, r.Shortcut, r.Text)
	if pgConstraint(err, "canned_replies_site_id_shortcut_key") {
		return errShortcutTaken
	}
	if err != nil {
		return fmt.Errorf("create canned reply: %w", err)
	}
	return nil
}

func (s *postgresChat) UpdateCanned(ctx context.Context, r Canned) error {
	tag, err := s.db.Exec(ctx, `UPDATE canned_replies SET site_id = $1, shortcut = $2, text = $3 WHERE id = $4`, r.SiteID, r.Shortcut, r.Text, r.ID)
	if pgConstraint(err, "canned_replies_site_id_shortcut_key") {
		return errShortcutTaken
	}
	if err != nil {
		return fmt.Errorf("update canned reply: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *postgresChat) DeleteCanned(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM canned_replies WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete canned reply: %w", err)
	}
	return nil
}

func (s *postgresChat) InsertAttachment(ctx context.Context, a AttachmentRecord) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO attachments (id, uploader_id, name, content_type, size, created_at, site_id) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		a.ID, a.UploaderID, a.Name, a.ContentType, a.Size, a.CreatedAt.UnixMilli(), a.SiteID); err != nil {
		return fmt.Errorf("record attachment: %w", err)
	}
	return nil
}

func (s *postgresChat) Attachment(ctx context.Context, id string) (AttachmentRecord, error) {
	return scanAttachment(pgRow{s.db.QueryRow(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE id = $1`, id)})
}

func (s *postgresChat) ActiveBans(ctx context.Context, now time.Time) ([]BanRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT site_id, visitor_id, until_ms, reason FROM bans WHERE until_ms > $1`, now.UnixMilli())
	out, err := collectPgRows(rows, err, scanBan)
	if err != nil {
		return nil, fmt.Errorf("load bans: %w", err)
	}
	return out, nil
}

func (s *postgresChat) PutBan(ctx context.Context, b BanRecord) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO bans (site_id, visitor_id, until_ms, reason) VALUES ($1, $2, $3, $4)
		ON CONFLICT (site_id, visitor_id) DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason`,
		b.SiteID, b.VisitorID, b.Until.UnixMilli(), b.Reason); err != nil {
		return fmt.Errorf("store ban of %s: %w", b.VisitorID, err)
	}
	return nil
}

func (s *postgresChat) DeleteBan(ctx context.Context, siteID, visitorID string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM bans WHERE site_id = $1 AND visitor_id = $2`, siteID, visitorID); err != nil {
		return fmt.Errorf("lift ban of %s: %w", visitorID, err)
	}
	return nil
}

func (s *postgresChat) QueuedConversations(ctx context.Context) ([]*convState, error) {
	rows, err := s.db.Query(ctx, `SELECT `+convColumns+` FROM conversations WHERE routing = $1 AND status <> $2 ORDER BY queued_at, id`, RoutingQueued, StatusResolved)
	out, err := collectPgRows(rows, err, scanConv)
	if err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	return out, nil
}

func (s *postgresChat) AgentLoads(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.Query(ctx, `SELECT assignee_id, count(*) FROM conversations
		WHERE routing = $1 AND status <> $2 AND assignee_id <> '' GROUP BY assignee_id`, RoutingAssigned, StatusResolved)
	pairs, err := collectPgRows(rows, err, scanCount)
	if err != nil {
		return nil, fmt.Errorf("count agent loads: %w", err)
	}
	return countMap(pairs), nil
}

func (s *postgresChat) ReportPresence(ctx context.Context, node string, agents []NodePresence, at time.Time) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM agent_presence WHERE node_id = $1`, node); err != nil {
			return fmt.Errorf("report presence of %s: %w", node, err)
		}
		for _, a := range agents {
			if _, err := tx.Exec(ctx, `INSERT INTO agent_presence (agent_id, node_id, status, team_id, name, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				a.AgentID, node, a.Status, a.TeamID, a.Name, at.UnixMilli()); err != nil {
				return fmt.Errorf("report presence of %s: %w", node, err)
			}
		}
		return nil
	})
}

func (s *postgresChat) FreshPresence(ctx context.Context, since time.Time) ([]NodePresence, error) {
	rows, err := s.db.Query(ctx, `SELECT agent_id, node_id, status, team_id, name, heartbeat_at FROM agent_presence WHERE heartbeat_at >= $1 ORDER BY agent_id, node_id`, since.UnixMilli())
	out, err := collectPgRows(rows, err, scanPresence)
	if err != nil {
		return nil, fmt.Errorf("read presence: %w", err)
	}
	return out, nil
}

func (s *postgresChat) AgentStatuses(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.Query(ctx, `SELECT agent_id, status FROM agent_status`)
	pairs, err := collectPgRows(rows, err, scanStatus)
	if err != nil {
		return nil, fmt.Errorf("read agent statuses: %w", err)
	}
	return statusMap(pairs), nil
}

// leaseCheck is how often a held leadership checks its connection.
const leaseCheck = time.Second

// TryLead takes a session-level advisory lock on a connection of its own:
// the lock lives as long as that connection, so a node that crashes (or
// loses PostgreSQL) loses the leadership and another node takes it.
func (s *postgresChat) TryLead(ctx context.Context, name string) (Lease, bool, error) {
	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lead %s: %w", name, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, "parley.chat."+name).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("lead %s: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	l := &pgLease{conn: conn, name: name, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, true, nil
}

// pgLease holds an advisory lock on one connection.
type pgLease struct {
	conn       *pgxpool.Conn
	name       string
	lost, stop chan struct{}
	done       chan struct{}
	once       sync.Once
}

func (l *pgLease) Lost() <-chan struct{} { return l.lost }

// watch pings the lock's connection; when it fails the lock is gone.
func (l *pgLease) watch() {
	defer close(l.done)
	t := time.NewTicker(leaseCheck)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), leaseCheck)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				close(l.lost)
				return
			}
		}
	}
}

// Release unlocks and returns the connection; a broken connection is
// destroyed, which frees the lock on the server.
func (l *pgLease) Release() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "parley.chat."+l.name); err != nil {
			_ = l.conn.Conn().Close(ctx)
		}
		l.conn.Release()
	})
}

func (s *postgresChat) SigningKey(ctx context.Context, candidate []byte) ([]byte, error) {
	if _, err := s.db.Exec(ctx, `INSERT INTO signing_keys (name, key) VALUES ('visitor-token', $1) ON CONFLICT (name) DO NOTHING`, candidate); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	var key []byte
	if err := s.db.QueryRow(ctx, `SELECT key FROM signing_keys WHERE name = 'visitor-token'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return key, nil
}

// PostgresFiles keeps attachment bytes in the chat schema, so every chat
// node serves every upload without a shared disk.
func PostgresFiles(pool *pgxpool.Pool) AttachmentStore { return postgresFiles{db: pool} }

type postgresFiles struct{ db *pgxpool.Pool }

// maxStoredFile bounds what Put reads: the upload limit plus one byte, so
// the caller can tell an oversized file from a full one.
const maxStoredFile = 64 << 20

func (f postgresFiles) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxStoredFile))
	if err != nil {
		return 0, fmt.Errorf("read attachment %s: %w", key, err)
	}
	if _, err := f.db.Exec(ctx, `INSERT INTO attachment_files (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = excluded.data`, key, data); err != nil {
		return 0, fmt.Errorf("store attachment %s: %w", key, err)
	}
	return int64(len(data)), nil
}

func (f postgresFiles) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	var data []byte
	err := f.db.QueryRow(ctx, `SELECT data FROM attachment_files WHERE id = $1`, key).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read attachment %s: %w", key, err)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (f postgresFiles) Delete(ctx context.Context, key string) error {
	if _, err := f.db.Exec(ctx, `DELETE FROM attachment_files WHERE id = $1`, key); err != nil {
		return fmt.Errorf("delete attachment %s: %w", key, err)
	}
	return nil
}

// ClaimOutbox publishes under a transaction-level advisory lock: a relay
// on another node waits for it, then finds the rows sent. Within the
// lock, FOR UPDATE SKIP LOCKED keeps a row from being claimed twice even by
// a relay that does not take the lock (an older binary).
func (s *postgresChat) ClaimOutbox(ctx context.Context, limit int, publish ingest.PublishFunc) (int, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("claim outbox: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(outboxLock)); err != nil {
		return 0, fmt.Errorf("claim outbox: lock: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT id, event_id, topic, msg_key, value, created_at FROM outbox
		WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	recs, err := collectPgRows(rows, err, scanOutbox)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	acked, pubErr := publish(ctx, recs)
	// The events Kafka took must be marked even when ctx ends meanwhile.
	work := context.WithoutCancel(ctx)
	if len(acked) > 0 {
		if _, err := tx.Exec(work, `UPDATE outbox SET sent_at = $1 WHERE id = ANY($2)`, sqlstore.PlanEachTime, time.Now().UnixMilli(), acked); err != nil {
			return len(recs), fmt.Errorf("mark %d outbox events sent: %w", len(acked), err)
		}
	}
	if err := tx.Commit(work); err != nil {
		return len(recs), fmt.Errorf("mark %d outbox events sent: %w", len(acked), err)
	}
	return len(recs), pubErr
}

func (s *postgresChat) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var n int64
	var oldest *int64
	if err := s.db.QueryRow(ctx, `SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("count outbox: %w", err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(*oldest), nil
}

func (s *postgresChat) PurgeOutbox(ctx context.Context, cutoff time.Time) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1`, cutoff.UnixMilli()); err != nil {
		return fmt.Errorf("purge outbox: %w", err)
	}
	return nil
}

// postgresTx is the writer's batch transaction on PostgreSQL. Its writes
// are queued and sent together, in one round trip, before the next read
// and at commit: a batch of messages costs a few round trips instead of
// three per message. A write's refusal (a lost race on a conversation's
// version or seq, a resent client id) therefore surfaces at that read or
// at commit rather than at the call; the writer redoes the whole batch
// either way. BEGIN itself rides with the first writes (or goes just
// before the first read).
type postgresTx struct {
	conn   *pgxpool.Conn // held from Begin to Commit or Rollback
	tx     pgx.Tx        // nil until the transaction is opened
	writes pgx.Batch
	// order holds each queued write's place: writes go out sorted by
	// conversation, and within one the conversation row first, so two
	// nodes' batches lock conversations in the same order and the row
	// before the message index, and wait for each other instead of
	// deadlocking.
	order []writeOrder
	// outbox holds the records AppendOutbox was given since the last
	// flush, which inserts them with one statement.
	outbox []ingest.OutboxRecord
	// failed is the first refusal sent back; every later call and Commit
	// return it, so a read that an operation turns into its own refusal
	// cannot hide that the transaction is lost.
	failed error
}

// writeOrder places a queued write: its conversation ("" when it locks
// none) and, within it, rowFirst for writes of the conversation row.
type writeOrder struct {
	convID string
	row    int
}

const (
	rowFirst = iota
	rowUpdate
	rowOther
)

func compareWrites(a, b writeOrder) int {
	if c := strings.Compare(a.convID, b.convID); c != 0 {
		return c
	}
	return a.row - b.row
}

// queue adds a write; check turns its outcome into the caller's error.
func (t *postgresTx) queue(at writeOrder, check func(pgconn.CommandTag, error) error, sql string, args ...any) {
	t.writes.Queue(sql, args...).Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		return check(tag, err)
	}
	t.order = append(t.order, at)
}

// flush sends the queued writes, opening the transaction in the same
// round trip when it is not open yet, and returns the first refusal. tail
// goes out after the writes, in the same trip (Commit's COMMIT).
func (t *postgresTx) flush(ctx context.Context, tail ...*pgx.QueuedQuery) error {
	if len(t.outbox) > 0 && t.failed == nil {
		n := len(t.outbox)
		t.queue(writeOrder{}, wrapped("outbox of %d events", n), pgOutboxInsertAll, pgOutboxArgs(t.outbox)...)
		t.outbox = t.outbox[:0]
	}
	if t.failed != nil || t.writes.Len() == 0 && len(tail) == 0 {
		return t.failed
	}
	queued := t.writes.QueuedQueries
	if !slices.IsSortedFunc(t.order, compareWrites) {
		idx := make([]int, len(queued))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return compareWrites(t.order[a], t.order[b]) })
		sorted := make([]*pgx.QueuedQuery, len(queued))
		for i, j := range idx {
			sorted[i] = queued[j]
		}
		queued = sorted
	}
	queued = append(queued, tail...)
	t.writes, t.order = pgx.Batch{}, t.order[:0]
	if t.tx != nil {
		t.failed = t.tx.SendBatch(ctx, &pgx.Batch{QueuedQueries: queued}).Close()
		return t.failed
	}
	return t.open(ctx, queued)
}

// writerLockTimeout bounds how long the writer waits for a row another
// node's batch holds: longer means the two batches locked in different
// orders (a read between writes), and giving up at once (a lost race, the
// batch is redone) beats PostgreSQL's deadlock check a second later.
const writerLockTimeout = "200ms"

// open begins the transaction and sends queued in the same round trip.
func (t *postgresTx) open(ctx context.Context, queued []*pgx.QueuedQuery) error {
	var b pgx.Batch
	b.BeginTx(pgx.TxOptions{})
	b.Queue(`SET LOCAL lock_timeout = '` + writerLockTimeout + `'`)
	b.QueuedQueries = append(b.QueuedQueries, queued...)
	res := t.conn.SendBatch(ctx, &b)
	t.tx = res.Tx()
	if err := res.Close(); err != nil {
		t.failed = fmt.Errorf("begin and write: %w", err)
	}
	return t.failed
}

// ready makes the transaction's own writes visible to a read that follows.
func (t *postgresTx) ready(ctx context.Context) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	if t.tx != nil {
		return nil
	}
	return t.open(ctx, nil)
}

// release returns the connection to the pool (once).
func (t *postgresTx) release() {
	if t.conn != nil {
		t.conn.Release()
		t.conn = nil
	}
}

// wrapped is the check of a write that has no refusal of its own.
func wrapped(format string, args ...any) func(pgconn.CommandTag, error) error {
	return func(_ pgconn.CommandTag, err error) error {
		if err != nil {
			return fmt.Errorf(format+": %w", append(args, err)...)
		}
		return nil
	}
}

func (t *postgresTx) Conversation(ctx context.Context, id string) (*convState, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	return scanConv(pgRow{t.tx.QueryRow(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = $1`, id)})
}

// LockConversations locks the rows in id order, the order every batch's
// writes take too (see flush), so two nodes' batches wait rather than
// deadlock.
func (t *postgresTx) LockConversations(ctx context.Context, ids []string) ([]*convState, error) {
	return t.lockConversations(ctx, ids, `SELECT `+convColumns+` FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE`)
}

// TryLockConversations skips the rows another transaction holds: it never
// waits, so it cannot deadlock either.
func (t *postgresTx) TryLockConversations(ctx context.Context, ids []string) ([]*convState, error) {
	return t.lockConversations(ctx, ids, `SELECT `+convColumns+` FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED`)
}

func (t *postgresTx) lockConversations(ctx context.Context, ids []string, query string) ([]*convState, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, query, sqlstore.PlanEachTime, ids)
	out, err := collectPgRows(rows, err, scanConv)
	if pgLostRace(err) {
		t.failed = &conflictError{conversationID: ids[0]}
		return nil, t.failed
	}
	if err != nil {
		return nil, fmt.Errorf("lock %d conversations: %w", len(ids), err)
	}
	return out, nil
}

func (t *postgresTx) NewestConversationOf(ctx context.Context, visitorID string) (string, error) {
	if err := t.ready(ctx); err != nil {
		return "", err
	}
	var id string
	err := t.tx.QueryRow(ctx, `SELECT id FROM conversations WHERE visitor_id = $1 ORDER BY created_at DESC LIMIT 1`, visitorID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find conversation of visitor %s: %w", visitorID, err)
	}
	return id, nil
}

func (t *postgresTx) VisitorSummary(ctx context.Context, id string) (visitorState, error) {
	if err := t.ready(ctx); err != nil {
		return visitorState{}, err
	}
	v := visitorState{ID: id}
	err := t.tx.QueryRow(ctx, `SELECT site_id, name, email FROM visitors WHERE id = $1`, id).Scan(&v.SiteID, &v.Name, &v.Email)
	if errors.Is(err, pgx.ErrNoRows) {
		return visitorState{ID: id}, nil
	}
	if err != nil {
		return visitorState{}, fmt.Errorf("read visitor %s: %w", id, err)
	}
	return v, nil
}

func (t *postgresTx) InsertConversation(_ context.Context, c *convState) error {
	c.Version = 1
	t.queue(writeOrder{c.ID, rowFirst}, wrapped("insert conversation %s", c.ID),
		`INSERT INTO conversations (`+convColumns+`, list_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)`,
		append(convArgs(c), listAtOf(c.Status, c.UpdatedAt))...)
	return nil
}

// pgConversationUpdate stores a conversation if the row still has the
// version the writer read. list_at follows updated_at on resolved rows
// only (see migration 3): an open conversation's message changes no
// indexed column, so PostgreSQL can update its row in place.
const pgConversationUpdate = `UPDATE conversations SET status = $1, routing = $2, assignee_id = $3, team_id = $4, queued_at = $5, last_seq = $6,
	last_role = $7, last_preview = $8, last_at = $9, visitor_read_seq = $10, agent_read_seq = $11, csat_rating = $12, csat_comment = $13,
	csat_at = $14, away_sent = $15, updated_at = $16, resolved_at = $17, version = version + 1,
	list_at = CASE WHEN $1 = '` + StatusResolved + `' THEN $16 ELSE list_at END
	WHERE id = $18 AND version = $19`

// UpdateConversation counts on the version it read: when another node
// wrote the row since, no row matches and the batch is redone. It writes
// every column whatever change says: another node may have changed the
// row since this node's cache saw it, so that cache is no baseline, and
// naming an unchanged column costs PostgreSQL nothing (it decides from
// the values, not the columns named, whether an update needs new index
// entries).
func (t *postgresTx) UpdateConversation(_ context.Context, c *convState, _ convChange) error {
	id := c.ID
	t.queue(writeOrder{id, rowUpdate}, func(tag pgconn.CommandTag, err error) error {
		if pgLostRace(err) {
			return &conflictError{conversationID: id}
		}
		if err != nil {
			return fmt.Errorf("update conversation %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return &conflictError{conversationID: id}
		}
		return nil
	}, pgConversationUpdate, pgConversationUpdateArgs(c)...)
	c.Version++
	return nil
}

func pgConversationUpdateArgs(c *convState) []any {
	return []any{c.Status, c.Routing, c.Assignee, c.TeamID, c.QueuedAt, c.LastSeq, c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq,
		c.CSATRating, c.CSATComment, c.CSATAt, c.AwaySent, c.UpdatedAt, c.ResolvedAt, c.ID, c.Version}
}

func (t *postgresTx) InsertMessage(_ context.Context, m Message, atts []ingest.Attachment) error {
	author, clientID, convID := m.Author.ID, m.ClientID, m.ConversationID
	t.queue(writeOrder{convID, rowOther}, func(_ pgconn.CommandTag, err error) error {
		switch {
		case err == nil:
			return nil
		case clientID != "" && pgConstraint(err, "messages_client"):
			return &resendError{author: author, clientID: clientID}
		case pgConstraint(err, "messages_seq"), pgLostRace(err):
			return &conflictError{conversationID: convID}
		}
		return fmt.Errorf("insert message into %s: %w", convID, err)
	}, `INSERT INTO messages (`+messageColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		messageArgs(m, atts)...)
	return nil
}

func (t *postgresTx) MessageByClientID(ctx context.Context, authorID, clientID string) (Message, bool, error) {
	if err := t.ready(ctx); err != nil {
		return Message{}, false, err
	}
	return scanMessageOnce(pgRow{t.tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE author_id = $1 AND client_id = $2 AND client_id <> ''`, authorID, clientID)})
}

func (t *postgresTx) MessageByID(ctx context.Context, id string) (Message, bool, error) {
	if err := t.ready(ctx); err != nil {
		return Message{}, false, err
	}
	return scanMessageOnce(pgRow{t.tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, id)})
}

func (t *postgresTx) SetMessageStatus(_ context.Context, id, status string) error {
	t.queue(writeOrder{}, wrapped("set status of message %s", id), `UPDATE messages SET status = $1 WHERE id = $2`, status, id)
	return nil
}

func (t *postgresTx) Attachment(ctx context.Context, id string) (AttachmentRecord, error) {
	if err := t.ready(ctx); err != nil {
		return AttachmentRecord{}, err
	}
	return scanAttachment(pgRow{t.tx.QueryRow(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE id = $1`, id)})
}

func (t *postgresTx) BindAttachment(_ context.Context, id, convID string) error {
	t.queue(writeOrder{convID, rowOther}, wrapped("bind attachment %s", id), `UPDATE attachments SET conversation_id = $1 WHERE id = $2`, convID, id)
	return nil
}

func (t *postgresTx) AppendOutbox(_ context.Context, e ingest.OutboxRecord) error {
	t.outbox = append(t.outbox, e)
	return nil
}

func (t *postgresTx) UpdateVisitorProfile(_ context.Context, id, name, email string, fields map[string]string) error {
	if fields == nil {
		t.queue(writeOrder{}, wrapped("update visitor %s", id), `UPDATE visitors SET name = $1, email = $2 WHERE id = $3`, name, email, id)
	} else {
		t.queue(writeOrder{}, wrapped("update visitor %s", id), `UPDATE visitors SET name = $1, email = $2, fields = $3 WHERE id = $4`, name, email, fieldsJSON(fields), id)
	}
	return nil
}

func (t *postgresTx) AssignedConversations(ctx context.Context, agentID string) ([]string, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, `SELECT id FROM conversations WHERE assignee_id = $1 AND routing = $2 AND status <> $3 ORDER BY id`,
		agentID, RoutingAssigned, StatusResolved)
	out, err := collectPgRows(rows, err, scanID)
	if err != nil {
		return nil, fmt.Errorf("conversations of agent %s: %w", agentID, err)
	}
	return out, nil
}

func (t *postgresTx) SetAgentStatus(ctx context.Context, agentID, status string, at time.Time) (string, error) {
	if err := t.ready(ctx); err != nil {
		return "", err
	}
	var prev string
	err := t.tx.QueryRow(ctx, `SELECT status FROM agent_status WHERE agent_id = $1 FOR UPDATE`, agentID).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("read status of agent %s: %w", agentID, err)
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO agent_status (agent_id, status, changed_at) VALUES ($1, $2, $3)
		ON CONFLICT (agent_id) DO UPDATE SET status = excluded.status, changed_at = excluded.changed_at`, agentID, status, at.UnixMilli()); err != nil {
		return "", fmt.Errorf("record status of agent %s: %w", agentID, err)
	}
	return prev, nil
}

func (t *postgresTx) ExpiredConversations(ctx context.Context, siteID string, cutoff time.Time, limit int) ([]ExpiredConversation, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, `SELECT id, visitor_id FROM conversations
		WHERE site_id = $1 AND `+resolvedOnly+` AND list_at < $2 ORDER BY list_at LIMIT $3`, siteID, cutoff.UnixMilli(), limit)
	out, err := collectPgRows(rows, err, func(r rowScanner) (ExpiredConversation, error) {
		var x ExpiredConversation
		err := r.Scan(&x.ID, &x.VisitorID)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("find expired conversations: %w", err)
	}
	return out, nil
}

func (t *postgresTx) DeleteConversation(ctx context.Context, id string) ([]string, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, `DELETE FROM attachments WHERE conversation_id = $1 RETURNING id`, id)
	files, err := collectPgRows(rows, err, func(r rowScanner) (string, error) {
		var a string
		err := r.Scan(&a)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("delete attachments of %s: %w", id, err)
	}
	for _, q := range []string{`DELETE FROM messages WHERE conversation_id = $1`, `DELETE FROM conversations WHERE id = $1`} {
		if _, err := t.tx.Exec(ctx, q, id); err != nil {
			return nil, fmt.Errorf("delete conversation %s: %w", id, err)
		}
	}
	return files, nil
}

func (t *postgresTx) Commit(ctx context.Context) error {
	if t.tx == nil && t.writes.Len() == 0 && len(t.outbox) == 0 && t.failed == nil {
		t.release()
		return nil // nothing was read or written
	}
	// COMMIT rides with the last writes (and BEGIN too when nothing was
	// read): a round trip less per batch. (On loopback that did not show
	// in the benchmarks; across a network it is a latency per commit.)
	commit := &pgx.QueuedQuery{SQL: "commit"}
	commit.Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		if tag.String() == "ROLLBACK" {
			return fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
		}
		return nil
	}
	if err := t.flush(ctx, commit); err != nil {
		t.Rollback(ctx)
		return err
	}
	t.tx = nil // committed: the connection is idle again
	t.release()
	return nil
}

func (t *postgresTx) Rollback(ctx context.Context) {
	defer t.release()
	t.writes, t.outbox = pgx.Batch{}, nil
	if t.tx != nil {
		_ = t.tx.Rollback(ctx)
	}
}

// CopyFromSQLite lists how `parley migrate` moves chat.db's tables into
// this schema (run after OpenPostgres migrated it). Times are Unix
// milliseconds on both sides; SQLite's 0/1 flags become booleans.
func CopyFromSQLite() []sqlstore.TableCopy {
	flags := func(cols ...int) func([]any) ([]any, error) {
		return func(r []any) ([]any, error) {
			for _, c := range cols {
				r[c] = sqlstore.IntBool(r[c])
			}
			return r, nil
		}
	}
	split := func(cols string) []string {
		out := strings.Split(cols, ",")
		for i := range out {
			out[i] = strings.TrimSpace(out[i])
		}
		return out
	}
	return []sqlstore.TableCopy{
		{Table: "sites", Columns: split(siteColumns), Key: []string{"id"}, Convert: flags(5)},
		{Table: "visitors", Columns: split(visitorColumns), Key: []string{"id"}, Convert: flags(3)},
		{Table: "conversations", Columns: split(convColumns), Key: []string{"id"}, Convert: withListAt(split(convColumns), flags(18)),
			Derived: []string{"list_at"}},
		{Table: "messages", Columns: split(messageColumns), Key: []string{"id"}},
		{Table: "attachments", Columns: split(attachmentColumns), Key: []string{"id"}},
		{Table: "canned_replies", Columns: []string{"id", "site_id", "shortcut", "text"}, Key: []string{"id"}},
		{Table: "bans", Columns: []string{"site_id", "visitor_id", "until_ms", "reason"}, Key: []string{"site_id", "visitor_id"}},
		{Table: "outbox", Columns: []string{"id", "event_id", "topic", "msg_key", "value", "created_at", "sent_at"}, Key: []string{"id"}, Serial: "id"},
		{Table: "signing_keys", Columns: []string{"name", "key"}, Key: []string{"name"}},
		{Table: "ip_bans", Columns: []string{"site_id", "ip", "until_ms", "reason"}, Key: []string{"site_id", "ip"}},
	}
}

// listAtOf is a conversation's list_at (see migration 3): its updated_at
// when resolved, else 0. pgConversationUpdate keeps the same rule in SQL.
func listAtOf(status string, updatedAt int64) int64 {
	if status == StatusResolved {
		return updatedAt
	}
	return 0
}

// withListAt appends a copied conversation row's list_at, which SQLite
// does not keep.
func withListAt(cols []string, convert func([]any) ([]any, error)) func([]any) ([]any, error) {
	status, updated := slices.Index(cols, "status"), slices.Index(cols, "updated_at")
	return func(r []any) ([]any, error) {
		r, err := convert(r)
		if err != nil {
			return nil, err
		}
		st, _ := r[status].(string) // SQLite's TEXT and INTEGER read as string and int64
		at, _ := r[updated].(int64)
		return append(r, listAtOf(st, at)), nil
	}
}

func (s *postgresChat) SetWebhookSecret(ctx context.Context, id, secret string) error {
	tag, err := s.db.Exec(ctx, `UPDATE sites SET webhook_secret = $1 WHERE id = $2`, secret, id)
	if err != nil {
		return fmt.Errorf("rotate webhook secret of site %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *postgresChat) AttachmentBytes(ctx context.Context, uploaderID, siteID string) (int64, int64, error) {
	var mine, site int64
	if err := s.db.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0)::BIGINT FROM attachments WHERE uploader_id = $1`, uploaderID).Scan(&mine); err != nil {
		return 0, 0, fmt.Errorf("attachment bytes of %s: %w", uploaderID, err)
	}
	if siteID != "" {
		if err := s.db.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0)::BIGINT FROM attachments WHERE site_id = $1`, siteID).Scan(&site); err != nil {
			return 0, 0, fmt.Errorf("attachment bytes of site %s: %w", siteID, err)
		}
	}
	return mine, site, nil
}

func (s *postgresChat) DeleteUnboundAttachments(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, `DELETE FROM attachments WHERE id IN (
		SELECT id FROM attachments WHERE conversation_id = '' AND created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id`,
		before.UnixMilli(), limit)
	ids, err := collectPgRows(rows, err, func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return nil, fmt.Errorf("delete unbound attachments: %w", err)
	}
	return ids, nil
}

func (s *postgresChat) PutIPBan(ctx context.Context, b IPBanRecord) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO ip_bans (site_id, ip, until_ms, reason) VALUES ($1, $2, $3, $4)
		ON CONFLICT (site_id, ip) DO UPDATE SET until_ms = GREATEST(ip_bans.until_ms, excluded.until_ms), reason = excluded.reason`,
		b.SiteID, b.IP, b.Until.UnixMilli(), b.Reason); err != nil {
		return fmt.Errorf("store address ban: %w", err)
	}
	return nil
}

func (s *postgresChat) IPBan(ctx context.Context, siteID, ip string, now time.Time) (IPBanRecord, bool, error) {
	b := IPBanRecord{SiteID: siteID, IP: ip}
	var until int64
	err := s.db.QueryRow(ctx, `SELECT until_ms, reason FROM ip_bans WHERE site_id = $1 AND ip = $2 AND until_ms > $3`,
		siteID, ip, now.UnixMilli()).Scan(&until, &b.Reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return IPBanRecord{}, false, nil
	}
	if err != nil {
		return IPBanRecord{}, false, fmt.Errorf("read address ban: %w", err)
	}
	b.Until = time.UnixMilli(until)
	return b, true, nil
}

func (s *postgresChat) DeleteIPBans(ctx context.Context, siteID, ip string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM ip_bans WHERE site_id = $1 AND ip = $2`, siteID, ip); err != nil {
		return fmt.Errorf("lift address ban: %w", err)
	}
	return nil
}
