package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

var sqliteMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE analytics_events (
	event_id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	occurred_at INTEGER NOT NULL,
	site_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	actor_role TEXT NOT NULL,
	actor_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	raw TEXT NOT NULL
);
CREATE INDEX analytics_events_conv ON analytics_events(site_id, conversation_id);
CREATE INDEX analytics_events_type_time ON analytics_events(type, occurred_at);
CREATE TABLE analytics_conversations (
	site_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	version INTEGER NOT NULL,
	started_at INTEGER NOT NULL,
	last_event_at INTEGER NOT NULL,
	channel TEXT NOT NULL,
	team_id TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	started_in_hours INTEGER NOT NULL,
	open INTEGER NOT NULL,
	waiting_since INTEGER NOT NULL,
	miss_candidate INTEGER NOT NULL,
	miss_at INTEGER NOT NULL,
	csat INTEGER NOT NULL,
	csat_at INTEGER NOT NULL,
	doc TEXT NOT NULL,
	PRIMARY KEY (site_id, conversation_id)
);
CREATE INDEX analytics_conversations_started ON analytics_conversations(started_at);
CREATE INDEX analytics_conversations_last ON analytics_conversations(last_event_at);
CREATE TABLE analytics_moderation (
	verdict_id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	version INTEGER NOT NULL,
	at INTEGER NOT NULL,
	doc TEXT NOT NULL
);
CREATE INDEX analytics_moderation_at ON analytics_moderation(at);`},
	{Version: 2, SQL: `
