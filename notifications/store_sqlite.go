package notifications

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parleychat/parley/sqlstore"
)

// sqliteMigrations is notifications.db's schema; append steps, never edit applied ones.
var sqliteMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE notify_conversations (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'open',
	visitor_read_seq INTEGER NOT NULL DEFAULT 0,
	last_reply_seq INTEGER NOT NULL DEFAULT 0,
	emailed_seq INTEGER NOT NULL DEFAULT 0,
	reply_due_at INTEGER NOT NULL DEFAULT 0,
	lease_until INTEGER NOT NULL DEFAULT 0,
	waiting_since INTEGER NOT NULL DEFAULT 0,
	assignee TEXT NOT NULL DEFAULT '',
	last_visitor_at INTEGER NOT NULL DEFAULT 0,
	last_agent_at INTEGER NOT NULL DEFAULT 0,
	updated_at INTEGER NOT NULL
);
CREATE INDEX notify_conversations_due ON notify_conversations(reply_due_at) WHERE reply_due_at > 0;
CREATE INDEX notify_conversations_waiting ON notify_conversations(status, assignee);
CREATE TABLE notify_jobs (
	key TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	to_addr TEXT NOT NULL,
	due_at INTEGER NOT NULL,
	lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE notify_agents (
	id TEXT PRIMARY KEY,
	status TEXT NOT NULL,
	since INTEGER NOT NULL,
	last_digest_at INTEGER NOT NULL DEFAULT 0,
	next_digest_at INTEGER NOT NULL DEFAULT 0,
	lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE notify_preferences (
	user_id TEXT PRIMARY KEY,
	prefs TEXT NOT NULL,
	digest_after INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE notify_mail (
	id TEXT PRIMARY KEY,
	dedupe_key TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	to_addr TEXT NOT NULL,
	message BLOB NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at INTEGER NOT NULL,
	lease_until INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	sent_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notify_mail_due ON notify_mail(status, next_at);
CREATE TABLE notify_unsubscribes (
	site_id TEXT NOT NULL,
	email TEXT NOT NULL,
	at INTEGER NOT NULL,
	PRIMARY KEY (site_id, email)
);
CREATE TABLE notify_keys (
	name TEXT PRIMARY KEY,
	key BLOB NOT NULL
);`},
}

// sqliteStore keeps notifications' state in an SQLite file (notifications.db).
type sqliteStore struct{ db *sql.DB }

// OpenSQLite migrates the tables on db and returns the store.
func OpenSQLite(ctx context.Context, db *sql.DB) (Store, error) {
	if err := sqlstore.Migrate(ctx, db, "notifications", sqliteMigrations); err != nil {
		return nil, err
	}
	return &sqliteStore{db: db}, nil
}

func (s *sqliteStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// sqliteChanges is the statement each change kind runs, after the
// conversation row exists. Arguments: at, seq, agent, due, id.
var sqliteChanges = map[string]string{
	ChangeReply: `UPDATE notify_conversations SET last_reply_seq = max(last_reply_seq, ?2), last_agent_at = max(last_agent_at, ?1),
		reply_due_at = CASE WHEN reply_due_at = 0 AND ?2 > emailed_seq AND ?2 > visitor_read_seq THEN ?4 ELSE reply_due_at END, updated_at = ?1 WHERE id = ?5`,
	ChangeVisitor: `UPDATE notify_conversations SET last_visitor_at = max(last_visitor_at, ?1), updated_at = ?1 WHERE id = ?5`,
	ChangeRead: `UPDATE notify_conversations SET visitor_read_seq = max(visitor_read_seq, ?2),
		reply_due_at = CASE WHEN max(visitor_read_seq, ?2) >= last_reply_seq THEN 0 ELSE reply_due_at END, updated_at = ?1 WHERE id = ?5`,
	ChangeQueued: `UPDATE notify_conversations SET status = 'open', assignee = '',
		waiting_since = CASE WHEN waiting_since = 0 THEN ?1 ELSE waiting_since END, updated_at = ?1 WHERE id = ?5`,
	ChangeAssigned: `UPDATE notify_conversations SET assignee = ?3, waiting_since = 0, updated_at = ?1 WHERE id = ?5`,
	ChangeResolved: `UPDATE notify_conversations SET status = 'resolved', waiting_since = 0, updated_at = ?1 WHERE id = ?5`,
	ChangeReopened: `UPDATE notify_conversations SET status = 'open', updated_at = ?1 WHERE id = ?5`,
	ChangeStarted:  `UPDATE notify_conversations SET updated_at = ?1 WHERE id = ?5`,
}

func (s *sqliteStore) Apply(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply changes: %w", err)
	}
	defer tx.Rollback()
	ids, sites, ats := newConversations(changes)
	for i, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notify_conversations (id, site_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			id, sites[i], sqlstore.Millis(ats[i])); err != nil {
			return fmt.Errorf("apply changes: conversation %s: %w", id, err)
		}
	}
	for _, c := range changes {
		if c.Kind == ChangePresence {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notify_agents (id, status, since) VALUES (?1, ?2, ?3)
				ON CONFLICT (id) DO UPDATE SET status = excluded.status, next_digest_at = 0,
				since = CASE WHEN (notify_agents.status = 'online') = (excluded.status = 'online') THEN notify_agents.since ELSE excluded.since END
				WHERE notify_agents.status != excluded.status`, c.AgentID, c.Status, sqlstore.Millis(c.At)); err != nil {
				return fmt.Errorf("apply presence of %s: %w", c.AgentID, err)
			}
			continue
		}
		q, ok := sqliteChanges[c.Kind]
		if !ok {
			return fmt.Errorf("apply: unknown change %q", c.Kind)
		}
		if _, err := tx.ExecContext(ctx, q, sqlstore.Millis(c.At), c.Seq, c.AgentID, sqlstore.Millis(c.Due), c.ConversationID); err != nil {
			return fmt.Errorf("apply %s to %s: %w", c.Kind, c.ConversationID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply changes: commit: %w", err)
	}
	return nil
}

func (s *sqliteStore) ClaimDueReplies(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ReplyDue, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE notify_conversations SET lease_until = ?1 WHERE id IN (
		SELECT id FROM notify_conversations WHERE reply_due_at > 0 AND reply_due_at <= ?2 AND lease_until <= ?2 ORDER BY reply_due_at LIMIT ?3)
		RETURNING id, site_id, visitor_read_seq, emailed_seq, last_reply_seq`, sqlstore.Millis(now.Add(lease)), sqlstore.Millis(now), limit)
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

func insertSQLiteMail(ctx context.Context, tx *sql.Tx, m *Mail) error {
	if m == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO notify_mail (id, dedupe_key, kind, to_addr, message, status, next_at, created_at)
		VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`, m.ID, m.Key, m.Kind, m.To, m.Message, sqlstore.Millis(m.NextAt), sqlstore.Millis(m.Created))
	if err != nil {
		return fmt.Errorf("queue mail %s: %w", m.Key, err)
	}
	return nil
}

// inTx runs f in a transaction and commits it.
func (s *sqliteStore) inTx(ctx context.Context, what string, f func(tx *sql.Tx) error) error {
	return sqlstore.InTx(ctx, s.db, what, f)
}

func (s *sqliteStore) FinishReply(ctx context.Context, convID string, seq int64, nextDue time.Time, mail *Mail) error {
	return s.inTx(ctx, "finish reply of "+convID, func(tx *sql.Tx) error {
		if err := insertSQLiteMail(ctx, tx, mail); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE notify_conversations SET emailed_seq = max(emailed_seq, ?1), lease_until = 0,
			reply_due_at = CASE WHEN last_reply_seq <= max(emailed_seq, ?1) OR visitor_read_seq >= last_reply_seq THEN 0 ELSE ?2 END WHERE id = ?3`,
			seq, sqlstore.Millis(nextDue), convID)
		if err != nil {
			return fmt.Errorf("finish reply of %s: %w", convID, err)
		}
		return nil
	})
}

func (s *sqliteStore) AddJob(ctx context.Context, j Job) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notify_jobs (key, kind, conversation_id, to_addr, due_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		j.Key, j.Kind, j.ConversationID, j.To, sqlstore.Millis(j.DueAt))
	if err != nil {
		return fmt.Errorf("add job %s: %w", j.Key, err)
	}
	return nil
}

func (s *sqliteStore) ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Job, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE notify_jobs SET lease_until = ?1 WHERE key IN (
		SELECT key FROM notify_jobs WHERE due_at <= ?2 AND lease_until <= ?2 ORDER BY due_at LIMIT ?3)
		RETURNING key, kind, conversation_id, to_addr, due_at`, sqlstore.Millis(now.Add(lease)), sqlstore.Millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var due int64
		if err := rows.Scan(&j.Key, &j.Kind, &j.ConversationID, &j.To, &due); err != nil {
			return nil, fmt.Errorf("claim jobs: %w", err)
		}
		j.DueAt = sqlstore.TimeFromMillis(due)
		out = append(out, j)
	}
	return out, rows.Err()
}

func (s *sqliteStore) FinishJob(ctx context.Context, key string, mail *Mail) error {
	return s.inTx(ctx, "finish job "+key, func(tx *sql.Tx) error {
		if err := insertSQLiteMail(ctx, tx, mail); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM notify_jobs WHERE key = ?`, key); err != nil {
			return fmt.Errorf("finish job %s: %w", key, err)
		}
		return nil
	})
}

func (s *sqliteStore) ClaimDigests(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]DigestDue, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE notify_agents SET lease_until = ?1 WHERE id IN (
		SELECT a.id FROM notify_agents a JOIN notify_preferences p ON p.user_id = a.id
		WHERE a.status != 'online' AND p.digest_after > 0 AND a.since + p.digest_after * 60000 <= ?2
		AND a.next_digest_at <= ?2 AND a.lease_until <= ?2 LIMIT ?3)
		RETURNING id, since, last_digest_at`, sqlstore.Millis(now.Add(lease)), sqlstore.Millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim digests: %w", err)
	}
	defer rows.Close()
	var out []DigestDue
	for rows.Next() {
		var d DigestDue
		var since, last int64
		if err := rows.Scan(&d.AgentID, &since, &last); err != nil {
			return nil, fmt.Errorf("claim digests: %w", err)
		}
		d.AwaySince, d.LastDigestAt = sqlstore.TimeFromMillis(since), sqlstore.TimeFromMillis(last)
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *sqliteStore) Waiting(ctx context.Context, agentID string, limit int) ([]Waiting, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, site_id, waiting_since, 0 FROM notify_conversations WHERE status = 'open' AND assignee = '' AND waiting_since > 0
		UNION ALL
		SELECT id, site_id, last_visitor_at, 1 FROM notify_conversations WHERE status = 'open' AND assignee = ?1 AND last_visitor_at > last_agent_at
		ORDER BY 3 LIMIT ?2`, agentID, limit)
	if err != nil {
		return nil, fmt.Errorf("waiting conversations for %s: %w", agentID, err)
	}
	defer rows.Close()
	var out []Waiting
	for rows.Next() {
		var w Waiting
		var since int64
		if err := rows.Scan(&w.ConversationID, &w.SiteID, &since, &w.Mine); err != nil {
			return nil, fmt.Errorf("waiting conversations for %s: %w", agentID, err)
		}
		w.Since = sqlstore.TimeFromMillis(since)
		out = append(out, w)
	}
	return out, rows.Err()
}

func (s *sqliteStore) FinishDigest(ctx context.Context, agentID string, at, next time.Time, mail *Mail) error {
	return s.inTx(ctx, "finish digest of "+agentID, func(tx *sql.Tx) error {
		if err := insertSQLiteMail(ctx, tx, mail); err != nil {
			return err
		}
		last := `last_digest_at`
		if mail != nil {
			last = `?1`
		}
		if _, err := tx.ExecContext(ctx, `UPDATE notify_agents SET last_digest_at = `+last+`, next_digest_at = ?2, lease_until = 0 WHERE id = ?3`,
			sqlstore.Millis(at), sqlstore.Millis(next), agentID); err != nil {
			return fmt.Errorf("finish digest of %s: %w", agentID, err)
		}
		return nil
	})
}

const sqliteMailColumns = `id, dedupe_key, kind, to_addr, message, status, attempts, next_at, last_error, created_at, sent_at`

func scanSQLiteMail(row interface{ Scan(...any) error }) (Mail, error) {
	var m Mail
	var next, created, sent int64
	if err := row.Scan(&m.ID, &m.Key, &m.Kind, &m.To, &m.Message, &m.Status, &m.Tries, &next, &m.Error, &created, &sent); err != nil {
		return Mail{}, fmt.Errorf("read mail: %w", err)
	}
	m.NextAt, m.Created, m.SentAt = sqlstore.TimeFromMillis(next), sqlstore.TimeFromMillis(created), sqlstore.TimeFromMillis(sent)
	return m, nil
}

func (s *sqliteStore) queryMail(ctx context.Context, what, q string, args ...any) ([]Mail, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Mail
	for rows.Next() {
		m, err := scanSQLiteMail(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *sqliteStore) ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Mail, error) {
	return s.queryMail(ctx, "claim mail", `UPDATE notify_mail SET lease_until = ?1 WHERE id IN (
		SELECT id FROM notify_mail WHERE status = 'pending' AND next_at <= ?2 AND lease_until <= ?2 ORDER BY next_at LIMIT ?3)
		RETURNING `+sqliteMailColumns, sqlstore.Millis(now.Add(lease)), sqlstore.Millis(now), limit)
}

func (s *sqliteStore) MailSent(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE notify_mail SET status = 'sent', sent_at = ?, attempts = attempts + 1, lease_until = 0, last_error = '' WHERE id = ?`, sqlstore.Millis(at), id); err != nil {
		return fmt.Errorf("mark mail %s sent: %w", id, err)
	}
	return nil
}

func (s *sqliteStore) MailFailed(ctx context.Context, id string, _ time.Time, errText string, next time.Time, giveUp bool) error {
	status := MailPending
	if giveUp {
		status = MailFailed
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE notify_mail SET status = ?, attempts = attempts + 1, last_error = ?, next_at = ?, lease_until = 0 WHERE id = ?`,
		status, errText, sqlstore.Millis(next), id); err != nil {
		return fmt.Errorf("record failure of mail %s: %w", id, err)
	}
	return nil
}

func (s *sqliteStore) Mails(ctx context.Context, status string, limit int) ([]Mail, error) {
	return s.queryMail(ctx, "list mail", `SELECT `+sqliteMailColumns+` FROM notify_mail WHERE ?1 = '' OR status = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2`, status, limit)
}

func (s *sqliteStore) Unsubscribe(ctx context.Context, siteID, email string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO notify_unsubscribes (site_id, email, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, siteID, email, sqlstore.Millis(at)); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	return nil
}

func (s *sqliteStore) Unsubscribed(ctx context.Context, siteID, email string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM notify_unsubscribes WHERE site_id = ? AND email = ?`, siteID, email).Scan(&n); err != nil {
		return false, fmt.Errorf("read unsubscribes: %w", err)
	}
	return n > 0, nil
}

func (s *sqliteStore) Preferences(ctx context.Context, userID string) (Preferences, bool, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT prefs FROM notify_preferences WHERE user_id = ?`, userID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultPreferences, false, nil
	}
	if err != nil {
		return Preferences{}, false, fmt.Errorf("read preferences of %s: %w", userID, err)
	}
	p := DefaultPreferences
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return Preferences{}, false, fmt.Errorf("read preferences of %s: %w", userID, err)
	}
	return p, true, nil
}

func (s *sqliteStore) SetPreferences(ctx context.Context, userID string, p Preferences, at time.Time) error {
	raw, _ := json.Marshal(p)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO notify_preferences (user_id, prefs, digest_after, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET prefs = excluded.prefs, digest_after = excluded.digest_after, updated_at = excluded.updated_at`,
		userID, string(raw), p.DigestAfterMinutes, sqlstore.Millis(at)); err != nil {
		return fmt.Errorf("save preferences of %s: %w", userID, err)
	}
	return nil
}

func (s *sqliteStore) SigningKey(ctx context.Context, candidate []byte) ([]byte, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO notify_keys (name, key) VALUES ('tokens', ?) ON CONFLICT DO NOTHING`, candidate); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	var key []byte
	if err := s.db.QueryRowContext(ctx, `SELECT key FROM notify_keys WHERE name = 'tokens'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return key, nil
}
