package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresOptions tunes OpenPostgres.
type PostgresOptions struct {
	// Schema is the PostgreSQL schema a domain keeps its tables in; it is
	// created when missing and becomes the connections' search_path, so
	// the stores' SQL names tables without a prefix.
	Schema string
	// MaxConns bounds the pool (0: pgxpool's default, max(4, CPUs)).
	MaxConns int32
}

// OpenPostgres opens a connection pool on the database at rawURL for one
// domain's schema and checks that the server answers. Errors name the URL
// without its password.
func OpenPostgres(ctx context.Context, rawURL string, opt PostgresOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres URL %s: %w", RedactURL(rawURL), err)
	}
	if opt.Schema != "" {
		if !validSchema(opt.Schema) {
			return nil, fmt.Errorf("postgres schema %q: use lower-case letters, digits and _", opt.Schema)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = opt.Schema
	}
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "parley"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", RedactURL(rawURL), err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", RedactURL(rawURL), err)
	}
	return pool, nil
}

func validSchema(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ValidatePostgresURL checks that rawURL is a postgres:// URL pgx accepts,
// without connecting; the error never repeats the password.
func ValidatePostgresURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return fmt.Errorf("%s is not a postgres://user[:password]@host[:port]/database URL", RedactURL(rawURL))
	}
	if _, err := pgxpool.ParseConfig(rawURL); err != nil {
		return fmt.Errorf("%s: %s", RedactURL(rawURL), strings.ReplaceAll(err.Error(), rawURL, RedactURL(rawURL)))
	}
	return nil
}

// RedactURL returns rawURL with its password replaced, for logs and errors.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// migrationLock is the advisory lock key every Parley node takes while it
// migrates, so nodes starting together apply each step once, in order.
const migrationLock = 0x7061726c6579 // "parley"

// ErrSchemaTooNew marks a database migrated by a newer Parley than this binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// MigratePostgres applies the steps of schema that the database has not
// seen yet, all in one transaction under a transaction-level advisory
// lock: concurrent starters wait, then find the work done. A database whose
// recorded version is above the last step stops the caller with
// ErrSchemaTooNew.
func MigratePostgres(ctx context.Context, pool *pgxpool.Pool, schema string, steps []Migration) error {
	return MigratePostgresTrack(ctx, pool, schema, schema, steps)
}

// MigratePostgresTrack is MigratePostgres for a second history of steps in
// the same schema, recorded under its own track name: a part of a domain
// (access's API tokens) that evolves apart from the domain's main tables.
func MigratePostgresTrack(ctx context.Context, pool *pgxpool.Pool, schema, track string, steps []Migration) error {
	if !validSchema(schema) {
		return fmt.Errorf("migrate %s: schema name must be lower-case letters, digits and _", schema)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", schema, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("migrate %s: take the migration lock: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("migrate %s: create schema: %w", schema, err)
	}
	table := pgx.Identifier{schema, "schema_versions"}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		schema_name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate %s: create schema_versions: %w", schema, err)
	}
	var current int
	err = tx.QueryRow(ctx, `SELECT version FROM `+table+` WHERE schema_name = $1`, track).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("migrate %s: read version: %w", schema, err)
	}
	if err := checkNotNewer(track, current, steps); err != nil {
		return err
	}
	// Steps name tables without a schema; the transaction's search_path
	// puts them in this domain's schema whatever the pool's setting.
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, schema); err != nil {
		return fmt.Errorf("migrate %s: set search_path: %w", schema, err)
	}
	for _, m := range steps {
		if m.Version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate %s to %d: %w", schema, m.Version, describePgError(err))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (schema_name, version) VALUES ($1, $2)
			ON CONFLICT (schema_name) DO UPDATE SET version = excluded.version, applied_at = now()`, track, m.Version); err != nil {
			return fmt.Errorf("migrate %s to %d: record version: %w", schema, m.Version, err)
		}
		current = m.Version
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", schema, err)
	}
	return nil
}

func checkNotNewer(schema string, current int, steps []Migration) error {
	known := 0
	if len(steps) > 0 {
		known = steps[len(steps)-1].Version
	}
	if current > known {
		return fmt.Errorf("%w: %s is at version %d, this parley knows versions up to %d; run the newer parley (or restore a backup taken before the upgrade)",
			ErrSchemaTooNew, schema, current, known)
	}
	return nil
}

// describePgError adds PostgreSQL's detail and position to an error.
func describePgError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		return fmt.Errorf("%w (%s)", err, pe.Detail)
	}
	return err
}

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation
// on the named constraint (any constraint when name is empty).
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// PlanEachTime, passed as a statement's first argument, makes PostgreSQL
// plan that statement for its actual arguments on every call (pgx's
// unnamed-statement mode) instead of running the connection's cached
// prepared statement. PostgreSQL settles a prepared statement on a generic
// plan from its sixth call when that plan looks cheaper than the custom
// ones so far, and keeps it. An update of a few dozen rows picked by key
// ("id = ANY($2)") first run against a nearly empty table, as an outbox
// relay's is on a fresh database, looks dearer with an index than a
// sequential scan of the "about ten pages" PostgreSQL assumes for a table
// it has not analysed, so the generic plan is a sequential scan, kept
// while the table grows to every sent row of the last hour, until
// autovacuum first analyses the table (a minute or more under load)
// (TestPlanEachTimeOutlivesAStaleGenericPlan). At 2,000 msg/s that came to
// 400-500 scans of the outbox in 25 s reading 6.6-8.6 million rows
// (auto_explain showed the plan), 3.5-3.9 ms a call, and a relay capped at
// about 3,000 events/s (docs/benchmarks.md). Statements that pick rows out
// of a growing table by a list of keys use it; one parse and plan per call
// is cheap for statements run once per batch.
const PlanEachTime = pgx.QueryExecModeExec
