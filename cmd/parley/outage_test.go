package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/analytics/chtest"
)

// TestServeStartsWithClickHouseDown: `parley serve --clickhouse` with
// ClickHouse down starts every other role (chat answers a visitor at
// once), reports analytics as not ready in /readyz within the probe's
// deadline, and connects, migrates and loads in the background as soon as
// ClickHouse comes up.
func TestServeStartsWithClickHouseDown(t *testing.T) {
	pc := chtest.Start(t)
	addr := pc.Addr
	pc.Stop(t)

	t.Setenv("PARLEY_ADMIN_PASSWORD", e2eAdminPassword)
	base, _ := startServe(t, t.TempDir(), "--clickhouse", addr, "--clickhouse-db", "outage_serve", "--log-level", "warn")
	readyz := func() (int, map[string]string, time.Duration) {
		t.Helper()
		start := time.Now()
		code, body := get(t, base+"/readyz")
		var r struct {
			Checks map[string]string `json:"checks"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("/readyz: %v: %s", err, body)
		}
		return code, r.Checks, time.Since(start)
	}
	waitUntil(t, 30*time.Second, "chat ready with ClickHouse down", func() bool {
		_, checks, _ := readyz()
		return checks["chat"] == "ok"
	})
	code, checks, took := readyz()
	if code != http.StatusServiceUnavailable || !strings.Contains(checks["analytics"], "clickhouse at "+addr) || checks["kafka"] != "ok" || took > 3500*time.Millisecond {
		t.Fatalf("/readyz with ClickHouse down = %d %v after %s", code, checks, took)
	}
	// Chat works: a visitor gets a session and an answer to a message.
	p := &parleyE2E{t: t, base: base}
	p.admin = signIn(t, base, initialAdminEmail, e2eAdminPassword)
	var sites struct {
		Sites []siteInfo `json:"sites"`
	}
	p.admin.call("GET", "/api/chat/sites", nil, http.StatusOK, &sites)
	v := newGoVisitor(t, base, sites.Sites[0].Key, base)
	if conv := v.say("o-1", "hello while analytics is down"); conv == "" {
		t.Fatal("no conversation")
	}
	var pipe map[string]any
	p.admin.call("GET", "/api/analytics/pipeline", nil, http.StatusOK, &pipe)
	if pipe["ready"] != false || !strings.Contains(pipe["error"].(string), "not connected") {
		t.Fatalf("pipeline with ClickHouse down = %v", pipe)
	}

	pc.Restart(t)
	waitUntil(t, 90*time.Second, "/readyz 200 once ClickHouse is up", func() bool {
		code, _, _ := readyz()
		return code == http.StatusOK
	})
	// The conversation written meanwhile reaches the reports.
	waitUntil(t, 60*time.Second, "the conversation counted", func() bool {
		n, _, _ := p.reportTotals("")
		return n == 1
	})
}
