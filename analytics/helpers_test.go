package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// clickhouseAddr returns the test server's native address or fails the test.
func clickhouseAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("PARLEY_TEST_CLICKHOUSE")
	if addr == "" {
		t.Fatal("PARLEY_TEST_CLICKHOUSE is not set: start a server with `scripts/clickhouse.sh start DIR` and export the line it prints (the project's test command does this)")
	}
	return addr
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newClickHouseStore opens a store on a fresh database dropped at cleanup.
func newClickHouseStore(t testing.TB) *ClickHouseStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenClickHouse(ctx, ClickHouseConfig{Addr: clickhouseAddr(t), Database: "parley_test_" + randomSuffix()})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.DropDatabase(ctx); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		s.Close()
	})
	return s
}

// newSQLiteStore opens a store on a fresh SQLite file.
func newSQLiteStore(t testing.TB) *SQLiteStore {
	t.Helper()
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "analytics.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenEvents reads testdata/golden_events.json.
func goldenEvents(t testing.TB) []ingest.Event {
	t.Helper()
	b, err := os.ReadFile("testdata/golden_events.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := make([]ingest.Event, len(raw))
	for i, r := range raw {
		e, err := ingest.Decode(r)
		if err != nil {
			t.Fatalf("golden event %d: %v", i, err)
		}
		out[i] = e
	}
	return out
}

// siteEvent builds a site.updated event.
func siteEvent(t testing.TB, site string, at time.Time, p ingest.SiteUpdatedPayload) ingest.Event {
	t.Helper()
	e, err := ingest.New(ingest.SiteUpdated, site, ingest.SiteKey(site), ingest.Actor{Role: ingest.RoleSystem, ID: "node:test"}, at, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// weekly builds a site.updated schedule: days (0 = Sunday) open from-to.
func weekly(from, to string, days ...int) [][]ingest.SiteTimeRange {
	w := make([][]ingest.SiteTimeRange, 7)
	for i := range w {
		w[i] = []ingest.SiteTimeRange{}
	}
	for _, d := range days {
		w[d] = append(w[d], ingest.SiteTimeRange{From: from, To: to})
	}
	return w
}

// testSites are the profiles of the generator's sites s1–s3: s1 Berlin
// weekdays 09–17 with a 2-minute first-response target, s2 London every
// night 22–02 with the default targets, s3 New York with a split Monday
// and a Saturday night, a 10-minute first-response and 1-minute reply
// target.
func testSites(t testing.TB, at time.Time) []ingest.Event {
	t.Helper()
	s3 := weekly("08:00", "12:00", 1)
	s3[1] = append(s3[1], ingest.SiteTimeRange{From: "13:00", To: "20:00"})
	s3[6] = []ingest.SiteTimeRange{{From: "20:00", To: "03:00"}}
	return []ingest.Event{
		siteEvent(t, "s1", at, ingest.SiteUpdatedPayload{Name: "Shop", Timezone: "Europe/Berlin", Weekly: weekly("09:00", "17:00", 1, 2, 3, 4, 5), FirstResponseTargetSeconds: 120}),
		siteEvent(t, "s2", at, ingest.SiteUpdatedPayload{Name: "Night desk", Timezone: "Europe/London", Weekly: weekly("22:00", "02:00", 0, 1, 2, 3, 4, 5, 6)}),
		siteEvent(t, "s3", at, ingest.SiteUpdatedPayload{Name: "US", Timezone: "America/New_York", Weekly: s3, FirstResponseTargetSeconds: 600, ReplyTargetSeconds: 60}),
	}
}

// newTestApplier returns an applier on s that knows the test sites.
func newTestApplier(t testing.TB, s Store) *applier {
	t.Helper()
	a := newApplier(s, slog.Default(), 0)
	if _, err := a.apply(context.Background(), testSites(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))); err != nil {
		t.Fatal(err)
	}
	return a
}

// staffSet is a StaffDirectory of fixed ids.
type staffSet map[string]bool

func (s staffSet) User(_ context.Context, id string) (access.User, error) {
	if !s[id] {
		return access.User{}, access.ErrNotFound
	}
	return access.User{ID: id, Name: "Staff " + id}, nil
}

// testStaff are the staff the generator and the golden fixture name.
func testStaff() staffSet {
	s := staffSet{"mod": true, "mod1": true, "mod2": true}
	for i := 0; i < 8; i++ {
		s[fmt.Sprintf("a%d", i)] = true
	}
	return s
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
}