ALTER TABLE analytics_conversations ADD COLUMN survey_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX analytics_conversations_open ON analytics_conversations(open) WHERE open = 1;
CREATE TABLE analytics_sites (
	site_id TEXT PRIMARY KEY,
	updated_at INTEGER NOT NULL,
	doc TEXT NOT NULL
);
CREATE TABLE analytics_site_facts (
	site_id TEXT PRIMARY KEY,
	facts_rev INTEGER NOT NULL
);
CREATE TABLE analytics_held (
	event_id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	held_at INTEGER NOT NULL,
	topic TEXT NOT NULL,
	kafka_partition INTEGER NOT NULL,
	kafka_offset INTEGER NOT NULL,
	raw TEXT NOT NULL
);
CREATE INDEX analytics_held_site ON analytics_held(site_id);
CREATE TABLE analytics_staff (
	staff_id TEXT PRIMARY KEY,
	seen_at INTEGER NOT NULL
);`},
}

// SQLiteStore is the embedded-mode Store. Metrics are computed in Go by
// the same code paths the conformance suite compares with ClickHouse.
type SQLiteStore struct {
	db *sql.DB
}

// OpenSQLite migrates the analytics schema on db and returns the store.
func OpenSQLite(ctx context.Context, db *sql.DB) (*SQLiteStore, error) {
	if err := sqlstore.Migrate(ctx, db, "analytics", sqliteMigrations); err != nil {
		return nil, fmt.Errorf("open analytics sqlite: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

// Backend implements Store.
func (s *SQLiteStore) Backend() string { return "sqlite" }

// Ping implements Store.
func (s *SQLiteStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: sqlite: %v", ErrUnavailable, err)
	}
	return nil
}

// Close implements Store; the *sql.DB belongs to the caller.
func (s *SQLiteStore) Close() error { return nil }

// InsertEvents implements Store: INSERT OR IGNORE by event id, in one transaction.
func (s *SQLiteStore) InsertEvents(ctx context.Context, events []ingest.Event) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert events: begin: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO analytics_events
		(event_id, type, occurred_at, site_id, conversation_id, actor_role, actor_id, kind, raw)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("insert events: prepare: %w", err)
	}
	defer stmt.Close()
	for _, e := range events {
		raw, err := e.Encode()
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, e.ID, string(e.Type), e.OccurredAt.UnixMilli(), e.SiteID,
			e.ConversationID, string(e.Actor.Role), e.Actor.ID, messageKind(e), string(raw)); err != nil {
			return fmt.Errorf("insert event %s: %w", e.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert %d events: commit: %w", len(events), err)
	}
	return nil
}

// messageKind is the kind of a message event ("" for other types).
func messageKind(e ingest.Event) string {
	if e.Type != ingest.MessageSent {
		return ""
	}
	var p ingest.MessageSentPayload
	if e.Into(&p) != nil {
		return ""
	}
	return p.Kind
}

// EventCounts implements Store. It asks once per site and up to
// countChunk conversations: a statement per conversation cost more than
// the counting (BenchmarkApplyLiveSQLite).
func (s *SQLiteStore) EventCounts(ctx context.Context, ids []ConversationKey) (map[ConversationKey]int64, error) {
	out := make(map[ConversationKey]int64, len(ids))
	bySite := map[string][]any{}
	var sites []string
	for _, k := range ids {
		if _, ok := bySite[k.SiteID]; !ok {
			sites = append(sites, k.SiteID)
		}
		bySite[k.SiteID] = append(bySite[k.SiteID], k.ConversationID)
	}
	for _, site := range sites {
		convs := bySite[site]
		for len(convs) > 0 {
			chunk := convs[:min(len(convs), countChunk)]
			convs = convs[len(chunk):]
			q := `SELECT conversation_id, COUNT(*) FROM analytics_events WHERE site_id = ? AND conversation_id IN (?` +
				strings.Repeat(`,?`, len(chunk)-1) + `) GROUP BY conversation_id`
			if err := s.countEvents(ctx, q, site, chunk, out); err != nil {
				return nil, fmt.Errorf("count events of %d conversations of site %s: %w", len(chunk), site, err)
			}
		}
	}
	return out, nil
}

// countEvents runs one of EventCounts' statements and adds its counts to out.
func (s *SQLiteStore) countEvents(ctx context.Context, q, site string, convs []any, out map[ConversationKey]int64) error {
	rows, err := s.db.QueryContext(ctx, q, append([]any{site}, convs...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var conv string
		var n int64
		if err := rows.Scan(&conv, &n); err != nil {
			return err
		}
		out[ConversationKey{SiteID: site, ConversationID: conv}] = n
	}
	return rows.Err()
}

// countChunk bounds the conversations one EventCounts statement names,
// well under SQLite's limit on bound parameters.
const countChunk = 500

// ConversationEvents implements Store.
func (s *SQLiteStore) ConversationEvents(ctx context.Context, ids []ConversationKey) (map[ConversationKey][]ingest.Event, error) {
	out := make(map[ConversationKey][]ingest.Event, len(ids))
	stmt, err := s.db.PrepareContext(ctx, `SELECT raw FROM analytics_events WHERE site_id = ? AND conversation_id = ?`)
	if err != nil {
		return nil, fmt.Errorf("conversation events: prepare: %w", err)
	}
	defer stmt.Close()
	for _, k := range ids {
		rows, err := stmt.QueryContext(ctx, k.SiteID, k.ConversationID)
		if err != nil {
			return nil, fmt.Errorf("events of %s/%s: %w", k.SiteID, k.ConversationID, err)
		}
		for rows.Next() {
			var raw string
			if err := rows.Scan(&raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("events of %s/%s: %w", k.SiteID, k.ConversationID, err)
			}
			var e ingest.Event
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				rows.Close()
				return nil, fmt.Errorf("stored event of %s/%s: %w", k.SiteID, k.ConversationID, err)
			}
			out[k] = append(out[k], e)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("events of %s/%s: %w", k.SiteID, k.ConversationID, err)
		}
	}
	return out, nil
}

// WriteFacts implements Store.
func (s *SQLiteStore) WriteFacts(ctx context.Context, conv []ConversationFacts, mod []ModerationFact) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write facts: begin: %w", err)
	}
	defer tx.Rollback()
	// Prepared once per transaction: preparing took as long as executing.
	convStmt, err := tx.PrepareContext(ctx, `INSERT INTO analytics_conversations
			(site_id, conversation_id, version, started_at, last_event_at, channel, team_id, agent_id, started_in_hours,
			 open, waiting_since, miss_candidate, miss_at, csat, csat_at, survey_at, doc)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(site_id, conversation_id) DO UPDATE SET
			 version = excluded.version, started_at = excluded.started_at, last_event_at = excluded.last_event_at, channel = excluded.channel,
			 team_id = excluded.team_id, agent_id = excluded.agent_id, started_in_hours = excluded.started_in_hours,
			 open = excluded.open, waiting_since = excluded.waiting_since, miss_candidate = excluded.miss_candidate,
			 miss_at = excluded.miss_at, csat = excluded.csat, csat_at = excluded.csat_at, survey_at = excluded.survey_at, doc = excluded.doc
			WHERE excluded.version >= analytics_conversations.version`)
	if err != nil {
		return fmt.Errorf("write facts: prepare: %w", err)
	}
	defer convStmt.Close()
	for _, f := range conv {
		doc, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encode facts %s: %w", f.ConversationID, err)
		}
		if _, err := convStmt.ExecContext(ctx,
			f.SiteID, f.ConversationID, f.Version, f.StartedAt, f.LastEventAt, f.Channel, f.TeamID, f.AgentID, f.StartedInHours,
			f.Open, f.WaitingSince, f.Missed, f.MissAt, f.CSAT, f.CSATAt, f.SurveyAt, string(doc)); err != nil {
			return fmt.Errorf("write facts %s: %w", f.ConversationID, err)
		}
	}
	modStmt, err := tx.PrepareContext(ctx, `INSERT INTO analytics_moderation (verdict_id, site_id, conversation_id, version, at, doc)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(verdict_id) DO UPDATE SET version = excluded.version, at = excluded.at, doc = excluded.doc
			WHERE excluded.version >= analytics_moderation.version`)
	if err != nil {
		return fmt.Errorf("write moderation facts: prepare: %w", err)
	}
	defer modStmt.Close()
	for _, m := range mod {
		doc, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode moderation fact %s: %w", m.VerdictID, err)
		}
		if _, err := modStmt.ExecContext(ctx,
			m.VerdictID, m.SiteID, m.ConversationID, m.Version, m.At, string(doc)); err != nil {
			return fmt.Errorf("write moderation fact %s: %w", m.VerdictID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write facts: commit: %w", err)
	}
	return nil
}

// filterSQL renders the site, channel and hours filters as a WHERE
// fragment over analytics_conversations (alias c); agent and team are
// applied in Go (to conversations and engagements apart).
func filterSQL(f Filter) (string, []any) {
	var parts []string
	var args []any
	add := func(col, v string) {
		if v != "" {
			parts = append(parts, col+" = ?")
			args = append(args, v)
		}
	}
	add("c.site_id", f.SiteID)
	if len(f.Sites) > 0 {
		parts = append(parts, "c.site_id IN (?"+strings.Repeat(", ?", len(f.Sites)-1)+")")
		for _, s := range f.Sites {
			args = append(args, s)
		}
	}
	add("c.channel", f.Channel)
	switch f.Hours {
	case "in":
		parts = append(parts, "c.started_in_hours = 1")
	case "out":
		parts = append(parts, "c.started_in_hours = 0")
	}
	if len(parts) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(parts, " AND "), args
}

// activeFacts loads the facts of conversations with an event at or after
// q.From that match q's site, channel and hours filters: every report
// part and drill-down needs only these (a message, rating, survey or
// engagement in the range is at most the conversation's last event).
func (s *SQLiteStore) activeFacts(ctx context.Context, q Query) ([]ConversationFacts, error) {
	return s.loadFacts(ctx, q.Filter, `c.last_event_at >= ?`, q.From.UnixMilli())
}

// loadFacts loads the facts matching cond (with its args) and the filter.
func (s *SQLiteStore) loadFacts(ctx context.Context, flt Filter, cond string, condArgs ...any) ([]ConversationFacts, error) {
	where, args := filterSQL(flt)
	args = append(condArgs, args...)
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM analytics_conversations c WHERE `+cond+` AND `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("load facts: %w", err)
	}
	defer rows.Close()
	var out []ConversationFacts
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("load facts: %w", err)
		}
		var f ConversationFacts
		if err := json.Unmarshal([]byte(doc), &f); err != nil {
			return nil, fmt.Errorf("decode stored facts: %w", err)
		}
		f.normalise()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load facts: %w", err)
	}
	return out, nil
}

