package analytics

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// TestClickHouseUpgradeFromV1 loads facts into a schema-1 database, then
// migrates it: the message columns added by schema 2 are computed for the
// old rows (on read, until merges store them), new rows get them on
// insert, and reports still equal SQLite's.
func TestClickHouseUpgradeFromV1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sq, ch := newSQLiteStore(t), newClickHouseStore(t)
	for _, tbl := range []string{"events", "conversation_facts", "moderation_facts", "schema_versions"} {
		if err := ch.conn.Exec(ctx, "DROP TABLE "+tbl); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.migrateTo(ctx, chMigrations[:1]); err != nil {
		t.Fatal(err)
	}
	var cols uint64
	if err := ch.conn.QueryRow(ctx, `SELECT count() FROM system.columns WHERE database = ? AND table = 'conversation_facts' AND name = 'msg_slots'`, ch.db).Scan(&cols); err != nil || cols != 0 {
		t.Fatalf("schema 1 has msg_slots (%d) or failed: %v", cols, err)
	}
	g := newGenerator(11)
	start := time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC)
	events := g.events(150, start, 7*24*time.Hour)
	half := len(events) / 2
	load := func(evs []ingest.Event) {
		t.Helper()
		for _, s := range []Store{sq, ch} {
			a := &applier{store: s, schedules: goldenSchedules(t), log: slog.Default()}
			if _, err := a.apply(ctx, evs); err != nil {
				t.Fatalf("%s: %v", s.Backend(), err)
			}
		}
	}
	compare := func(what string) {
		t.Helper()
		for _, tz := range []string{"UTC", "Europe/Berlin"} {
			q := Query{From: start, To: start.Add(8 * 24 * time.Hour), Bucket: BucketDay, Location: mustLoc(t, tz), Split: DimAgent, Now: start.Add(10 * 24 * time.Hour)}
			if err := q.Validate(); err != nil {
				t.Fatal(err)
			}
			rs, err := sq.Report(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := ch.Report(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var msgs int64
			for _, s := range rc.Series {
				for _, p := range s.Points {
					msgs += p.Messages.Visitor
				}
			}
			if msgs == 0 {
				t.Fatalf("%s: no messages counted", what)
			}
			assertSame(t, what+" "+tz, rs.Series, rc.Series)
		}
	}
	load(events[:half])
	if err := ch.migrate(ctx); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if err := ch.migrate(ctx); err != nil {
		t.Fatalf("second upgrade run: %v", err)
	}
	var v uint32
	if err := ch.conn.QueryRow(ctx, `SELECT max(version) FROM schema_versions`).Scan(&v); err != nil || int(v) != chMigrations[len(chMigrations)-1].Version {
		t.Fatalf("schema version %d after upgrade (err %v)", v, err)
	}
	compare("upgraded, old rows")
	load(events[half:]) // rewrites some conversations: new rows next to old parts
	compare("upgraded, mixed parts")
	if err := ch.conn.Exec(ctx, "OPTIMIZE TABLE conversation_facts FINAL"); err != nil {
		t.Fatal(err)
	}
	compare("upgraded, merged")
}
