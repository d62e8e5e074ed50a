package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleychat/parley/sqlstore"
)

// sqliteMigrations is webhooks.db's schema; append steps, never edit applied ones.
var sqliteMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE webhook_endpoints (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	url TEXT NOT NULL,
	events TEXT NOT NULL,
	description TEXT NOT NULL,
	secret TEXT NOT NULL,
	enabled INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_site ON webhook_endpoints(site_id);
CREATE TABLE webhook_deliveries (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
	event_id TEXT NOT NULL,
	event_type TEXT NOT NULL,
	lane TEXT NOT NULL,
	body BLOB NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at INTEGER NOT NULL,
	lease_until INTEGER NOT NULL DEFAULT 0,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	last_attempt_at INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	done_at INTEGER NOT NULL DEFAULT 0,
	UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_lane ON webhook_deliveries(endpoint_id, lane, status, seq);
CREATE INDEX webhook_deliveries_list ON webhook_deliveries(endpoint_id, status, seq);
CREATE TABLE webhook_lanes (
	endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
	lane TEXT NOT NULL,
	head_seq INTEGER NOT NULL,
	next_at INTEGER NOT NULL,
	lease_until INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (endpoint_id, lane)
);
CREATE INDEX webhook_lanes_due ON webhook_lanes(next_at);`},
}

// sqliteStore keeps webhooks in an SQLite file (webhooks.db).
type sqliteStore struct{ db *sql.DB }

// OpenSQLite migrates the webhook tables on db and returns the store.
func OpenSQLite(ctx context.Context, db *sql.DB) (Store, error) {
	if err := sqlstore.Migrate(ctx, db, "webhooks", sqliteMigrations); err != nil {
		return nil, err
	}
	return &sqliteStore{db: db}, nil
}

func (s *sqliteStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *sqliteStore) InsertEndpoint(ctx context.Context, e Endpoint) error {
	events, _ := json.Marshal(e.Events)
	_, err := s.db.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, site_id, url, events, description, secret, enabled, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.SiteID, e.URL, string(events), e.Description, e.Secret, e.Enabled, e.CreatedBy, sqlstore.Millis(e.CreatedAt), sqlstore.Millis(e.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert endpoint: %w", err)
	}
	return nil
}

func (s *sqliteStore) UpdateEndpoint(ctx context.Context, e Endpoint) error {
	events, _ := json.Marshal(e.Events)
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET site_id = ?, url = ?, events = ?, description = ?, enabled = ?, updated_at = ? WHERE id = ?`,
		e.SiteID, e.URL, string(events), e.Description, e.Enabled, sqlstore.Millis(e.UpdatedAt), e.ID)
	return affected(res, err, "update endpoint "+e.ID)
}

