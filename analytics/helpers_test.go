package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// goldenSchedules are the business hours the golden fixture assumes.
func goldenSchedules(t testing.TB) StaticSchedules {
	t.Helper()
	weekday := []Span{{Open: 9 * 60, Close: 17 * 60}}
	night := []Span{{Open: 22 * 60, Close: 2 * 60}}
	s1 := BusinessHours{TZ: "Europe/Berlin"}
	for d := time.Monday; d <= time.Friday; d++ {
		s1.Days[d] = weekday
	}
	s2 := BusinessHours{TZ: "Europe/London"}
	for d := range s2.Days {
		s2.Days[d] = night
	}
	return StaticSchedules{"s1": s1, "s2": s2}
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
