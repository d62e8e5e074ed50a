package webhooks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley/sqlstore"
)

// PostgresSchema is the PostgreSQL schema webhooks keeps its tables in.
const PostgresSchema = "webhooks"

// postgresMigrations is the webhooks schema's history; append steps, never edit applied ones.
var postgresMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE webhook_endpoints (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	url TEXT NOT NULL,
	events TEXT[] NOT NULL,
	description TEXT NOT NULL,
	secret TEXT NOT NULL,
	enabled BOOLEAN NOT NULL,
	created_by TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_site ON webhook_endpoints(site_id);
CREATE TABLE webhook_deliveries (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
	event_id TEXT NOT NULL,
	event_type TEXT NOT NULL,
	lane TEXT NOT NULL,
	body BYTEA NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at TIMESTAMPTZ NOT NULL,
	lease_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	last_attempt_at TIMESTAMPTZ,
	created_at TIMESTAMPTZ NOT NULL,
	done_at TIMESTAMPTZ,
	UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_lane ON webhook_deliveries(endpoint_id, lane, status, seq);
CREATE INDEX webhook_deliveries_list ON webhook_deliveries(endpoint_id, status, seq);
CREATE TABLE webhook_lanes (
	endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
	lane TEXT NOT NULL,
	head_seq BIGINT NOT NULL,
	next_at TIMESTAMPTZ NOT NULL,
	lease_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
	PRIMARY KEY (endpoint_id, lane)
);
CREATE INDEX webhook_lanes_due ON webhook_lanes(next_at);`},
}

// postgresStore keeps webhooks in PostgreSQL, schema "webhooks", shared by
// every chat node: leases keep two dispatchers off one delivery.
type postgresStore struct{ db *pgxpool.Pool }

// OpenPostgres migrates the webhooks schema on pool (opened with
// search_path "webhooks") and returns the store.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool) (Store, error) {
	if err := sqlstore.MigratePostgres(ctx, pool, PostgresSchema, postgresMigrations); err != nil {
		return nil, err
	}
	return &postgresStore{db: pool}, nil
}

func (s *postgresStore) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

func pgAffected(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *postgresStore) InsertEndpoint(ctx context.Context, e Endpoint) error {
	_, err := s.db.Exec(ctx, `INSERT INTO webhook_endpoints (id, site_id, url, events, description, secret, enabled, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, e.ID, e.SiteID, e.URL, e.Events, e.Description, e.Secret, e.Enabled, e.CreatedBy, e.CreatedAt, e.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert endpoint: %w", err)
	}
	return nil
}

func (s *postgresStore) UpdateEndpoint(ctx context.Context, e Endpoint) error {
	tag, err := s.db.Exec(ctx, `UPDATE webhook_endpoints SET site_id = $1, url = $2, events = $3, description = $4, enabled = $5, updated_at = $6 WHERE id = $7`,
		e.SiteID, e.URL, e.Events, e.Description, e.Enabled, e.UpdatedAt, e.ID)
	return pgAffected(tag, err, "update endpoint "+e.ID)
}

func (s *postgresStore) SetEndpointSecret(ctx context.Context, id, secret string, at time.Time) error {
	tag, err := s.db.Exec(ctx, `UPDATE webhook_endpoints SET secret = $1, updated_at = $2 WHERE id = $3`, secret, at, id)
	return pgAffected(tag, err, "rotate secret of endpoint "+id)
}

func (s *postgresStore) DeleteEndpoint(ctx context.Context, id string) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
	return pgAffected(tag, err, "delete endpoint "+id)
}

const pgEndpointColumns = `id, site_id, url, events, description, secret, enabled, created_by, created_at, updated_at`

func scanPgEndpoint(row pgx.Row) (Endpoint, error) {
	var e Endpoint
	if err := row.Scan(&e.ID, &e.SiteID, &e.URL, &e.Events, &e.Description, &e.Secret, &e.Enabled, &e.CreatedBy, &e.CreatedAt, &e.UpdatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Endpoint{}, ErrNotFound
		}
		return Endpoint{}, fmt.Errorf("read endpoint: %w", err)
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return e, nil
}

func (s *postgresStore) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	return scanPgEndpoint(s.db.QueryRow(ctx, `SELECT `+pgEndpointColumns+` FROM webhook_endpoints WHERE id = $1`, id))
}

