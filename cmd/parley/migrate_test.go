package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// `parley migrate` moves a `parley serve --demo` data directory (with live
// chat history on top) into PostgreSQL: staff, chat history, the review
// queue and the analytics rebuilt from the topics answer the same before
// and after, and a second run copies nothing twice.
func TestMigrateDemoIntoPostgres(t *testing.T) {
	t.Setenv("PARLEY_ADMIN_PASSWORD", e2eAdminPassword)
	dir := t.TempDir()
	base, stop := startServe(t, dir, "--demo")
	admin := signIn(t, base, initialAdminEmail, e2eAdminPassword)
	from := time.Now().AddDate(0, 0, -35).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	report := "/api/analytics/report?bucket=week&tz=Europe/Berlin&from=" + from + "&to=" + to
	waitUntil(t, 120*time.Second, "analytics to count the demo traffic", func() bool {
		code, body := admin.request("GET", report, nil, false)
		return code == http.StatusOK && fileExists(dir+"/demo-seeded") && strings.Contains(string(body), `"new":`)
	})

	// Live history on top of the demo: a visitor talks to an agent.
	var sites struct {
		Sites []siteInfo `json:"sites"`
	}
	admin.call("GET", "/api/chat/sites", nil, http.StatusOK, &sites)
	site := sites.Sites[0]
	origin := base
	visitor := newGoVisitor(t, base, site.Key, origin)
	conv := visitor.say("m1", "Hello, where is my order 1234?")
	visitor.say("m2", "It was due on Monday.")
	agent := agentSocket(t, admin)
	agent.send(map[string]any{"type": "send", "client_id": "r1", "conversation_id": conv, "text": "Let me check that for you."})
	agent.expect("ack of the reply", func(f map[string]any) bool { return f["type"] == "ack" && f["client_id"] == "r1" })
	visitor.expect("the agent's reply", func(f map[string]any) bool { return f["type"] == "message" })

	snapshot := func(c *staffClient) map[string]string {
		out := map[string]string{}
		for name, path := range map[string]string{
			"users":         "/api/admin/users",
			"teams":         "/api/admin/teams",
			"sites":         "/api/chat/sites",
			"conversations": "/api/chat/conversations?status=all&limit=200",
			"messages":      "/api/chat/conversations/" + conv + "/messages",
			"review queue":  "/api/moderation/items?limit=200",
			"report":        report,
		} {
			var code int
			var body []byte
			waitUntil(t, 60*time.Second, name, func() bool {
				code, body = c.request("GET", path, nil, false)
				return code == http.StatusOK
			})
			out[name] = canonical(t, body)
		}
		return out
	}
	// Analytics and moderation have caught up with the demo (the live
	// conversation too) when every consumer group has committed all it was
	// given, every outbox is empty, and the report and the review queue
	// have stopped changing. A pause in the queue's changes alone is not
	// enough: with every role sharing two cores, moderation may still be
	// judging clean messages (which add no item) when analytics is done.
	var last []byte
	stableSince := time.Now()
	waitUntil(t, 240*time.Second, "the pipeline to be idle and the analytics report and the review queue to settle", func() bool {
		if !pipelineIdle(t, base) {
			stableSince = time.Now()
			return false
		}
		_, raw := admin.request("GET", report, nil, false)
		_, queue := admin.request("GET", "/api/moderation/items?limit=200", nil, false)
		body := []byte(canonical(t, raw) + canonical(t, queue))
		if !bytes.Equal(body, last) {
			if last != nil && os.Getenv("PARLEY_TEST_DEBUG") != "" {
				t.Logf("report changed:\n%s\n%s", truncateForLog(string(last)), truncateForLog(string(body)))
			}
			last, stableSince = body, time.Now()
		}
		// Longer than the consumers' 5 s lag reading, so that a zero lag
		// read before the last events arrived cannot pass for idle.
		return time.Since(stableSince) > 6*time.Second
	})
	before := snapshot(admin)
	stop()

	pg := sqltest.PostgresURL(t)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "--data", dir, "--postgres", pg}, &out, &errOut, nil); err != nil {
		t.Fatalf("migrate: %v\n%s%s", err, out.String(), errOut.String())
	}
	t.Logf("first run:\n%s", out.String())
	for _, want := range []string{"chat.messages", "moderation.mod_items", "access.staff_users", "every row is in PostgreSQL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("migrate output lacks %q", want)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "--data", dir, "--postgres", pg}, &out, &errOut, nil); err != nil {
		t.Fatalf("second migrate: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "MISSING") {
		t.Fatalf("second run reports missing rows:\n%s", out.String())
	}

	// Analytics rebuilt from the topics answers as before.
	out.Reset()
	if err := run(context.Background(), []string{"analytics", "replay", "--data", dir}, &out, &errOut, nil); err != nil {
		t.Fatalf("analytics replay: %v\n%s", err, errOut.String())
	}

	base2, _ := startServe(t, dir, "--postgres", pg)
	admin2 := signIn(t, base2, initialAdminEmail, e2eAdminPassword)
	after := snapshot(admin2)
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s differ after the move to PostgreSQL:\nbefore %s\nafter  %s", name, truncateForLog(b), truncateForLog(after[name]))
		}
	}
	// And the moved deployment keeps working: the visitor writes again.
	visitor2 := newGoVisitor(t, base2, site.Key, origin)
	if visitor2.say("m3", "Any news?") == "" {
		t.Fatal("no conversation after the move")
	}
}

// canonical re-encodes JSON so that equal documents compare equal; times
// that say when a request was answered are dropped.
func canonical(t *testing.T, body []byte) string {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil && err != io.EOF {
		t.Fatalf("not JSON: %s", body)
	}
	var strip func(any) any
	strip = func(x any) any {
		switch y := x.(type) {
		case map[string]any:
			for _, k := range []string{"snippet", "computed_at", "at", "online", "queue_position", "local_time"} {
				delete(y, k)
			}
			for k, v := range y {
				y[k] = strip(v)
			}
		case []any:
			for i := range y {
				y[i] = strip(y[i])
			}
		}
		return x
	}
	b, _ := json.Marshal(strip(v))
	return string(b)
}

func truncateForLog(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// pipelineIdle reports whether the server's /metrics show no consumer lag
// (parley_consumer_lag, read from the broker every few seconds) and no
// outbox backlog (parley_outbox_backlog) in any group or store.
func pipelineIdle(t *testing.T, base string) bool {
	t.Helper()
	code, metrics := get(t, base+"/metrics")
	if code != http.StatusOK {
		return false
	}
	seen := 0
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "parley_consumer_lag{") && !strings.HasPrefix(line, "parley_outbox_backlog{") {
			continue
		}
		seen++
		if f := strings.Fields(line); len(f) != 2 || f[1] != "0" {
			return false
		}
	}
	return seen > 0
}
