package moderation

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley/sqlstore"
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
	rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+sqliteFloodCount, "fp", "s", "v", 1, 2, "e")
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
	if len(plan) != 1 || !strings.Contains(plan[0], "USING COVERING INDEX mod_flood_visitor") {
		t.Fatalf("flood count plan %q, want one search using the covering index mod_flood_visitor", plan)
	}
}
