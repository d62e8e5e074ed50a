package analytics

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// presenceFixture: a1 is online 09:00–12:00 on 1 May 2024 with a break
// (away) 10:00–10:30; a2 is online from 30 Apr 22:00 (after an earlier
// online 20:00–21:00) to 2 May 03:00; a3 went away on 29 Apr and never
// changed again. Times are UTC.
func presenceFixture(t testing.TB) []ingest.Event {
	t.Helper()
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	var out []ingest.Event
	add := func(agent string, at time.Duration, prev, status string) {
		e, err := ingest.New(ingest.AgentPresence, "*", ingest.AgentKey(agent), ingest.Actor{Role: ingest.RoleAgent, ID: agent},
			day.Add(at), ingest.AgentPresencePayload{Status: status, Previous: prev})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	h := time.Hour
	add("a1", 9*h, "offline", "online")
	add("a1", 10*h, "online", "away")
	add("a1", 10*h+30*time.Minute, "away", "online")
	add("a1", 12*h, "online", "offline")
	add("a2", -4*h, "offline", "online")
	add("a2", -3*h, "online", "offline")
	add("a2", -2*h, "offline", "online")
	add("a2", 27*h, "online", "offline")
	add("a3", -38*h, "", "away")
	return out
}

func TestPresenceTime(t *testing.T) {
	changes, err := decodePresence(append(presenceFixture(t), presenceFixture(t)[1])) // a duplicate counts once
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	at := func(d time.Duration) int64 { return day.Add(d).UnixMilli() }
	h, m := time.Hour, time.Minute
	for _, tc := range []struct {
		name          string
		from, to, now int64
		want          map[string]PresenceTime
	}{
		{"08:00-13:00", at(8 * h), at(13 * h), at(100 * h), map[string]PresenceTime{
			"a1": {OnlineMs: ms(2*h + 30*m), AwayMs: ms(30 * m)},
			"a2": {OnlineMs: ms(5 * h)}, // online since before the range, clipped at both edges
			"a3": {AwayMs: ms(5 * h)},
		}},
		{"whole day, now 11:00", at(0), at(24 * h), at(11 * h), map[string]PresenceTime{
			"a1": {OnlineMs: ms(1*h + 30*m), AwayMs: ms(30 * m)}, // nothing counts after now
			"a2": {OnlineMs: ms(11 * h)},
			"a3": {AwayMs: ms(11 * h)},
		}},
		{"10:15-10:45", at(10*h + 15*m), at(10*h + 45*m), at(100 * h), map[string]PresenceTime{
			"a1": {OnlineMs: ms(15 * m), AwayMs: ms(15 * m)},
			"a2": {OnlineMs: ms(30 * m)},
			"a3": {AwayMs: ms(30 * m)},
		}},
	} {
		got := presenceTime(changes, tc.from, tc.to, tc.now)
		for agent, want := range tc.want {
			if got[agent] != want {
				t.Errorf("%s: %s = %+v, want %+v", tc.name, agent, got[agent], want)
			}
		}
	}
}

// TestPresenceStores loads presence next to a conversation through the
// applier into both stores: both return the events that decide online time
// in a range, and presence builds no conversation facts.
func TestPresenceStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sq, ch := newSQLiteStore(t), newClickHouseStore(t)
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	started, err := ingest.New(ingest.ConversationStarted, "s1", "c1", ingest.Actor{Role: ingest.RoleVisitor, ID: "v1"}, day.Add(9*time.Hour),
		ingest.ConversationStartedPayload{Channel: ingest.ChannelWidget, VisitorID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	events := append(presenceFixture(t), started)
	want := map[string]PresenceTime{
		"a1": {OnlineMs: (150 * time.Minute).Milliseconds(), AwayMs: (30 * time.Minute).Milliseconds()},
		"a2": {OnlineMs: (5 * time.Hour).Milliseconds()},
		"a3": {AwayMs: (5 * time.Hour).Milliseconds()},
	}
	for _, s := range []Store{sq, ch} {
		a := newTestApplier(t, s)
		for _, batch := range [][]ingest.Event{events[:5], events[5:], events[2:7]} { // a retried batch stores nothing twice
			if _, err := a.apply(ctx, batch); err != nil {
				t.Fatalf("%s: apply: %v", s.Backend(), err)
			}
		}
		pe, err := s.PresenceEvents(ctx, day.Add(8*time.Hour), day.Add(13*time.Hour))
		if err != nil {
			t.Fatalf("%s: %v", s.Backend(), err)
		}
		changes, err := decodePresence(pe)
		if err != nil {
			t.Fatal(err)
		}
		got := presenceTime(changes, day.Add(8*time.Hour).UnixMilli(), day.Add(13*time.Hour).UnixMilli(), day.Add(100*time.Hour).UnixMilli())
		if len(got) != len(want) {
			t.Errorf("%s: presence time = %+v, want %+v", s.Backend(), got, want)
		}
		for agent, w := range want {
			if got[agent] != w {
				t.Errorf("%s: %s = %+v, want %+v", s.Backend(), agent, got[agent], w)
			}
		}
		counts, err := s.EventCounts(ctx, []ConversationKey{{SiteID: "s1", ConversationID: "c1"}})
		if err != nil || counts[ConversationKey{SiteID: "s1", ConversationID: "c1"}] != 1 {
			t.Fatalf("%s: conversation c1 has %v events (%v), want 1", s.Backend(), counts, err)
		}
		q := Query{From: day, To: day.Add(24 * time.Hour), Location: time.UTC, Now: day.Add(100 * time.Hour)}
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
		facts, err := s.Conversations(ctx, q, Drill{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(facts) != 1 || facts[0].ConversationID != "c1" {
			t.Fatalf("%s: conversations = %+v, want only c1 (presence builds no facts)", s.Backend(), facts)
		}
	}
}

// TestAgentsOnlineTime: /api/analytics/agents reports online and away time.
func TestAgentsOnlineTime(t *testing.T) {
	s := newSQLiteStore(t)
	a := newApplier(s, slog.Default(), 0)
	if _, err := a.apply(context.Background(), presenceFixture(t)); err != nil {
		t.Fatal(err)
	}
	srv := startAPI(t, Config{Store: s, OverviewEvery: 50 * time.Millisecond})
	// An admin sees every agent's presence; a supervisor scoped to sites
	// sees the agents who handled their sites' conversations (scope.go).
	code, body := srv.get(t, srv.admin, "/api/analytics/agents?from=2024-05-01&to=2024-05-02&tz=UTC")
	if code != http.StatusOK {
		t.Fatalf("agents = %d %s", code, body)
	}
	var res struct{ Agents []AgentLoad }
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	want := []AgentLoad{
		{AgentID: "a1", OnlineMs: (150 * time.Minute).Milliseconds(), AwayMs: (30 * time.Minute).Milliseconds()},
		{AgentID: "a2", OnlineMs: (24 * time.Hour).Milliseconds()},
		{AgentID: "a3", AwayMs: (24 * time.Hour).Milliseconds()},
	}
	if len(res.Agents) != len(want) {
		t.Fatalf("agents = %s", body)
	}
	for i := range want {
		if res.Agents[i] != want[i] {
			t.Errorf("agent %d = %+v, want %+v", i, res.Agents[i], want[i])
		}
	}
	// A team filter cannot place presence (it has no team): only agents of the filtered conversations are listed.
	code, body = srv.get(t, srv.admin, "/api/analytics/agents?from=2024-05-01&to=2024-05-02&tz=UTC&team=t1")
	if code != http.StatusOK || string(body) != `{"agents":[]}` {
		t.Fatalf("agents of team t1 = %d %s", code, body)
	}
	// So cannot a site scope: a supervisor of s1 and s2 sees no presence-only agent.
	code, body = srv.get(t, srv.supervisor, "/api/analytics/agents?from=2024-05-01&to=2024-05-02&tz=UTC")
	if code != http.StatusOK || string(body) != `{"agents":[]}` {
		t.Fatalf("agents for a scoped supervisor = %d %s", code, body)
	}
	code, body = srv.get(t, srv.admin, "/api/analytics/agents?from=2024-05-01&to=2024-05-02&tz=UTC&agent=a3")
	res.Agents = nil
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || len(res.Agents) != 1 || res.Agents[0] != want[2] {
		t.Fatalf("agents filtered to a3 = %s", body)
	}
}
