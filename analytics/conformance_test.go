package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

type goldenExpected struct {
	DayCalendar           []Series               `json:"day_calendar"`
	DayBusiness           []Series               `json:"day_business"`
	Missed                []string               `json:"missed_2024_03_31"`
	Late                  []string               `json:"late_2024_03_31"`
	DrillReasons          map[string]string      `json:"drill_reasons"`
	StartedInHours        []string               `json:"started_in_hours"`
	SplitSiteNew          map[string]int64       `json:"split_site_new"`
	SplitAgentEngagements map[string]Engagements `json:"split_agent_engagements"`
	SplitTeamEngagements  map[string]int64       `json:"split_team_engagements"`
	WeekNew               map[string]int64       `json:"week_new"`
	HourBuckets           int                    `json:"hour_buckets_on_2024_03_31"`
	HourNew               map[string]int64       `json:"hour_new"`
	HourAgentMsgs         map[string]int64       `json:"hour_agent_messages"`
	Moderation            ModerationReport       `json:"moderation"`
	Overview              Overview               `json:"overview_at_2024_04_01T12_30Z"`
	AgentLoad             []AgentLoad            `json:"agent_load"`
}

func loadExpected(t *testing.T) goldenExpected {
	t.Helper()
	b, err := os.ReadFile("testdata/golden_expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenExpected
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// loadGolden applies the fixture in uneven batches, one of them twice,
// as a loader with retries would, then finishes like a replay (releases
// held events, recomputes sites whose profile changed).
func loadGolden(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	a := newApplier(s, slog.Default(), 0)
	evs := goldenEvents(t)
	for _, part := range [][]int{{0, 10}, {10, 30}, {10, 30}, {30, 60}, {60, len(evs)}} {
		if _, err := a.apply(ctx, evs[part[0]:min(part[1], len(evs))]); err != nil {
			t.Fatalf("apply events %d..%d: %v", part[0], part[1], err)
		}
	}
	if err := finishReplay(ctx, a, &ReplayStats{}, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
}

func goldenQuery(t *testing.T) Query {
	berlin := mustLoc(t, "Europe/Berlin")
	q := Query{
		From:     time.Date(2024, 3, 29, 0, 0, 0, 0, berlin),
		To:       time.Date(2024, 4, 2, 0, 0, 0, 0, berlin),
		Bucket:   BucketDay,
		Location: berlin,
		Now:      time.Date(2024, 4, 2, 0, 0, 0, 0, time.UTC),
	}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	return q
}

// normalise round-trips through JSON so expected and actual compare alike.
func normalise(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func assertSame(t *testing.T, what string, want, got any) {
	t.Helper()
	w, g := normalise(t, want), normalise(t, got)
	if !reflect.DeepEqual(w, g) {
		var diffs []string
		jsonDiff("", w, g, &diffs)
		if len(diffs) > 40 {
			diffs = append(diffs[:40], fmt.Sprintf("… %d more", len(diffs)-40))
		}
		t.Errorf("%s differs (want → got):\n%s", what, strings.Join(diffs, "\n"))
	}
}

// jsonDiff lists the paths where two decoded JSON values differ.
func jsonDiff(path string, w, g any, out *[]string) {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range wv {
			keys[k] = true
		}
		for k := range gv {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			jsonDiff(path+"."+k, wv[k], gv[k], out)
		}
		return
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(wv) {
			break
		}
		for i := range wv {
			jsonDiff(fmt.Sprintf("%s[%d]", path, i), wv[i], gv[i], out)
		}
		return
	}
	if !reflect.DeepEqual(w, g) {
		wb, _ := json.Marshal(w)
		gb, _ := json.Marshal(g)
		*out = append(*out, fmt.Sprintf("  %s: %s → %s", path, wb, gb))
	}
}

// runGolden is the conformance suite: every Store must give the
// hand-computed answers of docs/metrics.md on the golden fixture.
func runGolden(t *testing.T, s Store) {
	ctx := context.Background()
	want := loadExpected(t)
	loadGolden(t, s)

	n, err := s.EventCount(ctx)
	if err != nil || n != int64(len(goldenEvents(t))) {
		t.Fatalf("event count = %d, %v; want %d (the retried batch must not double count)", n, err, len(goldenEvents(t)))
	}
	// s2's events came before its profile: none is held any more, and its
	// facts were recomputed with its final profile.
	if held, err := s.HeldSites(ctx); err != nil || len(held) != 0 {
		t.Fatalf("held after loading: %v, %v", held, err)
	}
	ps, err := s.SiteProfiles(ctx)
	if err != nil || len(ps) != 2 {
		t.Fatalf("site profiles %v, %v", ps, err)
	}
	for _, p := range ps {
		if p.Rev != p.FactsRev || (p.SiteID == "s2" && p.State.Name != "Night desk") {
			t.Errorf("site profile %+v: facts not recomputed with its latest revision", p)
		}
	}

	q := goldenQuery(t)
	r, err := s.Report(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "calendar day report", want.DayCalendar, r.Series)

	qb := q
	qb.Clock = ClockBusiness
	r, err = s.Report(ctx, qb)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "business-hours day report", want.DayBusiness, r.Series)

	missed, err := s.Conversations(ctx, q, Drill{Bucket: "2024-03-31T00:00:00+01:00", Metric: "missed"})
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "missed drill-down", want.Missed, convIDs(missed))
	late, err := s.Conversations(ctx, q, Drill{Bucket: "2024-03-31T00:00:00+01:00", Metric: "late"})
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "late drill-down", want.Late, convIDs(late))
	// Why each conversation is missed, late or waiting past the target.
	reasons := map[string]string{}
	for _, metric := range []string{"missed", "late", "sla_breached"} {
		rows, err := s.Conversations(ctx, q, Drill{Metric: metric})
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			reasons[rows[i].ConversationID] = drillReason(&rows[i], q)
		}
	}
	assertSame(t, "drill-down reasons", want.DrillReasons, reasons)

	qin := q
	qin.Filter.Hours = "in"
	inHours, err := s.Conversations(ctx, qin, Drill{})
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "started in business hours", want.StartedInHours, convIDs(inHours))

	qs := q
	qs.Bucket, qs.Split = BucketNone, DimSite
	r, err = s.Report(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	bySite := map[string]int64{}
	for _, se := range r.Series {
		bySite[se.Key] = se.Points[0].Conversations.New
	}
	assertSame(t, "split by site", want.SplitSiteNew, bySite)

	qs.Split = DimAgent
	r, err = s.Report(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	byAgent := map[string]Engagements{}
	for _, se := range r.Series {
		if se.Points[0].Engagements.Count > 0 {
			byAgent[se.Key] = se.Points[0].Engagements
		}
	}
	assertSame(t, "engagements by agent", want.SplitAgentEngagements, byAgent)
	qs.Split = DimTeam
	r, err = s.Report(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	byTeam := map[string]int64{}
	for _, se := range r.Series {
		if n := se.Points[0].Engagements.Count; n > 0 {
			byTeam[se.Key] = n
		}
	}
	assertSame(t, "engagements by team", want.SplitTeamEngagements, byTeam)

	qw := q
	qw.Bucket = BucketWeek
	r, err = s.Report(ctx, qw)
	if err != nil {
		t.Fatal(err)
	}
	weeks := map[string]int64{}
	for _, p := range r.Series[0].Points {
		weeks[p.Bucket] = p.Conversations.New
	}
	assertSame(t, "week buckets", want.WeekNew, weeks)

	berlin := q.Location
	qh := q
	qh.Bucket = BucketHour
	qh.From, qh.To = time.Date(2024, 3, 31, 0, 0, 0, 0, berlin), time.Date(2024, 4, 1, 0, 0, 0, 0, berlin)
	r, err = s.Report(ctx, qh)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.Series[0].Points); got != want.HourBuckets {
		t.Errorf("hour buckets on the DST day = %d, want %d", got, want.HourBuckets)
	}
	hourNew, hourAgent := map[string]int64{}, map[string]int64{}
	for _, p := range r.Series[0].Points {
		if p.Conversations.New > 0 {
			hourNew[p.Bucket] = p.Conversations.New
		}
		if p.Messages.Agent > 0 {
			hourAgent[p.Bucket] = p.Messages.Agent
		}
	}
	assertSame(t, "hour buckets: new", want.HourNew, hourNew)
	assertSame(t, "hour buckets: agent messages", want.HourAgentMsgs, hourAgent)

	mf, err := s.ModerationFacts(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "moderation", want.Moderation, moderationReport(q, mf))

	now := time.Date(2024, 4, 1, 12, 30, 0, 0, time.UTC)
	y, mo, d := now.In(berlin).Date()
	o, err := s.Overview(ctx, "", time.Date(y, mo, d, 0, 0, 0, 0, berlin), now)
	if err != nil {
		t.Fatal(err)
	}
	o.At = time.Time{}
	want.Overview.At = time.Time{}
	assertSame(t, "overview", want.Overview, o)

	as, err := s.Assignments(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	load := agentLoad(as, q.From.UnixMilli(), q.To.UnixMilli(), q.Now.UnixMilli())
	for i := range load {
		load[i].AvgConcurrent = 0
	}
	assertSame(t, "agent load", want.AgentLoad, load)
}

func convIDs(fs []ConversationFacts) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.ConversationID)
	}
	return out
}

func TestGoldenSQLite(t *testing.T) {
	t.Parallel()
	runGolden(t, newSQLiteStore(t))
}

func TestGoldenClickHouse(t *testing.T) {
	t.Parallel()
	runGolden(t, newClickHouseStore(t))
}
