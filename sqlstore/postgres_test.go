package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/parleychat/parley/sqlstore"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

var steps = []sqlstore.Migration{
	{Version: 1, SQL: `CREATE TABLE things (id TEXT PRIMARY KEY); CREATE TABLE applied (step INTEGER NOT NULL)`},
	{Version: 2, SQL: `INSERT INTO applied VALUES (2); ALTER TABLE things ADD COLUMN name TEXT NOT NULL DEFAULT ''`},
}

// Several nodes starting at once must apply every step exactly once.
func TestPostgresMigrationsRaceFree(t *testing.T) {
	ctx := context.Background()
	url := sqltest.PostgresURL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: "demo", MaxConns: 2})
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- sqlstore.MigratePostgres(ctx, pool, "demo", steps)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("step 2 ran %d times, want once", n)
	}
	// The tables live in the domain's schema, not in public.
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'demo' AND table_name = 'things'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("things not in schema demo: n=%d err=%v", n, err)
	}
}

func TestPostgresRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	url := sqltest.PostgresURL(t)
	pool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := sqlstore.MigratePostgres(ctx, pool, "demo", steps); err != nil {
		t.Fatal(err)
	}
	err = sqlstore.MigratePostgres(ctx, pool, "demo", steps[:1])
	if !errors.Is(err, sqlstore.ErrSchemaTooNew) || !strings.Contains(err.Error(), "demo is at version 2, this parley knows versions up to 1") {
		t.Fatalf("older binary on newer schema: got %v", err)
	}
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t, "x")
	if err := sqlstore.Migrate(ctx, db, "demo", steps); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(ctx, db, "demo", steps); err != nil {
		t.Fatalf("second run must be a no-op: %v", err)
	}
	if err := sqlstore.Migrate(ctx, db, "demo", steps[:1]); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
}

func TestRedactURLHidesPasswords(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:s3cret@db:5432/parley":         "postgres://u:xxxxx@db:5432/parley",
		"postgres://u@db/parley?password=s3cret&x=1": "postgres://u@db/parley?password=xxxxx&x=1",
		"postgresql://db/parley":                     "postgresql://db/parley",
	} {
		if got := sqlstore.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	if err := sqlstore.ValidatePostgresURL("mysql://u:s3cret@x/y"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL error leaks or is missing: %v", err)
	}
}

// TestPlanEachTimeOutlivesAStaleGenericPlan shows the hazard PlanEachTime
// exists for and that it removes it: an update of rows picked by a list
// of keys, run a few times while its table is nearly empty, settles on a
// generic plan that scans the whole table, and keeps it once the table has
// grown; the same statement planned for its arguments reads by index.
func TestPlanEachTimeOutlivesAStaleGenericPlan(t *testing.T) {
	ctx := context.Background()
	pool := sqltest.Postgres(t, "planned", 1) // one connection: one statement cache
	for _, q := range []string{
		`CREATE SCHEMA IF NOT EXISTS planned`,
		`CREATE TABLE rows (id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL, topic TEXT NOT NULL, msg_key TEXT NOT NULL,
			value BYTEA NOT NULL, created_at BIGINT NOT NULL, sent_at BIGINT)`,
		`CREATE INDEX rows_pending ON rows(id) WHERE sent_at IS NULL`,
		`CREATE INDEX rows_sent ON rows(sent_at) WHERE sent_at IS NOT NULL`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const mark = `UPDATE rows SET sent_at = $1 WHERE id = ANY($2)`
	batch := func(from int64) []int64 { // a relay pass marks a few dozen rows
		ids := make([]int64, 30)
		for i := range ids {
			ids[i] = from + int64(i)
		}
		return ids
	}
	// PostgreSQL weighs a generic plan from the sixth call on. With a
	// relay's few dozen keys a custom plan looks dearer than a generic one
	// made for an "about ten pages" table, so the generic plan wins: a
	// sequential scan, as on a fresh database at the first relay passes.
	for i := int64(0); i < 8; i++ {
		if _, err := pool.Exec(ctx, `INSERT INTO rows (event_id, topic, msg_key, value, created_at)
			SELECT md5(random()::text), 'parley.chat.v1', md5(random()::text), convert_to(repeat('x', 600), 'UTF8'), 1 FROM generate_series(1, 2)`); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, mark, i, batch(1+2*i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO rows (event_id, topic, msg_key, value, created_at)
		SELECT md5(random()::text), 'parley.chat.v1', md5(random()::text), convert_to(repeat('x', 600), 'UTF8'), 1 FROM generate_series(1, 20000)`); err != nil {
		t.Fatal(err)
	}
	scanned := func(args ...any) int64 {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		// The connection's reads not yet reported, before and after.
		const read = `SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'rows'`
		var before, after int64
		if err := tx.QueryRow(ctx, read).Scan(&before); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, mark, args...); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(ctx, read).Scan(&after); err != nil {
			t.Fatal(err)
		}
		return after - before
	}
	if n := scanned(int64(9), batch(20000)); n < 20000 {
		t.Fatalf("the cached statement read %d rows sequentially; this test expects PostgreSQL's stale generic plan (a scan of all 20,016)", n)
	}
	if n := scanned(sqlstore.PlanEachTime, int64(9), batch(20000)); n != 0 {
		t.Fatalf("planned for its arguments, the statement still read %d rows sequentially", n)
	}
}