func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqliteStore) SetEndpointSecret(ctx context.Context, id, secret string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET secret = ?, updated_at = ? WHERE id = ?`, secret, sqlstore.Millis(at), id)
	return affected(res, err, "rotate secret of endpoint "+id)
}

func (s *sqliteStore) DeleteEndpoint(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id)
	return affected(res, err, "delete endpoint "+id)
}

const sqliteEndpointColumns = `id, site_id, url, events, description, secret, enabled, created_by, created_at, updated_at`

func scanSQLiteEndpoint(row interface{ Scan(...any) error }) (Endpoint, error) {
	var e Endpoint
	var events string
	var created, updated int64
	if err := row.Scan(&e.ID, &e.SiteID, &e.URL, &events, &e.Description, &e.Secret, &e.Enabled, &e.CreatedBy, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Endpoint{}, ErrNotFound
		}
		return Endpoint{}, fmt.Errorf("read endpoint: %w", err)
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return Endpoint{}, fmt.Errorf("read events of endpoint %s: %w", e.ID, err)
	}
	e.CreatedAt, e.UpdatedAt = sqlstore.TimeFromMillis(created), sqlstore.TimeFromMillis(updated)
	return e, nil
}

func (s *sqliteStore) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	return scanSQLiteEndpoint(s.db.QueryRowContext(ctx, `SELECT `+sqliteEndpointColumns+` FROM webhook_endpoints WHERE id = ?`, id))
}

func (s *sqliteStore) Endpoints(ctx context.Context, siteID string) ([]Endpoint, error) {
	q := `SELECT ` + sqliteEndpointColumns + ` FROM webhook_endpoints`
	var args []any
	if siteID != "" {
		q += ` WHERE site_id = ?`
		args = append(args, siteID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	var out []Endpoint
	for rows.Next() {
		e, err := scanSQLiteEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// A lane (one endpoint, one conversation) with pending deliveries has a
// row in webhook_lanes naming its oldest pending delivery (head_seq) and
// when that one is due: claims read lanes, not the whole backlog, so a
// day's backlog behind a dead receiver costs nothing per claim.

func (s *sqliteStore) EnqueueDeliveries(ctx context.Context, ds []Delivery) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("enqueue deliveries: %w", err)
	}
	defer tx.Rollback()
	stored := 0
	for _, d := range ds {
		var seq int64
		err := tx.QueryRowContext(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, lane, body, status, next_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING seq`,
			d.ID, d.EndpointID, d.EventID, d.EventType, d.Lane, d.Body, sqlstore.Millis(d.NextAt), sqlstore.Millis(d.CreatedAt)).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			continue // stored before: a consumer's redelivery
		}
		if err != nil {
			return 0, fmt.Errorf("enqueue delivery of %s to %s: %w", d.EventID, d.EndpointID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_lanes (endpoint_id, lane, head_seq, next_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			d.EndpointID, d.Lane, seq, sqlstore.Millis(d.NextAt)); err != nil {
			return 0, fmt.Errorf("enqueue delivery of %s to %s: lane: %w", d.EventID, d.EndpointID, err)
		}
		stored++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("enqueue deliveries: commit: %w", err)
	}
	return stored, nil
}

const sqliteDeliveryColumns = `id, endpoint_id, event_id, event_type, lane, body, status, attempts, next_at, last_status, last_error, last_attempt_at, created_at, done_at`

func scanSQLiteDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var next, last, created, done int64
	if err := row.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.Lane, &d.Body, &d.Status, &d.Attempts, &next, &d.LastStatus, &d.LastError, &last, &created, &done); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Delivery{}, ErrNotFound
		}
		return Delivery{}, fmt.Errorf("read delivery: %w", err)
	}
	d.NextAt, d.LastAttemptAt, d.CreatedAt, d.DoneAt = sqlstore.TimeFromMillis(next), sqlstore.TimeFromMillis(last), sqlstore.TimeFromMillis(created), sqlstore.TimeFromMillis(done)
	return d, nil
}

func (s *sqliteStore) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE webhook_lanes SET lease_until = ?1 WHERE rowid IN (
		SELECT rowid FROM webhook_lanes WHERE next_at <= ?2 AND lease_until <= ?2 ORDER BY next_at LIMIT ?3)
		RETURNING head_seq`, sqlstore.Millis(now.Add(lease)), sqlstore.Millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	var heads []any
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		heads = append(heads, seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	var out []Delivery
	if len(heads) > 0 {
		q := `SELECT ` + sqliteDeliveryColumns + ` FROM webhook_deliveries WHERE seq IN (?` + strings.Repeat(", ?", len(heads)-1) + `) ORDER BY next_at, seq`
		drows, err := tx.QueryContext(ctx, q, heads...)
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		for drows.Next() {
			d, err := scanSQLiteDelivery(drows)
			if err != nil {
				drows.Close()
				return nil, err
			}
			out = append(out, d)
		}
		drows.Close()
		if err := drows.Err(); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim deliveries: commit: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) RecordAttempt(ctx context.Context, id string, a Attempt) error {
	done := int64(0)
	if a.Status != StatusPending {
		done = sqlstore.Millis(a.At)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record attempt of delivery %s: %w", id, err)
	}
	defer tx.Rollback()
	var endpoint, lane string
	err = tx.QueryRowContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_at = ?, lease_until = 0,
		last_status = ?, last_error = ?, last_attempt_at = ?, done_at = ? WHERE id = ? RETURNING endpoint_id, lane`,
		a.Status, sqlstore.Millis(a.Next), a.Code, a.Error, sqlstore.Millis(a.At), done, id).Scan(&endpoint, &lane)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("record attempt of delivery %s: %w", id, err)
	}
	if err := sqliteAdvanceLane(ctx, tx, endpoint, lane); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record attempt of delivery %s: commit: %w", id, err)
	}
	return nil
}

