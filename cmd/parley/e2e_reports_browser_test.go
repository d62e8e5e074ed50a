package main

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// TestE2EReportsSupervisorsRunTeamsBy: on weeks of demo traffic (late
// answers, missed chats left and closed for inactivity, transfers, CSAT
// with comments, abuse flagged by the workers) and two decisions by a
// moderator, an admin tightens the site's first-response target on the
// Sites page (a bad value gets the server's message); analytics
// recomputes the site; the supervisor's reports show the service level,
// missed vs answered late with the reason of each, engagements and
// transfers per agent, the CSAT distribution with comments; the live
// overview shows today's service level; the moderation report (also for
// moderators) drills down to the decisions.
func TestE2EReportsSupervisorsRunTeamsBy(t *testing.T) {
	t.Setenv("PARLEY_ADMIN_PASSWORD", e2eAdminPassword)
	dir := t.TempDir()
	base, _ := startServe(t, dir, "--demo")
	p := &parleyE2E{t: t, base: base}
	p.admin = signIn(t, base, initialAdminEmail, e2eAdminPassword)
	var sites struct {
		Sites []siteInfo `json:"sites"`
	}
	p.admin.call("GET", "/api/chat/sites", nil, http.StatusOK, &sites)
	p.site = sites.Sites[0]
	p.createStaff("sam@e2e.test", "Sam Supervisor", "supervisor")
	p.createStaff("mo@e2e.test", "Mo Moderator", "moderator")
	from := time.Now().AddDate(0, 0, -29).UTC().Truncate(24 * time.Hour)
	to := time.Now().Add(24 * time.Hour).UTC().Truncate(24 * time.Hour)
	rng := "&tz=UTC&from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	type total struct{ New, Late, Missed, Met, Engagements, Transfers, Rated int }
	totals := func() total {
		var r struct {
			Series []struct {
				Points []struct {
					Conversations struct{ New, Late, Missed int }
					SLA           struct {
						FirstResponse struct{ Met int } `json:"first_response"`
					}
					Engagements struct {
						Count        int
						TransfersOut int `json:"transfers_out"`
					}
					CSAT struct{ Rated int }
				}
			}
		}
		p.admin.call("GET", "/api/analytics/report?"+strings.TrimPrefix(rng, "&"), nil, http.StatusOK, &r)
		var tt total
		for _, s := range r.Series {
			for _, pt := range s.Points {
				tt.New += pt.Conversations.New
				tt.Late += pt.Conversations.Late
				tt.Missed += pt.Conversations.Missed
				tt.Met += pt.SLA.FirstResponse.Met
				tt.Engagements += pt.Engagements.Count
				tt.Transfers += pt.Engagements.TransfersOut
				tt.Rated += pt.CSAT.Rated
			}
		}
		return tt
	}
	var before total
	// All the demo loaded: the seeder is done, the loader's group has
	// nothing left to commit (lag from the broker) and the totals hold still.
	var lastChange time.Time
	waitUntil(t, 120*time.Second, "analytics to count all the demo traffic", func() bool {
		var pipe struct {
			Loader struct{ Lag int64 } `json:"loader"`
		}
		p.admin.call("GET", "/api/analytics/pipeline", nil, http.StatusOK, &pipe)
		now := totals()
		if now != before {
			before, lastChange = now, time.Now()
		}
		return fileExists(dir+"/demo-seeded") && pipe.Loader.Lag == 0 && time.Since(lastChange) > 6*time.Second &&
			before.New > 300 && before.Transfers > 0 && before.Rated > 0
	})

	// A moderator decides two flagged messages.
	var items struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	waitUntil(t, 30*time.Second, "flagged demo messages in the review queue", func() bool {
		p.admin.call("GET", "/api/moderation/items?status=open", nil, http.StatusOK, &items)
		return len(items.Items) >= 2
	})
	mod := signIn(t, base, "mo@e2e.test", e2eStaffPassword)
	mod.call("POST", "/api/moderation/items/"+items.Items[0].ID+"/approve", map[string]string{"reason": "quoting a song"}, http.StatusOK, nil)
	mod.call("POST", "/api/moderation/items/"+items.Items[1].ID+"/remove", map[string]string{"reason": "abuse"}, http.StatusOK, nil)

	// The admin asks for first responses within 1 minute.
	admin := browsertest.New(t, 1366, 900)
	loginUI(t, admin, base, "/app/admin/sites", initialAdminEmail, e2eAdminPassword)
	waitFor(t, admin, 15*time.Second, fmt.Sprintf(`!!document.querySelector('#sites-table tr[data-id=%s] button')`, jsString(p.site.ID)))
	do(t, admin, "edit the site", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('#sites-table tr[data-id=%s] button').click()`, jsString(p.site.ID))))
	waitFor(t, admin, 15*time.Second, `!!document.querySelector('#site-first_response_target')`)
	do(t, admin, "a target too short", chromedp.SetValue(chromedp.CSS("#site-first_response_target"), "0.05"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#save-site').click()`))
	waitFor(t, admin, 10*time.Second, `document.querySelector('#site-form .error')?.textContent.includes('first_response_target_s 3 is not between 10 and 86400 seconds')`)
	do(t, admin, "a target of one minute", chromedp.SetValue(chromedp.CSS("#site-first_response_target"), "1"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#save-site').click()`))
	waitFor(t, admin, 10*time.Second, `document.querySelector('#site-form .error').hidden`)
	browsertest.Screenshot(t, admin, "e2e-admin-site-targets")
	var site struct {
		Settings struct {
			FirstResponseTarget int `json:"first_response_target_s"`
		} `json:"settings"`
	}
	p.admin.call("GET", "/api/chat/sites/"+p.site.ID, nil, http.StatusOK, &site)
	if site.Settings.FirstResponseTarget != 60 {
		t.Fatalf("site's first-response target = %d s after saving 1 minute", site.Settings.FirstResponseTarget)
	}
	// Analytics recomputes the site: more first responses are late now.
	var after total
	lastChange = time.Now()
	waitUntil(t, 60*time.Second, fmt.Sprintf("facts recomputed with the 1-minute target (before: %+v)", before), func() bool {
		var pipe struct {
			Loader struct{ Recomputing string } `json:"loader"`
		}
		p.admin.call("GET", "/api/analytics/pipeline", nil, http.StatusOK, &pipe)
		if now := totals(); now != after {
			after, lastChange = now, time.Now()
		}
		return after.New == before.New && after.Late > before.Late && after.Met < before.Met &&
			pipe.Loader.Recomputing == "" && time.Since(lastChange) > 3*time.Second
	})
	t.Logf("demo over 30 days: %d new chats, late %d → %d with the 1-minute target, %d missed, %d engagements, %d transfers, %d ratings",
		after.New, before.Late, after.Late, after.Missed, after.Engagements, after.Transfers, after.Rated)

	ctx := browsertest.New(t, 1366, 900)
	loginUI(t, ctx, base, "/app/reports", "sam@e2e.test", e2eStaffPassword)
	waitFor(t, ctx, 20*time.Second, `!!document.querySelector('#report-status')?.dataset.total`)
	do(t, ctx, "choose the last 30 days", chromedp.SetValue(chromedp.CSS("#range"), "30d"), chromedp.Evaluate[chromedp.Void](
		`document.querySelector('#range').dispatchEvent(new Event('change', {bubbles: true}))`))
	waitFor(t, ctx, 20*time.Second, `Number(document.querySelector('#report-status')?.dataset.total) > 300 && !!document.querySelector('#chart-sla path.line')`)
	for _, id := range []string{"chart-volume", "chart-sla", "chart-closed-by", "chart-csat", "chart-csat-ratings"} {
		if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll('#%s .hits rect').length`, id)); n < 28 {
			t.Errorf("#%s has %d points over 30 days", id, n)
		}
	}
	legend := eval[string](t, ctx, `document.querySelector('#chart-volume').textContent`)
	for _, want := range []string{"Missed", "Answered late", "Offline messages"} {
		if !strings.Contains(legend, want) {
			t.Errorf("conversations chart lacks %q: %s", want, legend)
		}
	}
	// The engagements per agent add up to the report's.
	waitFor(t, ctx, 15*time.Second, fmt.Sprintf(`document.querySelector('#table-agent')?.textContent.includes('Transfers out') &&
	  [...document.querySelectorAll('#table-agent tbody tr')].reduce((n, tr) => n + Number(tr.children[1].textContent.replace(/\D/g, '')), 0) === %d`, after.Engagements))
	browsertest.Screenshot(t, ctx, "e2e-reports-sla-engagements")

	// Drill down from "Answered late" (the 4th series: key 4 on the
	// focused day) on the last day with any: every row says why.
	do(t, ctx, "choose answered late", chromedp.Evaluate[chromedp.Void](`(() => {
	  const rects = [...document.querySelectorAll('#chart-volume rect.hit')];
	  const late = rects.filter((r) => /Answered late [1-9]/.test(r.getAttribute('aria-label')));
	  late[late.length - 1].dispatchEvent(new KeyboardEvent('keydown', {key: '4'}));
	})()`))
	waitFor(t, ctx, 15*time.Second, `Number(document.querySelector('#drilldown')?.dataset.count) > 0`)
	reasons := eval[[]string](t, ctx, `[...document.querySelectorAll('#drilldown tbody tr')].map((tr) => tr.lastChild.textContent)`)
	for _, r := range reasons {
		if !strings.HasPrefix(r, "answered late: first reply after ") || !strings.HasSuffix(r, "(target 1 min)") {
			t.Errorf("late drill-down reason %q", r)
		}
	}
	browsertest.Screenshot(t, ctx, "e2e-reports-late-drilldown")
	// And from the CSAT distribution: the 1-star ratings and their comments.
	do(t, ctx, "choose the 1-star ratings", chromedp.Evaluate[chromedp.Void](`(() => {
	  const rects = [...document.querySelectorAll('#chart-csat-ratings rect.hit')];
	  const ones = rects.filter((r) => /: 1 [1-9]/.test(r.getAttribute('aria-label')));
	  ones[ones.length - 1].dispatchEvent(new KeyboardEvent('keydown', {key: '1'}));
	})()`))
	waitFor(t, ctx, 15*time.Second, `[...document.querySelectorAll('#drilldown tbody tr')].length > 0 && [...document.querySelectorAll('#drilldown tbody tr')].every((tr) => tr.textContent.includes('1/5'))`)
	browsertest.Screenshot(t, ctx, "e2e-reports-csat-drilldown")

	do(t, ctx, "open the overview", chromedp.Navigate(base+"/app/overview"))
	waitFor(t, ctx, 15*time.Second, `!!document.querySelector('#ov-sla .value') && document.querySelector('#ov-missed .sub')?.textContent.includes('answered late')`)
	browsertest.Screenshot(t, ctx, "e2e-overview-sla")

	// The moderation report, as the moderator.
	modCtx := browsertest.New(t, 1366, 900)
	loginUI(t, modCtx, base, "/app/moderation/report", "mo@e2e.test", e2eStaffPassword)
	waitFor(t, modCtx, 20*time.Second, `Number(document.querySelector('#modreport-status')?.dataset.flagged) > 0 && !!document.querySelector('#modreport-moderators tbody tr')`)
	if v := eval[string](t, modCtx, `document.querySelector('#mr-approved .value').textContent`); v != "50 %" {
		t.Errorf("approved share shows %q, want 50 %%", v)
	}
	do(t, modCtx, "drill into Mo's decisions", chromedp.Evaluate[chromedp.Void](`document.querySelector('#modreport-moderators tbody tr').click()`))
	waitFor(t, modCtx, 15*time.Second, `document.querySelector('#modreport-drilldown')?.dataset.count === '1' && document.querySelector('#modreport-drilldown').textContent.includes('Mo Moderator')`)
	browsertest.Screenshot(t, modCtx, "e2e-moderation-report")

	// The CSV of the drill-down round-trips the reason columns.
	code, body := p.admin.request("GET", "/api/analytics/export.csv?metric=late"+rng, nil, false)
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if code != http.StatusOK || err != nil || len(recs) != after.Late+1 || recs[0][13] != "first_response_calendar_ms" {
		t.Errorf("late export = %d %v, %d rows for %d late", code, err, len(recs)-1, after.Late)
	}
	for _, r := range recs[1:] {
		if r[26] != "true" {
			t.Errorf("late export row says answered_late = %q: %v", r[26], r)
			break
		}
	}
	var pipe map[string]any
	p.admin.call("GET", "/api/analytics/pipeline", nil, http.StatusOK, &pipe)
	if pipe["ready"] != true {
		t.Errorf("pipeline = %v", pipe)
	}
}
