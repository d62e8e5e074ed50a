package analytics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestStoresAgree loads the same generated events into SQLite and
// ClickHouse and compares every query variant: both stores must answer
// identically, bucket by bucket.
func TestStoresAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sq, ch := newSQLiteStore(t), newClickHouseStore(t)
	g := newGenerator(7)
	start := time.Date(2024, 10, 20, 0, 0, 0, 0, time.UTC) // spans the EU DST end on 27 Oct
	events := g.events(250, start, 14*24*time.Hour)
	for _, s := range []Store{sq, ch} {
		a := newTestApplier(t, s)
		for i := 0; i < len(events); i += 700 {
			if _, err := a.apply(ctx, events[i:min(i+700, len(events))]); err != nil {
				t.Fatalf("%s: %v", s.Backend(), err)
			}
		}
	}
	locs := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"}
	variants := 0
	for _, tz := range locs {
		loc := mustLoc(t, tz)
		for _, b := range []Bucket{BucketNone, BucketHour, BucketDay, BucketWeek} {
			for _, split := range []Dimension{DimNone, DimSite, DimTeam, DimAgent, DimChannel} {
				for _, clk := range []Clock{ClockCalendar, ClockBusiness} {
					if b != BucketDay && split != DimNone {
						continue // keep the test quick: splits are checked on day buckets
					}
					q := Query{From: start.Add(24 * time.Hour), To: start.Add(12 * 24 * time.Hour), Bucket: b, Location: loc,
						Split: split, Clock: clk, Now: start.Add(20 * 24 * time.Hour)}
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
					if len(rs.Series) == 0 || rs.Series[0].Points == nil {
						t.Fatalf("empty report for %+v", q)
					}
					assertSame(t, "report "+tz+"/"+string(b)+"/"+string(split)+"/"+string(clk), rs.Series, rc.Series)
					variants++
				}
			}
		}
	}
	// Reports read chunks of the range in parallel, cut at bucket starts:
	// any number of chunks (cuts near DST changes included) gives the same answer.
	for _, tz := range []string{"Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"} {
		for _, b := range []Bucket{BucketHour, BucketDay, BucketWeek} {
			q := Query{From: start.Add(24*time.Hour + 37*time.Minute), To: start.Add(12 * 24 * time.Hour), Bucket: b,
				Location: mustLoc(t, tz), Split: DimAgent, Now: start.Add(20 * 24 * time.Hour)}
			if err := q.Validate(); err != nil {
				t.Fatal(err)
			}
			rs, err := sq.Report(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 3, 40} {
				ch.parallelism = n
				rc, err := ch.Report(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				assertSame(t, fmt.Sprintf("report in %d chunks %s/%s", n, tz, b), rs.Series, rc.Series)
			}
		}
	}
	ch.parallelism = 1
	// Filters and drill-downs.
	q := Query{From: start, To: start.Add(15 * 24 * time.Hour), Bucket: BucketDay, Location: mustLoc(t, "Europe/Berlin"), Now: start.Add(20 * 24 * time.Hour)}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Filter{{SiteID: "s2"}, {Sites: []string{"s1", "s3"}}, {Sites: []string{"s2"}, Channel: "widget"}, {TeamID: "t1"}, {AgentID: "a3"}, {Channel: "offline_form"}, {Hours: "in"}, {Hours: "out", SiteID: "s3"}, {SiteID: "s1' OR 1=1 --", TeamID: `t1\' ?`}} {
		qf := q
		qf.Filter = f
		rs, err := sq.Report(ctx, qf)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := ch.Report(ctx, qf)
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, "filtered report", rs.Series, rc.Series)
		if strings.Contains(f.SiteID, "OR 1=1") {
			for _, p := range rc.Series[0].Points {
				if p.Conversations.New != 0 || p.Messages.Visitor != 0 {
					t.Fatalf("a quoted filter value matched rows: %+v", p)
				}
			}
		}
		for metric := range drillMetrics {
			for _, clk := range []Clock{ClockCalendar, ClockBusiness} {
				qd := qf
				qd.Clock = clk
				ds, err := sq.Conversations(ctx, qd, Drill{Bucket: rs.Series[0].Points[3].Bucket, Metric: metric})
				if err != nil {
					t.Fatal(err)
				}
				dc, err := ch.Conversations(ctx, qd, Drill{Bucket: rs.Series[0].Points[3].Bucket, Metric: metric})
				if err != nil {
					t.Fatalf("drill-down %s: %v", metric, err)
				}
				assertSame(t, "drill-down "+metric+" "+string(clk), ds, dc)
			}
		}
	}
	for _, qm := range []Query{q, func() Query {
		x := q
		x.Filter = Filter{SiteID: "s2"}
		x.Location = mustLoc(t, "America/New_York")
		return x
	}()} {
		ms, err := sq.ModerationFacts(ctx, qm)
		if err != nil {
			t.Fatal(err)
		}
		mc, err := ch.ModerationFacts(ctx, qm)
		if err != nil {
			t.Fatal(err)
		}
		rs, rc := moderationReport(qm, ms), moderationReport(qm, mc)
		if len(rs.Items) == 0 || len(rs.Moderators) == 0 {
			t.Fatal("generated data has no moderation items or decisions")
		}
		assertSame(t, "moderation", rs, rc)
		is, err := moderationItems(qm, ModerationDrill{What: "backlog", Bucket: rs.Series[5].Bucket}, ms)
		if err != nil {
			t.Fatal(err)
		}
		ic, err := moderationItems(qm, ModerationDrill{What: "backlog", Bucket: rs.Series[5].Bucket}, mc)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(is)) != rs.Series[5].Backlog {
			t.Fatalf("backlog drill-down lists %d items, the report says %d", len(is), rs.Series[5].Backlog)
		}
		assertSame(t, "moderation backlog drill-down", is, ic)
	}
	for _, now := range []time.Time{start.Add(3 * 24 * time.Hour), start.Add(9*24*time.Hour + 13*time.Hour)} {
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		for _, site := range []string{"", "s2"} {
			os, err := sq.Overview(ctx, site, day, now)
			if err != nil {
				t.Fatal(err)
			}
			oc, err := ch.Overview(ctx, site, day, now)
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, "overview "+site, os, oc)
		}
	}
	as, err := sq.Assignments(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := ch.Assignments(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	from, to, now := q.From.UnixMilli(), q.To.UnixMilli(), q.Now.UnixMilli()
	assertSame(t, "agent load", agentLoad(as, from, to, now), agentLoad(ac, from, to, now))
	t.Logf("%d report variants agree on %d events", variants, len(events))
}
