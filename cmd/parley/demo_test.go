package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// `parley serve --demo` fills a fresh data directory through the pipeline:
// analytics counts weeks of conversations with bot hand-overs, missed
// chats, CSAT and agents' online time, and the moderation workers queue
// the abusive messages for review.
func TestServeDemoFillsAnalyticsAndReviewQueue(t *testing.T) {
	t.Setenv("PARLEY_ADMIN_PASSWORD", e2eAdminPassword)
	dir := t.TempDir()
	base, _ := startServe(t, dir, "--demo")
	admin := signIn(t, base, initialAdminEmail, e2eAdminPassword)
	from := time.Now().AddDate(0, 0, -35).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	var report struct {
		Series []struct {
			Points []struct {
				Conversations struct{ New, Missed, Offline int } `json:"conversations"`
				Messages      struct{ Bot int }                  `json:"messages"`
				CSAT          struct{ Rated int }                `json:"csat"`
			} `json:"points"`
		} `json:"series"`
	}
	var conversations, missed, bot, rated int
	waitUntil(t, 90*time.Second, "analytics to count the demo traffic", func() bool {
		code, body := admin.request("GET", "/api/analytics/report?bucket=week&tz=Europe/Berlin&from="+from+"&to="+to, nil, false)
		if code != http.StatusOK || json.Unmarshal(body, &report) != nil || len(report.Series) == 0 {
			return false
		}
		conversations, missed, bot, rated = 0, 0, 0, 0
		for _, p := range report.Series[0].Points {
			conversations += p.Conversations.New
			missed += p.Conversations.Missed
			bot += p.Messages.Bot
			rated += p.CSAT.Rated
		}
		return conversations >= 500 && fileExists(dir+"/demo-seeded")
	})
	t.Logf("demo: %d conversations, %d missed, %d bot messages, %d CSAT ratings", conversations, missed, bot, rated)
	if missed == 0 || bot == 0 || rated == 0 {
		t.Errorf("demo lacks variety: %d conversations, %d missed, %d bot messages, %d CSAT ratings", conversations, missed, bot, rated)
	}

	var agents struct {
		Agents []struct {
			OnlineMS int64 `json:"online_ms"`
		} `json:"agents"`
	}
	waitUntil(t, 30*time.Second, "agents' online time", func() bool {
		code, body := admin.request("GET", "/api/analytics/agents?from="+from+"&to="+to, nil, false)
		if code != http.StatusOK || json.Unmarshal(body, &agents) != nil {
			return false
		}
		for _, a := range agents.Agents {
			if a.OnlineMS > 0 {
				return true
			}
		}
		return false
	})

	waitUntil(t, 30*time.Second, "abusive demo messages in the review queue", func() bool {
		code, body := admin.request("GET", "/api/moderation/items", nil, false)
		return code == http.StatusOK && strings.Contains(string(body), `"categories"`)
	})
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
