// Package sqltest gives tests real databases: a fresh SQLite file or a
// fresh PostgreSQL database of their own, removed when the test ends.
// PostgreSQL is the machine's server (PARLEY_TEST_POSTGRES, default
// postgres://postgres@127.0.0.1:5432/postgres, the administrative
// database used to create and drop test databases); a test that needs it
// fails, never skips, when it cannot be reached. Imported by tests only.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley/sqlstore"
)

// DefaultAdminURL is used when PARLEY_TEST_POSTGRES is not set.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns the administrative PostgreSQL URL tests create databases with.
func AdminURL() string {
	if u := os.Getenv("PARLEY_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultAdminURL
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// PostgresURL creates an empty database for t and returns its URL; the
// database is dropped (with any connections left) when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is needed by this test and did not answer at %s: %v\n"+
			"start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set PARLEY_TEST_POSTGRES",
			sqlstore.RedactURL(admin), err)
	}
	defer conn.Close(context.Background())
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := strings.ToLower(t.Name())
	name = strings.Trim(unsafeName.ReplaceAllString(name, "_"), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = "parley_t_" + name + "_" + hex.EncodeToString(suffix)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("PARLEY_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres opens a pool on a fresh database (PostgresURL) with the
// domain's schema as its search path; the pool closes when t ends.
func Postgres(t testing.TB, schema string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	pool, err := sqlstore.OpenPostgres(context.Background(), PostgresURL(t), sqlstore.PostgresOptions{Schema: schema, MaxConns: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// SQLite opens a fresh SQLite file in t's temporary directory.
func SQLite(t testing.TB, name string) *sql.DB {
	t.Helper()
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), name+".db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Backends are the store implementations a conformance suite runs on.
var Backends = []string{"sqlite", "postgres"}

// Run runs f once per backend as a subtest named after it.
func Run(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// Store opens a fresh store of a domain on backend ("sqlite": a file
// named name; "postgres": a database with the domain's schema and a pool
// of maxConns) with the domain's own open functions.
func Store[S any](t testing.TB, backend, name, schema string, maxConns int32,
	openSQLite func(context.Context, *sql.DB) (S, error), openPostgres func(context.Context, *pgxpool.Pool) (S, error)) S {
	t.Helper()
	var (
		s   S
		err error
	)
	switch backend {
	case "sqlite":
		s, err = openSQLite(context.Background(), SQLite(t, name))
	case "postgres":
		s, err = openPostgres(context.Background(), Postgres(t, schema, maxConns))
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	if err != nil {
		t.Fatalf("open %s store on %s: %v", name, backend, err)
	}
	return s
}

// SQLitePlan returns the steps of SQLite's query plan for q (the detail
// column of EXPLAIN QUERY PLAN), for tests that check which index a
// query reads.
func SQLitePlan(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// CopyToPostgres runs `parley migrate`'s copy of tables from src into
// dst's schema and fails t unless table has want rows on both sides.
func CopyToPostgres(t testing.TB, src *sql.DB, dst *pgxpool.Pool, schema string, tables []sqlstore.TableCopy, table string, want int64) {
	t.Helper()
	counts, err := sqlstore.CopySQLiteToPostgres(context.Background(), src, dst, schema, tables, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := counts[table]; c != [2]int64{want, want} {
		t.Fatalf("%s copied: %d rows in SQLite, %d in PostgreSQL; want %d", table, c[0], c[1], want)
	}
}