func (s *postgresStore) Endpoints(ctx context.Context, siteID string) ([]Endpoint, error) {
	rows, err := s.db.Query(ctx, `SELECT `+pgEndpointColumns+` FROM webhook_endpoints WHERE $1 = '' OR site_id = $1 ORDER BY created_at, id`, siteID)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	var out []Endpoint
	for rows.Next() {
		e, err := scanPgEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// A lane (one endpoint, one conversation) with pending deliveries has a
// row in webhook_lanes naming its oldest pending delivery and when it is
// due. Enqueuing upserts the lane row (taking its lock) and recording an
// attempt locks it before looking for the next pending delivery, so a
// delivery enqueued while its lane is being advanced is never left
// without a lane: one of the two waits for the other's commit.

func (s *postgresStore) EnqueueDeliveries(ctx context.Context, ds []Delivery) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	// One lock order for every writer: lanes sorted, each lane's
	// deliveries kept in their order.
	ds = slices.Clone(ds)
	slices.SortStableFunc(ds, func(a, b Delivery) int {
		return cmp.Or(strings.Compare(a.EndpointID, b.EndpointID), strings.Compare(a.Lane, b.Lane))
	})
	b := &pgx.Batch{}
	for _, d := range ds {
		b.Queue(`WITH ins AS (
				INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, lane, body, status, next_at, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING seq)
			INSERT INTO webhook_lanes (endpoint_id, lane, head_seq, next_at) SELECT $2, $5, seq, $7 FROM ins
			ON CONFLICT (endpoint_id, lane) DO UPDATE SET head_seq = LEAST(webhook_lanes.head_seq, excluded.head_seq)`,
			d.ID, d.EndpointID, d.EventID, d.EventType, d.Lane, d.Body, d.NextAt, d.CreatedAt)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("enqueue deliveries: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	res := tx.SendBatch(ctx, b)
	stored := 0
	for range ds {
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return 0, fmt.Errorf("enqueue deliveries: %w", err)
		}
		stored += int(tag.RowsAffected())
	}
	if err := res.Close(); err != nil {
		return 0, fmt.Errorf("enqueue deliveries: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("enqueue deliveries: commit: %w", err)
	}
	return stored, nil
}

const pgDeliveryColumns = `id, endpoint_id, event_id, event_type, lane, body, status, attempts, next_at, last_status, last_error, last_attempt_at, created_at, done_at`

func scanPgDelivery(row pgx.Row) (Delivery, error) {
	var d Delivery
	var last, done *time.Time
	if err := row.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.Lane, &d.Body, &d.Status, &d.Attempts, &d.NextAt, &d.LastStatus, &d.LastError, &last, &d.CreatedAt, &done); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Delivery{}, ErrNotFound
		}
		return Delivery{}, fmt.Errorf("read delivery: %w", err)
	}
	d.NextAt, d.CreatedAt = d.NextAt.UTC(), d.CreatedAt.UTC()
	if last != nil {
		d.LastAttemptAt = last.UTC()
	}
	if done != nil {
		d.DoneAt = done.UTC()
	}
	return d, nil
}

func collectDeliveries(rows pgx.Rows, err error, what string) ([]Delivery, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanPgDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (s *postgresStore) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	// SKIP LOCKED keeps concurrent claimers (other nodes) off the lanes
	// this one is leasing.
	rows, err := s.db.Query(ctx, `WITH claimed AS (
			UPDATE webhook_lanes SET lease_until = $1 WHERE (endpoint_id, lane) IN (
				SELECT endpoint_id, lane FROM webhook_lanes WHERE next_at <= $2 AND lease_until <= $2 ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
			RETURNING head_seq)
		SELECT `+pgDeliveryColumns+` FROM webhook_deliveries WHERE seq IN (SELECT head_seq FROM claimed) ORDER BY next_at, seq`,
		now.Add(lease), now, limit)
	return collectDeliveries(rows, err, "claim deliveries")
}

func (s *postgresStore) RecordAttempt(ctx context.Context, id string, a Attempt) error {
	var done *time.Time
	if a.Status != StatusPending {
		done = &a.At
	}
	next := a.Next
	if next.IsZero() {
		next = a.At
	}
	return s.inTx(ctx, "record attempt of delivery "+id, func(tx pgx.Tx) error {
		var endpoint, lane string
		err := tx.QueryRow(ctx, `UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_at = $2, lease_until = 'epoch',
			last_status = $3, last_error = $4, last_attempt_at = $5, done_at = $6 WHERE id = $7 RETURNING endpoint_id, lane`,
			a.Status, next, a.Code, a.Error, a.At, done, id).Scan(&endpoint, &lane)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("record attempt of delivery %s: %w", id, err)
		}
		return pgAdvanceLane(ctx, tx, endpoint, lane)
	})
}