// Report implements Store.
func (s *SQLiteStore) Report(ctx context.Context, q Query) (Report, error) {
	facts, err := s.activeFacts(ctx, q)
	if err != nil {
		return Report{}, err
	}
	return assemble(q, s.Backend(), aggregate(q, facts)), nil
}

// Conversations implements Store.
func (s *SQLiteStore) Conversations(ctx context.Context, q Query, d Drill) ([]ConversationFacts, error) {
	facts, err := s.activeFacts(ctx, q)
	if err != nil {
		return nil, err
	}
	return drillFacts(q, d, facts)
}

// Assignments implements Store.
func (s *SQLiteStore) Assignments(ctx context.Context, q Query) ([]Assignment, error) {
	flt := q.Filter
	// Conversations started before the range can still be owned during it.
	facts, err := s.loadFacts(ctx, flt, `c.started_at < ? AND c.agent_id != ''`, q.To.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("load assignments: %w", err)
	}
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	var out []Assignment
	for i := range facts {
		f := &facts[i]
		if !flt.matches(f) {
			continue
		}
		for i, a := range f.AssignAgents {
			if f.AssignFrom[i] < to && (f.AssignTo[i] == 0 || f.AssignTo[i] > from) {
				out = append(out, Assignment{AgentID: a, ConversationID: f.ConversationID, From: f.AssignFrom[i], To: f.AssignTo[i]})
			}
		}
	}
	return out, nil
}

