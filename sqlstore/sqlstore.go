// Package sqlstore opens Parley's SQL databases — SQLite through the
// pure-Go modernc.org/sqlite driver (so the binary builds with
// CGO_ENABLED=0) with the pragmas the stores rely on, and PostgreSQL
// through pgx's pool, one schema per domain — and applies versioned,
// idempotent schema migrations to both (on PostgreSQL under an advisory
// lock, so nodes starting together never race). SQLite connections keep
// their prepared statements (stmtcache.go). It owns no schema of its
// own and imports no other Parley package; every store implementation
// file (store_sqlite.go, store_postgres.go) uses it.
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// OpenOption tunes Open.
type OpenOption func(*openConfig)

type openConfig struct{ synchronous string }

// FullSync makes every commit wait until the write-ahead log is on stable
// storage (synchronous=FULL): a committed transaction survives a power
// loss, not only a process crash, at the cost of an fsync per commit.
func FullSync() OpenOption { return func(c *openConfig) { c.synchronous = "FULL" } }

// Open opens (creating if needed) the SQLite file at path in WAL mode with
// a busy timeout and foreign keys on. A single writer connection avoids
// SQLITE_BUSY between writers of one process; readers share WAL snapshots.
// By default commits are synchronous=NORMAL: durable across a process
// crash, possibly lost (the last ones) on a power loss; FullSync changes that.
// The connection keeps its prepared statements (stmtcache.go).
func Open(path string, opts ...OpenOption) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	cfg := openConfig{synchronous: "NORMAL"}
	for _, o := range opts {
		o(&cfg)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(" + cfg.synchronous + ")"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	base, err := registeredSQLite()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db := sql.OpenDB(cachingConnector{dsn: "file:" + path + "?" + q.Encode(), base: base})
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// Migration is one schema step. Steps are applied in order, each once,
// inside its own transaction; the applied version is recorded per schema
// name so several stores can share one database file.
type Migration struct {
	Version int
	SQL     string
}

// Migrate applies the steps of schema that the database has not seen yet.
func Migrate(ctx context.Context, db *sql.DB, schema string, steps []Migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		schema_name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate %s: create schema_versions: %w", schema, err)
	}
	var current int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE schema_name = ?`, schema).Scan(&current)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("migrate %s: read version: %w", schema, err)
	}
	if err := checkNotNewer(schema, current, steps); err != nil {
		return err
	}
	for _, m := range steps {
		if m.Version <= current {
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s to %d: %w", schema, m.Version, err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to %d: %w", schema, m.Version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_versions (schema_name, version, applied_at) VALUES (?, ?, ?)
			ON CONFLICT(schema_name) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at`,
			schema, m.Version, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to %d: record version: %w", schema, m.Version, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s to %d: commit: %w", schema, m.Version, err)
		}
		current = m.Version
	}
	return nil
}

// Millis is how SQLite stores keep a time: Unix milliseconds, 0 for the
// zero time (no time).
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// TimeFromMillis reads a time kept by Millis, in UTC.
func TimeFromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