// sqliteAdvanceLane points a lane at its oldest pending delivery and when
// that one is due, frees its lease, or removes the lane when nothing is pending.
func sqliteAdvanceLane(ctx context.Context, tx *sql.Tx, endpoint, lane string) error {
	var seq, next int64
	err := tx.QueryRowContext(ctx, `SELECT seq, next_at FROM webhook_deliveries WHERE endpoint_id = ? AND lane = ? AND status = 'pending' ORDER BY seq LIMIT 1`,
		endpoint, lane).Scan(&seq, &next)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_lanes WHERE endpoint_id = ? AND lane = ?`, endpoint, lane); err != nil {
			return fmt.Errorf("close lane %s: %w", lane, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("advance lane %s: %w", lane, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_lanes (endpoint_id, lane, head_seq, next_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (endpoint_id, lane) DO UPDATE SET head_seq = excluded.head_seq, next_at = excluded.next_at, lease_until = 0`,
		endpoint, lane, seq, next); err != nil {
		return fmt.Errorf("advance lane %s: %w", lane, err)
	}
	return nil
}

func (s *sqliteStore) Deliveries(ctx context.Context, endpointID, status string, limit int) ([]Delivery, error) {
	q := `SELECT ` + sqliteDeliveryColumns + ` FROM webhook_deliveries WHERE endpoint_id = ?`
	args := []any{endpointID}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY seq DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %s: %w", endpointID, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanSQLiteDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *sqliteStore) Counts(ctx context.Context, endpointID string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, count(*) FROM webhook_deliveries WHERE endpoint_id = ? GROUP BY status`, endpointID)
	if err != nil {
		return nil, fmt.Errorf("count deliveries of %s: %w", endpointID, err)
	}
	defer rows.Close()
	out := map[string]int{StatusPending: 0, StatusDelivered: 0, StatusDead: 0}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count deliveries of %s: %w", endpointID, err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

func (s *sqliteStore) Redeliver(ctx context.Context, id string, now time.Time) (Delivery, error) {
	// A redelivered delivery goes to the back of its lane: it keeps its
	// place only in time, so a new sequence number is taken.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: %w", id, err)
	}
	defer tx.Rollback()
	d, err := scanSQLiteDelivery(tx.QueryRowContext(ctx, `SELECT `+sqliteDeliveryColumns+` FROM webhook_deliveries WHERE id = ? AND status = 'dead'`, id))
	if err != nil {
		return Delivery{}, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id = ?`, id); err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, lane, body, status, next_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)`, d.ID, d.EndpointID, d.EventID, d.EventType, d.Lane, d.Body, sqlstore.Millis(now), sqlstore.Millis(now)); err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: %w", id, err)
	}
	// Joining the back of its lane: the lane's head and lease stay as they are.
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_lanes (endpoint_id, lane, head_seq, next_at)
		SELECT endpoint_id, lane, seq, next_at FROM webhook_deliveries WHERE id = ? ON CONFLICT DO NOTHING`, d.ID); err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: lane: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: commit: %w", id, err)
	}
	d.Status, d.Attempts, d.NextAt, d.CreatedAt, d.LastStatus, d.LastError, d.LastAttemptAt, d.DoneAt = StatusPending, 0, now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond), 0, "", time.Time{}, time.Time{}
	return d, nil
}

func (s *sqliteStore) PurgeDone(ctx context.Context, deliveredBefore, deadBefore time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE (status = 'delivered' AND done_at < ?) OR (status = 'dead' AND done_at < ?)`,
		sqlstore.Millis(deliveredBefore), sqlstore.Millis(deadBefore))
	if err != nil {
		return 0, fmt.Errorf("purge deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