// PresenceEvents implements Store.
func (s *SQLiteStore) PresenceEvents(ctx context.Context, from, to time.Time) ([]ingest.Event, error) {
	return s.rawEvents(ctx, `SELECT raw FROM analytics_events
		WHERE type = ? AND occurred_at >= ? AND occurred_at < ?
		UNION ALL
		SELECT e.raw FROM analytics_events e JOIN (
			SELECT conversation_id, MAX(occurred_at) AS last FROM analytics_events
			WHERE type = ? AND occurred_at < ? GROUP BY conversation_id
		) l ON e.conversation_id = l.conversation_id AND e.occurred_at = l.last
		WHERE e.type = ?`,
		string(ingest.AgentPresence), from.UnixMilli(), to.UnixMilli(),
		string(ingest.AgentPresence), from.UnixMilli(), string(ingest.AgentPresence))
}

// rawEvents decodes the raw column of a query's rows.
func (s *SQLiteStore) rawEvents(ctx context.Context, query string, args ...any) ([]ingest.Event, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	defer rows.Close()
	var out []ingest.Event
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("load events: %w", err)
		}
		var e ingest.Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("decode stored event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	return out, nil
}

// ModerationFacts implements Store.
func (s *SQLiteStore) ModerationFacts(ctx context.Context, q Query) ([]ModerationFact, error) {
	args := []any{q.To.UnixMilli()}
	site := ""
	if q.Filter.SiteID != "" {
		site = " AND site_id = ?"
		args = append(args, q.Filter.SiteID)
	}
	if len(q.Filter.Sites) > 0 {
		site += " AND site_id IN (?" + strings.Repeat(", ?", len(q.Filter.Sites)-1) + ")"
		for _, s := range q.Filter.Sites {
			args = append(args, s)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM analytics_moderation WHERE at < ?`+site, args...)
	if err != nil {
		return nil, fmt.Errorf("load moderation facts: %w", err)
	}
	defer rows.Close()
	from := q.From.UnixMilli()
	var facts []ModerationFact
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("load moderation facts: %w", err)
		}
		var m ModerationFact
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("decode moderation fact: %w", err)
		}
		if m.Action == ingest.ActionAllow || (m.At < from && (m.ItemID == "" || (m.DecidedAt > 0 && m.DecidedAt < from))) {
			continue
		}
		facts = append(facts, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load moderation facts: %w", err)
	}
	return facts, nil
}

// Overview implements Store.
func (s *SQLiteStore) Overview(ctx context.Context, siteID string, dayStart, now time.Time) (Overview, error) {
	facts, err := s.loadFacts(ctx, Filter{SiteID: siteID}, `(c.open = 1 OR c.last_event_at >= ?)`, dayStart.UnixMilli())
	if err != nil {
		return Overview{}, fmt.Errorf("overview: %w", err)
	}
	return overviewOf(facts, dayStart, now), nil
}

// EventCount implements Store.
func (s *SQLiteStore) EventCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM analytics_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// Reset implements Store.
func (s *SQLiteStore) Reset(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM analytics_events; DELETE FROM analytics_conversations;
		DELETE FROM analytics_moderation; DELETE FROM analytics_held;`)
	if err != nil {
		return fmt.Errorf("reset analytics tables: %w", err)
	}
	return nil
}
