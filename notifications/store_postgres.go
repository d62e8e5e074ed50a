package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley/sqlstore"
)

// PostgresSchema is the PostgreSQL schema notifications keeps its tables in.
const PostgresSchema = "notifications"

// postgresMigrations is the notifications schema's history; append steps, never edit applied ones.
var postgresMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE notify_conversations (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'open',
	visitor_read_seq BIGINT NOT NULL DEFAULT 0,
	last_reply_seq BIGINT NOT NULL DEFAULT 0,
	emailed_seq BIGINT NOT NULL DEFAULT 0,
	reply_due_at TIMESTAMPTZ,
	lease_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
	waiting_since TIMESTAMPTZ,
	assignee TEXT NOT NULL DEFAULT '',
	last_visitor_at TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
	last_agent_at TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX notify_conversations_due ON notify_conversations(reply_due_at) WHERE reply_due_at IS NOT NULL;
CREATE INDEX notify_conversations_waiting ON notify_conversations(status, assignee);
CREATE TABLE notify_jobs (
	key TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	to_addr TEXT NOT NULL,
	due_at TIMESTAMPTZ NOT NULL,
	lease_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch'
);
CREATE TABLE notify_agents (
	id TEXT PRIMARY KEY,
	status TEXT NOT NULL,
	since TIMESTAMPTZ NOT NULL,
	last_digest_at TIMESTAMPTZ,
	next_digest_at TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
	lease_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch'
);
CREATE TABLE notify_preferences (
	user_id TEXT PRIMARY KEY,
	prefs JSONB NOT NULL,
	digest_after INTEGER NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE notify_mail (
	id TEXT PRIMARY KEY,
	dedupe_key TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	to_addr TEXT NOT NULL,
	message BYTEA NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at TIMESTAMPTZ NOT NULL,
	lease_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
	last_error TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	sent_at TIMESTAMPTZ
);
CREATE INDEX notify_mail_due ON notify_mail(status, next_at);
CREATE TABLE notify_unsubscribes (
	site_id TEXT NOT NULL,
	email TEXT NOT NULL,
	at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (site_id, email)
);
CREATE TABLE notify_keys (
	name TEXT PRIMARY KEY,
	key BYTEA NOT NULL
);`},
}

// postgresStore keeps notifications' state in PostgreSQL, schema
// "notifications", shared by every chat node: leases keep two nodes off
// one reply, job, digest or mail.
type postgresStore struct{ db *pgxpool.Pool }

// OpenPostgres migrates the schema on pool (opened with search_path
// "notifications") and returns the store.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool) (Store, error) {
	if err := sqlstore.MigratePostgres(ctx, pool, PostgresSchema, postgresMigrations); err != nil {
		return nil, err
	}
	return &postgresStore{db: pool}, nil
}

func (s *postgresStore) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// pgChangeSet is what a change kind sets on its conversation's row, in
// terms of the row (n) and the change (u: id, at, seq, due, agent).
var pgChangeSet = map[string]string{
	ChangeReply: `last_reply_seq = GREATEST(n.last_reply_seq, u.seq), last_agent_at = GREATEST(n.last_agent_at, u.at),
		reply_due_at = CASE WHEN n.reply_due_at IS NULL AND u.seq > n.emailed_seq AND u.seq > n.visitor_read_seq THEN u.due ELSE n.reply_due_at END, updated_at = u.at`,
	ChangeVisitor: `last_visitor_at = GREATEST(n.last_visitor_at, u.at), updated_at = u.at`,
	ChangeRead: `visitor_read_seq = GREATEST(n.visitor_read_seq, u.seq),
		reply_due_at = CASE WHEN GREATEST(n.visitor_read_seq, u.seq) >= n.last_reply_seq THEN NULL ELSE n.reply_due_at END, updated_at = u.at`,
	ChangeQueued:   `status = 'open', assignee = '', waiting_since = COALESCE(n.waiting_since, u.at), updated_at = u.at`,
	ChangeAssigned: `assignee = u.agent, waiting_since = NULL, updated_at = u.at`,
	ChangeResolved: `status = 'resolved', waiting_since = NULL, updated_at = u.at`,
	ChangeReopened: `status = 'open', updated_at = u.at`,
	ChangeStarted:  `updated_at = u.at`,
}

// queueChanges queues the conversation changes as a few statements: the
// k-th change of every conversation makes round k, and each round runs one
// UPDATE per kind over all its conversations (each once in a round, so
// every row is updated by one source row). A conversation's changes keep
// their order; different conversations' rows do not depend on each other.
// A statement per change was one per chat event.
func queueChanges(b *pgx.Batch, changes []Change) error {
	type column struct {
		ids, agents []string
		ats, dues   []time.Time
		seqs        []int64
	}
	var rounds []map[string]*column
	round := map[string]int{}
	for _, c := range changes {
		if _, ok := pgChangeSet[c.Kind]; !ok {
			return fmt.Errorf("apply: unknown change %q", c.Kind)
		}
		k := round[c.ConversationID]
		round[c.ConversationID] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, map[string]*column{})
		}
		col := rounds[k][c.Kind]
		if col == nil {
			col = &column{}
			rounds[k][c.Kind] = col
		}
		col.ids, col.agents = append(col.ids, c.ConversationID), append(col.agents, c.AgentID)
		col.ats, col.dues, col.seqs = append(col.ats, c.At), append(col.dues, c.Due), append(col.seqs, c.Seq)
	}
	for _, kinds := range rounds {
		for _, kind := range slices.Sorted(maps.Keys(kinds)) {
			col := kinds[kind]
			b.Queue(`UPDATE notify_conversations AS n SET `+pgChangeSet[kind]+`
				FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::timestamptz[], $5::text[]) AS u(id, at, seq, due, agent)
				WHERE n.id = u.id`, col.ids, col.ats, col.seqs, col.dues, col.agents)
		}
	}
	return nil
}

func (s *postgresStore) Apply(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	// The conversations' rows first, one statement for the batch: one per
	// change was a statement per chat event.
	ids, sites, ats := newConversations(changes)
	if len(ids) > 0 {
		b.Queue(`INSERT INTO notify_conversations (id, site_id, updated_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ON CONFLICT (id) DO NOTHING`, ids, sites, ats)
	}
	var conversations []Change
	for _, c := range changes {
		if c.Kind != ChangePresence {
			conversations = append(conversations, c)
			continue
		}
		b.Queue(`INSERT INTO notify_agents (id, status, since) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, next_digest_at = 'epoch',
			since = CASE WHEN (notify_agents.status = 'online') = (excluded.status = 'online') THEN notify_agents.since ELSE excluded.since END
			WHERE notify_agents.status != excluded.status`, c.AgentID, c.Status, c.At)
	}
	if err := queueChanges(b, conversations); err != nil {
		return err
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("apply changes: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply changes: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("apply changes: commit: %w", err)
	}
	return nil
}

func (s *postgresStore) ClaimDueReplies(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ReplyDue, error) {
	rows, err := s.db.Query(ctx, `UPDATE notify_conversations SET lease_until = $1 WHERE id IN (
		SELECT id FROM notify_conversations WHERE reply_due_at <= $2 AND lease_until <= $2 ORDER BY reply_due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING id, site_id, visitor_read_seq, emailed_seq, last_reply_seq`, now.Add(lease), now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim due replies: %w", err)
	}
	defer rows.Close()
	var out []ReplyDue
	for rows.Next() {
		var r ReplyDue
		if err := rows.Scan(&r.ConversationID, &r.SiteID, &r.VisitorReadSeq, &r.EmailedSeq, &r.LastReplySeq); err != nil {
			return nil, fmt.Errorf("claim due replies: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func insertPgMail(ctx context.Context, tx pgx.Tx, m *Mail) error {
	if m == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO notify_mail (id, dedupe_key, kind, to_addr, message, status, next_at, created_at)
		VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT (dedupe_key) DO NOTHING`, m.ID, m.Key, m.Kind, m.To, m.Message, m.NextAt, m.Created)
	if err != nil {
		return fmt.Errorf("queue mail %s: %w", m.Key, err)
	}
	return nil
}

func (s *postgresStore) inTx(ctx context.Context, what string, f func(tx pgx.Tx) error) error {
	return sqlstore.InPgTx(ctx, s.db, what, f)
}

func (s *postgresStore) FinishReply(ctx context.Context, convID string, seq int64, nextDue time.Time, mail *Mail) error {
	return s.inTx(ctx, "finish reply of "+convID, func(tx pgx.Tx) error {
		if err := insertPgMail(ctx, tx, mail); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE notify_conversations SET emailed_seq = GREATEST(emailed_seq, $1), lease_until = 'epoch',
			reply_due_at = CASE WHEN last_reply_seq <= GREATEST(emailed_seq, $1) OR visitor_read_seq >= last_reply_seq THEN NULL ELSE $2::timestamptz END WHERE id = $3`,
			seq, nextDue, convID)
		if err != nil {
			return fmt.Errorf("finish reply of %s: %w", convID, err)
		}
		return nil
	})
}

func (s *postgresStore) AddJob(ctx context.Context, j Job) error {
	_, err := s.db.Exec(ctx, `INSERT INTO notify_jobs (key, kind, conversation_id, to_addr, due_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING`,
		j.Key, j.Kind, j.ConversationID, j.To, j.DueAt)
	if err != nil {
		return fmt.Errorf("add job %s: %w", j.Key, err)
	}
	return nil
}

func (s *postgresStore) ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Job, error) {
	rows, err := s.db.Query(ctx, `UPDATE notify_jobs SET lease_until = $1 WHERE key IN (
		SELECT key FROM notify_jobs WHERE due_at <= $2 AND lease_until <= $2 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING key, kind, conversation_id, to_addr, due_at`, now.Add(lease), now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		if err := rows.Scan(&j.Key, &j.Kind, &j.ConversationID, &j.To, &j.DueAt); err != nil {
			return nil, fmt.Errorf("claim jobs: %w", err)
		}
		j.DueAt = j.DueAt.UTC()
		out = append(out, j)
	}
	return out, rows.Err()
}

func (s *postgresStore) FinishJob(ctx context.Context, key string, mail *Mail) error {
	return s.inTx(ctx, "finish job "+key, func(tx pgx.Tx) error {
		if err := insertPgMail(ctx, tx, mail); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM notify_jobs WHERE key = $1`, key); err != nil {
			return fmt.Errorf("finish job %s: %w", key, err)
		}
		return nil
	})
}

func (s *postgresStore) ClaimDigests(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]DigestDue, error) {
	rows, err := s.db.Query(ctx, `UPDATE notify_agents SET lease_until = $1 WHERE id IN (
		SELECT a.id FROM notify_agents a JOIN notify_preferences p ON p.user_id = a.id
		WHERE a.status != 'online' AND p.digest_after > 0 AND a.since + make_interval(mins => p.digest_after) <= $2
		AND a.next_digest_at <= $2 AND a.lease_until <= $2 LIMIT $3 FOR UPDATE OF a SKIP LOCKED)
		RETURNING id, since, last_digest_at`, now.Add(lease), now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim digests: %w", err)
	}
	defer rows.Close()
	var out []DigestDue
	for rows.Next() {
		var d DigestDue
		var last *time.Time
		if err := rows.Scan(&d.AgentID, &d.AwaySince, &last); err != nil {
			return nil, fmt.Errorf("claim digests: %w", err)
		}
		d.AwaySince = d.AwaySince.UTC()
		if last != nil {
			d.LastDigestAt = last.UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *postgresStore) Waiting(ctx context.Context, agentID string, limit int) ([]Waiting, error) {
	rows, err := s.db.Query(ctx, `SELECT id, site_id, waiting_since, false FROM notify_conversations WHERE status = 'open' AND assignee = '' AND waiting_since IS NOT NULL
		UNION ALL
		SELECT id, site_id, last_visitor_at, true FROM notify_conversations WHERE status = 'open' AND assignee = $1 AND last_visitor_at > last_agent_at
		ORDER BY 3 LIMIT $2`, agentID, limit)
	if err != nil {
		return nil, fmt.Errorf("waiting conversations for %s: %w", agentID, err)
	}
	defer rows.Close()
	var out []Waiting
	for rows.Next() {
		var w Waiting
		if err := rows.Scan(&w.ConversationID, &w.SiteID, &w.Since, &w.Mine); err != nil {
			return nil, fmt.Errorf("waiting conversations for %s: %w", agentID, err)
		}
		w.Since = w.Since.UTC()
		out = append(out, w)
	}
	return out, rows.Err()
}

func (s *postgresStore) FinishDigest(ctx context.Context, agentID string, at, next time.Time, mail *Mail) error {
	return s.inTx(ctx, "finish digest of "+agentID, func(tx pgx.Tx) error {
		if err := insertPgMail(ctx, tx, mail); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE notify_agents SET last_digest_at = CASE WHEN $4 THEN $1 ELSE last_digest_at END, next_digest_at = $2, lease_until = 'epoch' WHERE id = $3`,
			at, next, agentID, mail != nil); err != nil {
			return fmt.Errorf("finish digest of %s: %w", agentID, err)
		}
		return nil
	})
}

const pgMailColumns = `id, dedupe_key, kind, to_addr, message, status, attempts, next_at, last_error, created_at, sent_at`

func (s *postgresStore) queryMail(ctx context.Context, what, q string, args ...any) ([]Mail, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Mail
	for rows.Next() {
		var m Mail
		var sent *time.Time
		if err := rows.Scan(&m.ID, &m.Key, &m.Kind, &m.To, &m.Message, &m.Status, &m.Tries, &m.NextAt, &m.Error, &m.Created, &sent); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		m.NextAt, m.Created = m.NextAt.UTC(), m.Created.UTC()
		if sent != nil {
			m.SentAt = sent.UTC()
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *postgresStore) ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Mail, error) {
	return s.queryMail(ctx, "claim mail", `UPDATE notify_mail SET lease_until = $1 WHERE id IN (
		SELECT id FROM notify_mail WHERE status = 'pending' AND next_at <= $2 AND lease_until <= $2 ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING `+pgMailColumns, now.Add(lease), now, limit)
}

func (s *postgresStore) MailSent(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE notify_mail SET status = 'sent', sent_at = $1, attempts = attempts + 1, lease_until = 'epoch', last_error = '' WHERE id = $2`, at, id); err != nil {
		return fmt.Errorf("mark mail %s sent: %w", id, err)
	}
	return nil
}

func (s *postgresStore) MailFailed(ctx context.Context, id string, _ time.Time, errText string, next time.Time, giveUp bool) error {
	status := MailPending
	if giveUp {
		status = MailFailed
	}
	if _, err := s.db.Exec(ctx, `UPDATE notify_mail SET status = $1, attempts = attempts + 1, last_error = $2, next_at = $3, lease_until = 'epoch' WHERE id = $4`,
		status, errText, next, id); err != nil {
		return fmt.Errorf("record failure of mail %s: %w", id, err)
	}
	return nil
}

func (s *postgresStore) Mails(ctx context.Context, status string, limit int) ([]Mail, error) {
	return s.queryMail(ctx, "list mail", `SELECT `+pgMailColumns+` FROM notify_mail WHERE $1 = '' OR status = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, status, limit)
}

func (s *postgresStore) Unsubscribe(ctx context.Context, siteID, email string, at time.Time) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO notify_unsubscribes (site_id, email, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, siteID, email, at); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	return nil
}

func (s *postgresStore) Unsubscribed(ctx context.Context, siteID, email string) (bool, error) {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM notify_unsubscribes WHERE site_id = $1 AND email = $2`, siteID, email).Scan(&n); err != nil {
		return false, fmt.Errorf("read unsubscribes: %w", err)
	}
	return n > 0, nil
}

func (s *postgresStore) Preferences(ctx context.Context, userID string) (Preferences, bool, error) {
	var raw []byte
	err := s.db.QueryRow(ctx, `SELECT prefs FROM notify_preferences WHERE user_id = $1`, userID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return DefaultPreferences, false, nil
	}
	if err != nil {
		return Preferences{}, false, fmt.Errorf("read preferences of %s: %w", userID, err)
	}
	p := DefaultPreferences
	if err := json.Unmarshal(raw, &p); err != nil {
		return Preferences{}, false, fmt.Errorf("read preferences of %s: %w", userID, err)
	}
	return p, true, nil
}

func (s *postgresStore) SetPreferences(ctx context.Context, userID string, p Preferences, at time.Time) error {
	raw, _ := json.Marshal(p)
	if _, err := s.db.Exec(ctx, `INSERT INTO notify_preferences (user_id, prefs, digest_after, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET prefs = excluded.prefs, digest_after = excluded.digest_after, updated_at = excluded.updated_at`,
		userID, raw, p.DigestAfterMinutes, at); err != nil {
		return fmt.Errorf("save preferences of %s: %w", userID, err)
	}
	return nil
}

func (s *postgresStore) SigningKey(ctx context.Context, candidate []byte) ([]byte, error) {
	var key []byte
	err := s.db.QueryRow(ctx, `WITH ins AS (INSERT INTO notify_keys (name, key) VALUES ('tokens', $1) ON CONFLICT DO NOTHING RETURNING key)
		SELECT key FROM ins UNION ALL SELECT key FROM notify_keys WHERE name = 'tokens' LIMIT 1`, candidate).Scan(&key)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return key, nil
}

// CopyFromSQLite lists how `parley migrate` moves notifications.db's
// tables into this schema (run after OpenPostgres migrated it).
func CopyFromSQLite() []sqlstore.TableCopy {
	optional := func(r []any, idx ...int) {
		for _, i := range idx {
			r[i] = sqlstore.MillisTime(r[i], true)
		}
	}
	required := func(r []any, idx ...int) {
		for _, i := range idx {
			r[i] = sqlstore.MillisTime(r[i], false)
		}
	}
	return []sqlstore.TableCopy{
		{Table: "notify_conversations", Columns: []string{"id", "site_id", "status", "visitor_read_seq", "last_reply_seq", "emailed_seq", "reply_due_at",
			"waiting_since", "assignee", "last_visitor_at", "last_agent_at", "updated_at"}, Key: []string{"id"},
			Convert: func(r []any) ([]any, error) { optional(r, 6, 7); required(r, 9, 10, 11); return r, nil }},
		{Table: "notify_jobs", Columns: []string{"key", "kind", "conversation_id", "to_addr", "due_at"}, Key: []string{"key"},
			Convert: func(r []any) ([]any, error) { required(r, 4); return r, nil }},
		{Table: "notify_agents", Columns: []string{"id", "status", "since", "last_digest_at", "next_digest_at"}, Key: []string{"id"},
			Convert: func(r []any) ([]any, error) { required(r, 2, 4); optional(r, 3); return r, nil }},
		{Table: "notify_preferences", Columns: []string{"user_id", "prefs", "digest_after", "updated_at"}, Key: []string{"user_id"},
			Convert: func(r []any) ([]any, error) { required(r, 3); return r, nil }},
		{Table: "notify_mail", Columns: []string{"id", "dedupe_key", "kind", "to_addr", "message", "status", "attempts", "next_at", "last_error", "created_at", "sent_at"}, Key: []string{"id"},
			Convert: func(r []any) ([]any, error) {
				if s, ok := r[4].(string); ok {
					r[4] = []byte(s)
				}
				required(r, 7, 9)
				optional(r, 10)
				return r, nil
			}},
		{Table: "notify_unsubscribes", Columns: []string{"site_id", "email", "at"}, Key: []string{"site_id", "email"},
			Convert: func(r []any) ([]any, error) { required(r, 2); return r, nil }},
		{Table: "notify_keys", Columns: []string{"name", "key"}, Key: []string{"name"}},
	}
}
