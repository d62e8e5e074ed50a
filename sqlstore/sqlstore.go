// Package sqlstore opens Parley's embedded SQL databases (SQLite through the
// pure-Go modernc.org/sqlite driver, so the binary builds with
// CGO_ENABLED=0) with the pragmas the stores rely on, and applies versioned,
// idempotent schema migrations. It owns no schema of its own and imports no
// other Parley package; every store that keeps rows in SQLite uses it.
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

// Open opens (creating if needed) the SQLite file at path in WAL mode with
// a busy timeout and foreign keys on. A single writer connection avoids
// SQLITE_BUSY between writers of one process; readers share WAL snapshots.
func Open(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
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
