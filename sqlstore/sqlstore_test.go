package sqlstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrateAppliesEachStepOnceAcrossReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	steps := []Migration{
		{Version: 1, SQL: `CREATE TABLE a (id INTEGER PRIMARY KEY)`},
		{Version: 2, SQL: `ALTER TABLE a ADD COLUMN name TEXT NOT NULL DEFAULT ''`},
	}
	for round := 0; round < 2; round++ {
		db, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := Migrate(ctx, db, "things", steps); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// Another schema in the same file keeps its own version.
		if err := Migrate(ctx, db, "other", []Migration{{Version: 1, SQL: `CREATE TABLE IF NOT EXISTS b (id INTEGER)`}}); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := db.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE schema_name = 'things'`).Scan(&v); err != nil || v != 2 {
			t.Fatalf("round %d: version %d, %v", round, v, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO a (name) VALUES ('x')`); err != nil {
			t.Fatal(err)
		}
		var mode string
		if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode %q, %v", mode, err)
		}
		db.Close()
	}
}

func TestFailedStepLeavesVersionAndNamesTheStep(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = Migrate(ctx, db, "s", []Migration{{Version: 1, SQL: `CREATE TABLE a (id INTEGER)`}, {Version: 2, SQL: `NOT SQL`}})
	if err == nil || !strings.Contains(err.Error(), "migrate s to 2") {
		t.Fatalf("err = %v", err)
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE schema_name = 's'`).Scan(&v); err != nil || v != 1 {
		t.Fatalf("version after failed step = %d, %v; want 1", v, err)
	}
}
