package analytics

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestSupervisorsSeeOnlyTheirSites: on the golden fixture (sites s1 and
// s2), a supervisor of s2 gets s2's report, drill-down, CSV and overview
// only, is refused s1, and a supervisor on no site is refused; an admin
// and a supervisor of both sites see everything.
func TestSupervisorsSeeOnlyTheirSites(t *testing.T) {
	s := newSQLiteStore(t)
	loadGolden(t, s)
	srv := startAPI(t, Config{Store: s, OverviewEvery: 50 * time.Millisecond})
	total := func(cookie, extra string) int64 {
		t.Helper()
		code, body := srv.get(t, cookie, "/api/analytics/report?"+goldenParams+extra)
		if code != 200 {
			t.Fatalf("report%s: %d %s", extra, code, body)
		}
		var r Report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, se := range r.Series {
			for _, p := range se.Points {
				n += p.Conversations.New
			}
		}
		return n
	}
	all, both, s2, s2Only := total(srv.admin, ""), total(srv.supervisor, ""), total(srv.admin, "&site=s2"), total(srv.supS2, "")
	if all == 0 || both != all || s2 == 0 || s2 >= all || s2Only != s2 {
		t.Fatalf("new conversations: admin %d, both sites %d, s2 %d, s2's supervisor %d", all, both, s2, s2Only)
	}
	for _, path := range []string{"/api/analytics/report", "/api/analytics/conversations", "/api/analytics/export.csv",
		"/api/analytics/overview", "/api/analytics/moderation", "/api/analytics/agents"} {
		if code, body := srv.get(t, srv.supS2, path+"?"+goldenParams+"&site=s1"); code != 403 {
			t.Errorf("%s?site=s1 as s2's supervisor = %d %s, want 403", path, code, body)
		}
		if code, body := srv.get(t, srv.nobody, path+"?"+goldenParams); code != 403 {
			t.Errorf("%s as a supervisor on no site = %d %s, want 403", path, code, body)
		}
	}
	code, body := srv.get(t, srv.supS2, "/api/analytics/export.csv?"+goldenParams)
	if code != 200 {
		t.Fatalf("export: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "s2,") {
			t.Fatalf("s2's supervisor exports a row of another site: %s", l)
		}
	}
	if int64(len(lines)-1) != s2 {
		t.Fatalf("export has %d rows, want %d", len(lines)-1, s2)
	}
	code, body = srv.get(t, srv.supS2, "/api/analytics/conversations?"+goldenParams+"&limit=1000")
	var drill struct {
		Conversations []struct {
			SiteID string `json:"site_id"`
		}
	}
	if code != 200 || json.Unmarshal(body, &drill) != nil || int64(len(drill.Conversations)) != s2 {
		t.Fatalf("drill-down: %d, %d rows, want %d", code, len(drill.Conversations), s2)
	}
	for _, c := range drill.Conversations {
		if c.SiteID != "s2" {
			t.Fatalf("drill-down row of %s", c.SiteID)
		}
	}
}
