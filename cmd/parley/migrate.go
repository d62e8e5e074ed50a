package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/chatsvc"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/moderation"
	"github.com/parleychat/parley/notifications"
	"github.com/parleychat/parley/sqlstore"
	"github.com/parleychat/parley/webhooks"
)

// migrationDomain is one domain's SQLite file and how it moves into its
// PostgreSQL schema.
type migrationDomain struct {
	file   string
	schema string
	// open migrates the schema on the pool (the domain's own OpenPostgres).
	open func(ctx context.Context, pool *pgxpool.Pool) error
	// prepare, when set, migrates the SQLite file to the version the
	// copy reads (a data directory of an older Parley lacks its newest
	// tables and columns).
	prepare func(ctx context.Context, src *sql.DB) error
	tables  []sqlstore.TableCopy
}

func migrationDomains() []migrationDomain {
	return []migrationDomain{
		{file: "access.db", schema: access.PostgresSchema, tables: append(access.CopyFromSQLite(), access.CopyTokensFromSQLite()...),
			open: func(ctx context.Context, p *pgxpool.Pool) error {
				if _, err := access.OpenPostgres(ctx, p); err != nil {
					return err
				}
				_, err := access.OpenTokensPostgres(ctx, p)
				return err
			}},
		{file: "chat.db", schema: chatsvc.PostgresSchema, tables: chatsvc.CopyFromSQLite(),
			open: func(ctx context.Context, p *pgxpool.Pool) error { _, err := chatsvc.OpenPostgres(ctx, p); return err }},
		{file: "webhooks.db", schema: webhooks.PostgresSchema, tables: webhooks.CopyFromSQLite(),
			open: func(ctx context.Context, p *pgxpool.Pool) error { _, err := webhooks.OpenPostgres(ctx, p); return err }},
		{file: "notifications.db", schema: notifications.PostgresSchema, tables: notifications.CopyFromSQLite(),
			open: func(ctx context.Context, p *pgxpool.Pool) error {
				_, err := notifications.OpenPostgres(ctx, p)
				return err
			}},
		{file: "moderation.db", schema: moderation.PostgresSchema, tables: moderation.CopyFromSQLite(),
			open: func(ctx context.Context, p *pgxpool.Pool) error {
				_, err := moderation.OpenPostgres(ctx, p)
				return err
			},
			prepare: func(ctx context.Context, db *sql.DB) error { _, err := moderation.OpenSQLite(ctx, db); return err }},
	}
}

// runMigrate copies a `parley serve` data directory's SQLite state into
// PostgreSQL: idempotent (rows already there are skipped), so an
// interrupted run is resumed by running it again, with a progress line per
// table and a count check at the end.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s settings
	fs := newFlagSet("migrate", "Copies the chat, moderation and staff state of a data directory (SQLite files of `parley serve`)\n"+
		"into the PostgreSQL database of --postgres, so a deployment can move from one machine to many.\n"+
		"Stop Parley first. Running it again copies only what is missing; it ends with a row count check.\n"+
		"Analytics is not copied: replay it from the topics (`parley analytics replay`).")
	fs.SetOutput(stderr)
	fs.str(&s.DataDir, "data", "PARLEY_DATA", "./parley-data", "data directory of `parley serve` to copy from")
	fs.str(&s.Postgres, "postgres", "PARLEY_POSTGRES", "", "PostgreSQL URL to copy into (the password is never printed)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if s.Postgres == "" {
		return errors.New("--postgres / PARLEY_POSTGRES is required")
	}
	if err := sqlstore.ValidatePostgresURL(s.Postgres); err != nil {
		return fmt.Errorf("--postgres / PARLEY_POSTGRES: %w", err)
	}
	if _, err := os.Stat(s.DataDir); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// `parley serve` holds this lock while it runs; copying a live file
	// would take a moving snapshot.
	if err := os.MkdirAll(filepath.Join(s.DataDir, "kafka"), 0o750); err != nil {
		return err
	}
	lock, err := ingest.LockDir(filepath.Join(s.DataDir, "kafka"))
	if err != nil {
		return fmt.Errorf("stop parley serve first: %w", err)
	}
	defer lock.Close()

	fmt.Fprintf(stdout, "copying %s into %s\n", s.DataDir, sqlstore.RedactURL(s.Postgres))
	start := time.Now()
	var mismatches []string
	for _, d := range migrationDomains() {
		path := filepath.Join(s.DataDir, d.file)
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(stdout, "%s: not found, nothing to copy\n", d.file)
			continue
		}
		counts, err := migrateDomain(ctx, path, s.Postgres, d, stdout)
		if err != nil {
			return fmt.Errorf("%s: %w (run parley migrate again to resume)", d.file, err)
		}
		tables := make([]string, 0, len(counts))
		for t := range counts {
			tables = append(tables, t)
		}
		sort.Strings(tables)
		for _, t := range tables {
			c := counts[t]
			status := "ok"
			if c[1] < c[0] {
				status = "MISSING ROWS"
				mismatches = append(mismatches, fmt.Sprintf("%s.%s: %d in SQLite, %d in PostgreSQL", d.schema, t, c[0], c[1]))
			}
			fmt.Fprintf(stdout, "  check %-16s sqlite %8d  postgres %8d  %s\n", d.schema+"."+t, c[0], c[1], status)
		}
	}
	if err := migrateAttachments(ctx, s.DataDir, s.Postgres, stdout); err != nil {
		return fmt.Errorf("attachments: %w (run parley migrate again to resume)", err)
	}
	if len(mismatches) > 0 {
		return fmt.Errorf("count check failed:\n  %s", strings.Join(mismatches, "\n  "))
	}
	fmt.Fprintf(stdout, "done in %s: every row is in PostgreSQL; start Parley with --postgres\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func migrateDomain(ctx context.Context, path, url string, d migrationDomain, stdout io.Writer) (map[string][2]int64, error) {
	src, err := sqlstore.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if d.prepare != nil {
		if err := d.prepare(ctx, src); err != nil {
			return nil, err
		}
	}
	pool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: d.schema})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := d.open(ctx, pool); err != nil {
		return nil, err
	}
	last := time.Time{}
	progress := func(table string, copied, total int64) {
		if time.Since(last) < 200*time.Millisecond && copied < total {
			return
		}
		last = time.Now()
		fmt.Fprintf(stdout, "  %-28s %8d / %d rows\n", d.schema+"."+table, copied, total)
	}
	return sqlstore.CopySQLiteToPostgres(ctx, src, pool, d.schema, d.tables, progress)
}

// migrateAttachments copies uploaded files into the chat schema, where
// chat nodes on PostgreSQL keep them.
func migrateAttachments(ctx context.Context, dataDir, url string, stdout io.Writer) error {
	dir := filepath.Join(dataDir, "chat", "attachments")
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	src, err := chatsvc.NewFileStore(dir)
	if err != nil {
		return err
	}
	keys, err := src.Keys()
	if err != nil {
		return err
	}
	pool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: chatsvc.PostgresSchema})
	if err != nil {
		return err
	}
	defer pool.Close()
	dst := chatsvc.PostgresFiles(pool)
	for i, k := range keys {
		r, err := src.Open(ctx, k)
		if err != nil {
			return err
		}
		_, err = dst.Put(ctx, k, r)
		r.Close()
		if err != nil {
			return err
		}
		if (i+1)%100 == 0 || i+1 == len(keys) {
			fmt.Fprintf(stdout, "  %-28s %8d / %d files\n", "chat.attachment_files", i+1, len(keys))
		}
	}
	return nil
}
