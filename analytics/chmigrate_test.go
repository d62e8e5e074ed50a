package analytics

import (
	"context"
	"testing"
	"time"
)

// schema1FactColumns are conversation_facts' columns in schema 1.
const schema1FactColumns = `site_id, conversation_id, version, channel, team_id, agent_id, visitor_id,
	started_at, started_in_hours, last_event_at, wait_from, first_reply_at, first_response_ms, first_response_bh_ms,
	reply_ms, reply_bh_ms, queue_wait_ms, queue_wait_bh_ms, resolved_at, resolution_ms, resolution_bh_ms, reopens,
	miss_candidate, miss_at, left_at, csat, csat_at, msgs_visitor, msgs_agent, msgs_bot, notes, msg_at, msg_role, open, waiting_since,
	assign_agents, assign_from, assign_to`

// writeSchema1Facts writes facts the way a schema-1 build did: its
// columns only, version = number of events.
func writeSchema1Facts(t *testing.T, ch *ClickHouseStore, facts []ConversationFacts) {
	t.Helper()
	ctx := context.Background()
	batch, err := ch.conn.PrepareBatch(ctx, "INSERT INTO conversation_facts ("+schema1FactColumns+")")
	if err != nil {
		t.Fatal(err)
	}
	for i := range facts {
		f := &facts[i]
		row := factRow(f)[:38]
		row[2] = uint64(f.Version & (1<<versionBits - 1))
		if err := batch.Append(row...); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestClickHouseUpgradeFromV1 writes facts into a schema-1 database the
// way a schema-1 build did, then migrates it to the current schema:
// message columns (schema 2) are computed for the old rows, the
// engagement lists (schema 3) default to one entry per assignment so
// every report runs on old rows, and once the loader rebuilt the facts
// (as it does when each site's profile arrives) reports equal SQLite's,
// before and after merges.
func TestClickHouseUpgradeFromV1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sq, ch := newSQLiteStore(t), newClickHouseStore(t)
	for _, tbl := range []string{"events", "conversation_facts", "moderation_facts", "schema_versions", "site_profiles", "site_facts", "held_events", "staff_seen"} {
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
	a := newTestApplier(t, sq)
	if _, err := a.apply(ctx, events); err != nil {
		t.Fatal(err)
	}
	old, err := sq.activeFacts(ctx, Query{From: start.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	writeSchema1Facts(t, ch, old)

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
	query := func(tz string, split Dimension) Query {
		q := Query{From: start, To: start.Add(9 * 24 * time.Hour), Bucket: BucketDay, Location: mustLoc(t, tz), Split: split, Now: start.Add(10 * 24 * time.Hour)}
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
		return q
	}
	// Old rows: every report runs; messages and conversation starts count as before.
	for _, split := range []Dimension{DimNone, DimAgent, DimTeam} {
		q := query("Europe/Berlin", split)
		rs, err := sq.Report(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := ch.Report(ctx, q)
		if err != nil {
			t.Fatalf("report on schema-1 rows split by %q: %v", split, err)
		}
		if split == DimNone {
			var msgsS, msgsC, newS, newC int64
			for i, p := range rc.Series[0].Points {
				msgsC += p.Messages.Visitor + p.Messages.Agent
				msgsS += rs.Series[0].Points[i].Messages.Visitor + rs.Series[0].Points[i].Messages.Agent
				newC += p.Conversations.New + p.Conversations.Offline
				newS += rs.Series[0].Points[i].Conversations.New + rs.Series[0].Points[i].Conversations.Offline
			}
			if msgsC == 0 || msgsC != msgsS || newC != newS {
				t.Fatalf("schema-1 rows: messages %d vs %d, conversations %d vs %d", msgsC, msgsS, newC, newS)
			}
		}
	}
	if _, err := ch.Conversations(ctx, query("UTC", DimAgent), Drill{Metric: "transfers_in", Key: "a1"}); err != nil {
		t.Fatalf("engagement drill-down on schema-1 rows: %v", err)
	}

	// The loader rebuilds the facts: its versions replace the old rows.
	if _, err := newTestApplier(t, ch).apply(ctx, events); err != nil {
		t.Fatal(err)
	}
	compare := func(what string) {
		t.Helper()
		for _, tz := range []string{"UTC", "Europe/Berlin"} {
			for _, split := range []Dimension{DimNone, DimAgent} {
				q := query(tz, split)
				rs, err := sq.Report(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				rc, err := ch.Report(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				assertSame(t, what+" "+tz, rs.Series, rc.Series)
			}
		}
	}
	compare("rebuilt next to old parts")
	if err := ch.conn.Exec(ctx, "OPTIMIZE TABLE conversation_facts FINAL"); err != nil {
		t.Fatal(err)
	}
	compare("rebuilt, merged")
}
