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
