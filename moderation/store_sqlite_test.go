package moderation

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley/sqlstore"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// The flood count reads a visitor's window from the index alone: with the
// fingerprint and event id in it, SQLite does not look up each of the
// window's rows in the table (about 60 a message for a visitor sending
// two a second over a 30-second window).
func TestSQLiteFloodCountReadsOnlyTheIndex(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "moderation.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := OpenSQLite(ctx, db); err != nil {
		t.Fatal(err)
	}
	plan := sqltest.SQLitePlan(t, db, sqliteFloodCount, "fp", "s", "v", 1, 2, "e")
	if len(plan) != 1 || !strings.Contains(plan[0], "USING COVERING INDEX mod_flood_visitor") {
		t.Fatalf("flood count plan %q, want one search using the covering index mod_flood_visitor", plan)
	}
}