// pgAdvanceLane locks a lane, then points it at its oldest pending
// delivery and when that one is due (freeing its lease), or removes it
// when nothing is pending.
func pgAdvanceLane(ctx context.Context, tx pgx.Tx, endpoint, lane string) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM webhook_lanes WHERE endpoint_id = $1 AND lane = $2 FOR UPDATE`, endpoint, lane); err != nil {
		return fmt.Errorf("lock lane %s: %w", lane, err)
	}
	var seq int64
	var next time.Time
	err := tx.QueryRow(ctx, `SELECT seq, next_at FROM webhook_deliveries WHERE endpoint_id = $1 AND lane = $2 AND status = 'pending' ORDER BY seq LIMIT 1`,
		endpoint, lane).Scan(&seq, &next)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_lanes WHERE endpoint_id = $1 AND lane = $2`, endpoint, lane); err != nil {
			return fmt.Errorf("close lane %s: %w", lane, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("advance lane %s: %w", lane, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO webhook_lanes (endpoint_id, lane, head_seq, next_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (endpoint_id, lane) DO UPDATE SET head_seq = excluded.head_seq, next_at = excluded.next_at, lease_until = 'epoch'`,
		endpoint, lane, seq, next); err != nil {
		return fmt.Errorf("advance lane %s: %w", lane, err)
	}
	return nil
}

func (s *postgresStore) inTx(ctx context.Context, what string, f func(tx pgx.Tx) error) error {
	return sqlstore.InPgTx(ctx, s.db, what, f)
}

func (s *postgresStore) Deliveries(ctx context.Context, endpointID, status string, limit int) ([]Delivery, error) {
	rows, err := s.db.Query(ctx, `SELECT `+pgDeliveryColumns+` FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 = '' OR status = $2) ORDER BY seq DESC LIMIT $3`,
		endpointID, status, limit)
	return collectDeliveries(rows, err, "list deliveries of "+endpointID)
}

func (s *postgresStore) Counts(ctx context.Context, endpointID string) (map[string]int, error) {
	rows, err := s.db.Query(ctx, `SELECT status, count(*) FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY status`, endpointID)
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

func (s *postgresStore) Redeliver(ctx context.Context, id string, now time.Time) (Delivery, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: %w", id, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// A redelivered delivery goes to the back of its lane: a new sequence number.
	d, err := scanPgDelivery(tx.QueryRow(ctx, `DELETE FROM webhook_deliveries WHERE id = $1 AND status = 'dead' RETURNING `+pgDeliveryColumns, id))
	if err != nil {
		return Delivery{}, err
	}
	d, err = scanPgDelivery(tx.QueryRow(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, lane, body, status, next_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) RETURNING `+pgDeliveryColumns, d.ID, d.EndpointID, d.EventID, d.EventType, d.Lane, d.Body, now))
	if err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: %w", id, err)
	}
	// Joining the back of its lane: the lane's head and lease stay as they
	// are (the upsert takes the lane's lock, as enqueuing does).
	if _, err := tx.Exec(ctx, `INSERT INTO webhook_lanes (endpoint_id, lane, head_seq, next_at)
		SELECT endpoint_id, lane, seq, next_at FROM webhook_deliveries WHERE id = $1
		ON CONFLICT (endpoint_id, lane) DO UPDATE SET head_seq = LEAST(webhook_lanes.head_seq, excluded.head_seq)`, d.ID); err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: lane: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Delivery{}, fmt.Errorf("redeliver %s: commit: %w", id, err)
	}
	return d, nil
}

func (s *postgresStore) PurgeDone(ctx context.Context, deliveredBefore, deadBefore time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM webhook_deliveries WHERE (status = 'delivered' AND done_at < $1) OR (status = 'dead' AND done_at < $2)`, deliveredBefore, deadBefore)
	if err != nil {
		return 0, fmt.Errorf("purge deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CopyFromSQLite lists how `parley migrate` moves webhooks.db's tables
// into this schema (run after OpenPostgres migrated it).
func CopyFromSQLite() []sqlstore.TableCopy {
	return []sqlstore.TableCopy{
		{Table: "webhook_endpoints", Columns: []string{"id", "site_id", "url", "events", "description", "secret", "enabled", "created_by", "created_at", "updated_at"}, Key: []string{"id"},
			Convert: func(r []any) ([]any, error) {
				var events []string
				s, ok := r[3].(string)
				if !ok || json.Unmarshal([]byte(s), &events) != nil {
					return nil, fmt.Errorf("events of endpoint %v are not a JSON list", r[0])
				}
				r[3], r[6] = events, sqlstore.IntBool(r[6])
				r[8], r[9] = sqlstore.MillisTime(r[8], false), sqlstore.MillisTime(r[9], false)
				return r, nil
			}},
		{Table: "webhook_deliveries", Columns: []string{"seq", "id", "endpoint_id", "event_id", "event_type", "lane", "body", "status", "attempts", "next_at",
			"last_status", "last_error", "last_attempt_at", "created_at", "done_at"}, Key: []string{"seq"}, Serial: "seq", Identity: true,
			Convert: func(r []any) ([]any, error) {
				if s, ok := r[6].(string); ok {
					r[6] = []byte(s)
				}
				r[9] = sqlstore.MillisTime(r[9], false)
				r[12], r[13], r[14] = sqlstore.MillisTime(r[12], true), sqlstore.MillisTime(r[13], false), sqlstore.MillisTime(r[14], true)
				return r, nil
			}},
	}
}
