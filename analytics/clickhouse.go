package analytics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/parleychat/parley/ingest"
)

// ClickHouseConfig says where the ClickHouse store lives. Addr is the
// native-protocol address (host:9000); the database is created if missing.
type ClickHouseConfig struct {
	Addr     string
	Database string
	Username string
	Password string
	// DialTimeout bounds connecting; default 5 s.
	DialTimeout time.Duration
	// ReadTimeout bounds one query; default 60 s.
	ReadTimeout time.Duration
	// QueryParallelism is how many chunks of its range each part of a
	// report (conversations, messages) reads at once; FINAL makes every
	// query single-threaded on 18.16. Default 1: the two parts already run
	// at once, which measured best on a 2-core server; raise it with cores.
	QueryParallelism int
}

// ClickHouseStore is the Store on ClickHouse. It only uses SQL that runs on
// 18.16 (Debian's server) and current servers; insert deduplication tokens
// are switched on for servers that know them (22.2+).
type ClickHouseStore struct {
	conn    driver.Conn
	db      string
	version driver.ServerVersion
	dedupTk bool
	// parallelism is ClickHouseConfig.QueryParallelism.
	parallelism int
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// chMigration is one schema step; each statement must be idempotent
// (IF NOT EXISTS) because a crash can interrupt a step midway. 18.16 has
// no ADD COLUMN IF NOT EXISTS, so added columns are listed in Columns and
// added only when system.columns does not have them yet.
type chMigration struct {
	Version    int
	Statements func(s *ClickHouseStore) []string
	Columns    []chColumn
}

// chColumn is a column a migration adds: Def is its type and expression.
type chColumn struct {
	Table, Name, Def string
}

var chMigrations = []chMigration{
	{Version: 1, Statements: func(s *ClickHouseStore) []string {
		settings := ""
		if s.dedupTk {
			// Lets insert_deduplication_token drop a retried insert on a non-replicated table.
			settings = " SETTINGS non_replicated_deduplication_window = 1000"
		}
		return []string{
			`CREATE TABLE IF NOT EXISTS events (
				event_id String,
				type String,
				occurred_at Int64,
				site_id String,
				conversation_id String,
				actor_role String,
				actor_id String,
				kind String,
				raw String,
				loaded_at DateTime
			) ENGINE = ReplacingMergeTree()
			PARTITION BY toYYYYMM(toDateTime(intDiv(occurred_at, 1000)))
			ORDER BY (site_id, conversation_id, event_id)` + settings,
			`CREATE TABLE IF NOT EXISTS conversation_facts (
				site_id String,
				conversation_id String,
				version UInt64,
				channel String,
				team_id String,
				agent_id String,
				visitor_id String,
				started_at Int64,
				started_in_hours UInt8,
				last_event_at Int64,
				wait_from Int64,
				first_reply_at Int64,
				first_response_ms Int64,
				first_response_bh_ms Int64,
				reply_ms Array(Int64),
				reply_bh_ms Array(Int64),
				queue_wait_ms Array(Int64),
				queue_wait_bh_ms Array(Int64),
				resolved_at Int64,
				resolution_ms Int64,
				resolution_bh_ms Int64,
				reopens Int64,
				miss_candidate UInt8,
				miss_at Int64,
				left_at Int64,
				csat Int64,
				csat_at Int64,
				msgs_visitor Int64,
				msgs_agent Int64,
				msgs_bot Int64,
				notes Int64,
				msg_at Array(Int64),
				msg_role Array(UInt8),
				open UInt8,
				waiting_since Int64,
				assign_agents Array(String),
				assign_from Array(Int64),
				assign_to Array(Int64)
			) ENGINE = ReplacingMergeTree(version)
			ORDER BY (site_id, conversation_id)` + settings,
			`CREATE TABLE IF NOT EXISTS moderation_facts (
				site_id String,
				conversation_id String,
				verdict_id String,
				version UInt64,
				message_id String,
				at Int64,
				stage String,
				action String,
				categories Array(String),
				severity Int64,
				item_id String,
				decided_at Int64,
				decision String
			) ENGINE = ReplacingMergeTree(version)
			ORDER BY (site_id, verdict_id)` + settings,
		}
	}},
	// Columns for reports, computed by the server on insert and, for parts
	// written before, on read (merges then store them):
	// msg_first, the time of the first message, lets a report skip
	// conversations whose messages all come after its range before FINAL
	// (it only moves earlier as messages arrive, so that is safe);
	// msg_slots/msg_slot_n count the messages per 15-minute slot and role
	// (key slot*4 + role-1), a few entries instead of one per message.
	{Version: 2, Columns: []chColumn{
		{Table: "conversation_facts", Name: "msg_first",
			Def: "Int64 MATERIALIZED if(empty(msg_at), toInt64(0), arrayReduce('min', msg_at))"},
		{Table: "conversation_facts", Name: "msg_slots",
			Def: "Array(Int64) MATERIALIZED arrayDistinct(arrayMap((m, r) -> intDiv(m, 900000) * 4 + toInt64(r) - 1, msg_at, msg_role))"},
		{Table: "conversation_facts", Name: "msg_slot_n",
			Def: "Array(UInt32) MATERIALIZED arrayMap(k -> toUInt32(countEqual(arrayMap((m, r) -> intDiv(m, 900000) * 4 + toInt64(r) - 1, msg_at, msg_role), k)), msg_slots)"},
		// Flags that spare reports carrying two String columns through FINAL
		// (that was almost half of a 90-day report's cost).
		{Table: "conversation_facts", Name: "is_offline", Def: "UInt8 MATERIALIZED channel = '" + ingest.ChannelOffline + "'"},
		{Table: "conversation_facts", Name: "has_agent", Def: "UInt8 MATERIALIZED agent_id != ''"},
	}},
}

// OpenClickHouse connects, creates the database if needed and migrates it.
func OpenClickHouse(ctx context.Context, cfg ClickHouseConfig) (*ClickHouseStore, error) {
	if cfg.Addr == "" {
		return nil, errors.New("clickhouse: empty address")
	}
	if cfg.Database == "" {
		cfg.Database = "parley"
	}
	if !identRe.MatchString(cfg.Database) {
		return nil, fmt.Errorf("clickhouse: database name %q must match %s", cfg.Database, identRe)
	}
	if cfg.Username == "" {
		cfg.Username = "default"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	if cfg.QueryParallelism <= 0 {
		cfg.QueryParallelism = 1
	}
	open := func(db string) (driver.Conn, error) {
		return clickhouse.Open(&clickhouse.Options{
			Protocol:     clickhouse.Native,
			Addr:         []string{cfg.Addr},
			Auth:         clickhouse.Auth{Database: db, Username: cfg.Username, Password: cfg.Password},
			DialTimeout:  cfg.DialTimeout,
			ReadTimeout:  cfg.ReadTimeout,
			MaxOpenConns: 8 + 2*cfg.QueryParallelism,
			MaxIdleConns: 4 + 2*cfg.QueryParallelism,
		})
	}
	boot, err := open("default")
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database)
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: clickhouse %s: create database %s: %v", ErrUnavailable, cfg.Addr, cfg.Database, err)
	}
	conn, err := open(cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	v, err := conn.ServerVersion()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: clickhouse %s: server version: %v", ErrUnavailable, cfg.Addr, err)
	}
	s := &ClickHouseStore{conn: conn, db: cfg.Database, version: *v, parallelism: cfg.QueryParallelism}
	s.dedupTk = v.Version.Major > 22 || (v.Version.Major == 22 && v.Version.Minor >= 2)
	if err := s.migrate(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func (s *ClickHouseStore) migrate(ctx context.Context) error { return s.migrateTo(ctx, chMigrations) }

// migrateTo applies the steps of ms that the database has not recorded yet.
func (s *ClickHouseStore) migrateTo(ctx context.Context, ms []chMigration) error {
	if err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (version UInt32, applied_at DateTime)
		ENGINE = MergeTree() ORDER BY version`); err != nil {
		return fmt.Errorf("clickhouse migrate: create schema_versions: %w", err)
	}
	var current uint32
	if err := s.conn.QueryRow(ctx, `SELECT max(version) FROM schema_versions`).Scan(&current); err != nil {
		return fmt.Errorf("clickhouse migrate: read version: %w", err)
	}
	for _, m := range ms {
		if uint32(m.Version) <= current {
			continue
		}
		var stmts []string
		if m.Statements != nil {
			stmts = m.Statements(s)
		}
		for i, stmt := range stmts {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse migrate to %d, statement %d: %w", m.Version, i+1, err)
			}
		}
		for _, c := range m.Columns {
			if err := s.addColumn(ctx, c); err != nil {
				return fmt.Errorf("clickhouse migrate to %d: %w", m.Version, err)
			}
		}
		batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO schema_versions (version, applied_at)`)
		if err != nil {
			return fmt.Errorf("clickhouse migrate to %d: record: %w", m.Version, err)
		}
		if err := batch.Append(uint32(m.Version), time.Now().UTC()); err != nil {
			batch.Abort()
			return fmt.Errorf("clickhouse migrate to %d: record: %w", m.Version, err)
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("clickhouse migrate to %d: record: %w", m.Version, err)
		}
	}
	return nil
}

// addColumn adds c unless the table has it already.
func (s *ClickHouseStore) addColumn(ctx context.Context, c chColumn) error {
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?`,
		s.db, c.Table, c.Name).Scan(&n); err != nil {
		return fmt.Errorf("look up column %s.%s: %w", c.Table, c.Name, err)
	}
	if n > 0 {
		return nil
	}
	if err := s.conn.Exec(ctx, "ALTER TABLE "+c.Table+" ADD COLUMN "+c.Name+" "+c.Def); err != nil {
		return fmt.Errorf("add column %s.%s: %w", c.Table, c.Name, err)
	}
	return nil
}

// Backend implements Store.
func (s *ClickHouseStore) Backend() string {
	v := s.version.Version
	return fmt.Sprintf("clickhouse %d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Ping implements Store.
func (s *ClickHouseStore) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("%w: clickhouse: %v", ErrUnavailable, err)
	}
	return nil
}

// Close implements Store.
func (s *ClickHouseStore) Close() error { return s.conn.Close() }

// withToken adds a deterministic insert_deduplication_token on servers
// that support it: a retried batch carries the same rows and so the same token.
func (s *ClickHouseStore) withToken(ctx context.Context, table string, ids []string) context.Context {
	if !s.dedupTk || len(ids) == 0 {
		return ctx
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	h := sha256.New()
	h.Write([]byte(table))
	for _, id := range sorted {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_deduplication_token": hex.EncodeToString(h.Sum(nil)),
	}))
}

// unavailable marks connection-level failures so callers can tell them apart.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: clickhouse %s: %v", ErrUnavailable, op, err)
}

// InsertEvents implements Store. Events already stored are harmless: the
// table is a ReplacingMergeTree keyed by event id and every query counts
// distinct ids; the loader also skips ids it has just read back.
func (s *ClickHouseStore) InsertEvents(ctx context.Context, events []ingest.Event) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	ctx = s.withToken(ctx, "events", ids)
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO events
		(event_id, type, occurred_at, site_id, conversation_id, actor_role, actor_id, kind, raw, loaded_at)`)
	if err != nil {
		return unavailable("prepare event insert", err)
	}
	now := time.Now().UTC()
	for _, e := range events {
		raw, err := e.Encode()
		if err != nil {
			batch.Abort()
			return err
		}
		if err := batch.Append(e.ID, string(e.Type), e.OccurredAt.UnixMilli(), e.SiteID, e.ConversationID,
			string(e.Actor.Role), e.Actor.ID, messageKind(e), string(raw), now); err != nil {
			batch.Abort()
			return fmt.Errorf("append event %s: %w", e.ID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return unavailable(fmt.Sprintf("insert %d events", len(events)), err)
	}
	return nil
}

// inSet renders values for `col IN ?`.
func inSet(vals []string) clickhouse.GroupSet {
	g := clickhouse.GroupSet{Value: make([]any, len(vals))}
	for i, v := range vals {
		g.Value[i] = v
	}
	return g
}

// keySets returns the keys as a set, and the sets of their sites and
// conversations for an IN filter (which over-selects: callers keep only
// the rows whose key is wanted).
func keySets(keys []ConversationKey) (want map[ConversationKey]bool, sites, convs map[string]bool) {
	want = make(map[ConversationKey]bool, len(keys))
	sites, convs = map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		want[k] = true
		sites[k.SiteID] = true
		convs[k.ConversationID] = true
	}
	return want, sites, convs
}

// EventCounts implements Store: distinct ids, since a retried insert
// can hold a row twice until ReplacingMergeTree merges it.
func (s *ClickHouseStore) EventCounts(ctx context.Context, keys []ConversationKey) (map[ConversationKey]int64, error) {
	out := make(map[ConversationKey]int64, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	want, siteSet, convSet := keySets(keys)
	rows, err := s.conn.Query(ctx, `SELECT site_id, conversation_id, uniqExact(event_id) FROM events
		WHERE site_id IN ? AND conversation_id IN ? GROUP BY site_id, conversation_id`, inSet(setKeys(siteSet)), inSet(setKeys(convSet)))
	if err != nil {
		return nil, unavailable("count conversation events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k ConversationKey
		var n uint64
		if err := rows.Scan(&k.SiteID, &k.ConversationID, &n); err != nil {
			return nil, fmt.Errorf("scan conversation event count: %w", err)
		}
		if want[k] {
			out[k] = int64(n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("count conversation events", err)
	}
	return out, nil
}

// ConversationEvents implements Store.
func (s *ClickHouseStore) ConversationEvents(ctx context.Context, keys []ConversationKey) (map[ConversationKey][]ingest.Event, error) {
	out := make(map[ConversationKey][]ingest.Event, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	want, siteSet, convSet := keySets(keys)
	rows, err := s.conn.Query(ctx, `SELECT site_id, conversation_id, raw FROM events
		WHERE site_id IN ? AND conversation_id IN ?`, inSet(setKeys(siteSet)), inSet(setKeys(convSet)))
	if err != nil {
		return nil, unavailable("read conversation events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k ConversationKey
		var raw string
		if err := rows.Scan(&k.SiteID, &k.ConversationID, &raw); err != nil {
			return nil, fmt.Errorf("scan conversation event: %w", err)
		}
		if !want[k] {
			continue
		}
		var e ingest.Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("stored event of %s/%s: %w", k.SiteID, k.ConversationID, err)
		}
		out[k] = append(out[k], e)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read conversation events", err)
	}
	return out, nil
}

func setKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const factColumns = `site_id, conversation_id, version, channel, team_id, agent_id, visitor_id,
	started_at, started_in_hours, last_event_at, wait_from, first_reply_at, first_response_ms, first_response_bh_ms,
	reply_ms, reply_bh_ms, queue_wait_ms, queue_wait_bh_ms, resolved_at, resolution_ms, resolution_bh_ms, reopens,
	miss_candidate, miss_at, left_at, csat, csat_at, msgs_visitor, msgs_agent, msgs_bot, notes, msg_at, msg_role, open, waiting_since,
	assign_agents, assign_from, assign_to`

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nonNilU8(v []uint8) []uint8 {
	if v == nil {
		return []uint8{}
	}
	return v
}

func nonNil(v []int64) []int64 {
	if v == nil {
		return []int64{}
	}
	return v
}

// WriteFacts implements Store: rows are appended with their version and
// ReplacingMergeTree(version) keeps the highest; queries read FINAL. The
// two tables are written at once; it returns when both are durable.
func (s *ClickHouseStore) WriteFacts(ctx context.Context, conv []ConversationFacts, mod []ModerationFact) error {
	if len(mod) == 0 {
		return s.writeConversationFacts(ctx, conv)
	}
	modErr := make(chan error, 1)
	go func() { modErr <- s.writeModerationFacts(ctx, mod) }()
	convErr := s.writeConversationFacts(ctx, conv)
	if err := <-modErr; err != nil {
		return err
	}
	return convErr
}

func (s *ClickHouseStore) writeConversationFacts(ctx context.Context, conv []ConversationFacts) error {
	if len(conv) > 0 {
		ids := make([]string, len(conv))
		for i, f := range conv {
			ids[i] = fmt.Sprintf("%s/%s/%d", f.SiteID, f.ConversationID, f.Version)
		}
		batch, err := s.conn.PrepareBatch(s.withToken(ctx, "conversation_facts", ids), "INSERT INTO conversation_facts ("+factColumns+")")
		if err != nil {
			return unavailable("prepare facts insert", err)
		}
		for _, f := range conv {
			agents := f.AssignAgents
			if agents == nil {
				agents = []string{}
			}
			if err := batch.Append(f.SiteID, f.ConversationID, uint64(f.Version), f.Channel, f.TeamID, f.AgentID, f.VisitorID,
				f.StartedAt, b2u(f.StartedInHours), f.LastEventAt, f.WaitFrom, f.FirstReplyAt, f.FirstResponseMs, f.FirstResponseBhMs,
				nonNil(f.ReplyMs), nonNil(f.ReplyBhMs), nonNil(f.QueueWaitMs), nonNil(f.QueueWaitBhMs), f.ResolvedAt, f.ResolutionMs,
				f.ResolutionBhMs, f.Reopens, b2u(f.MissCandidate), f.MissAt, f.LeftAt, f.CSAT, f.CSATAt, f.MsgsVisitor, f.MsgsAgent,
				f.MsgsBot, f.Notes, nonNil(f.MsgAt), nonNilU8([]uint8(f.MsgRole)), b2u(f.Open), f.WaitingSince, agents, nonNil(f.AssignFrom), nonNil(f.AssignTo)); err != nil {
				batch.Abort()
				return fmt.Errorf("append facts %s: %w", f.ConversationID, err)
			}
		}
		if err := batch.Send(); err != nil {
			return unavailable(fmt.Sprintf("insert %d facts", len(conv)), err)
		}
	}
	return nil
}

func (s *ClickHouseStore) writeModerationFacts(ctx context.Context, mod []ModerationFact) error {
	if len(mod) > 0 {
		ids := make([]string, len(mod))
		for i, m := range mod {
			ids[i] = fmt.Sprintf("%s/%d", m.VerdictID, m.Version)
		}
		batch, err := s.conn.PrepareBatch(s.withToken(ctx, "moderation_facts", ids), `INSERT INTO moderation_facts
			(site_id, conversation_id, verdict_id, version, message_id, at, stage, action, categories, severity, item_id, decided_at, decision)`)
		if err != nil {
			return unavailable("prepare moderation insert", err)
		}
		for _, m := range mod {
			if err := batch.Append(m.SiteID, m.ConversationID, m.VerdictID, uint64(m.Version), m.MessageID, m.At, m.Stage,
				m.Action, m.Categories, m.Severity, m.ItemID, m.DecidedAt, m.Decision); err != nil {
				batch.Abort()
				return fmt.Errorf("append moderation fact %s: %w", m.VerdictID, err)
			}
		}
		if err := batch.Send(); err != nil {
			return unavailable(fmt.Sprintf("insert %d moderation facts", len(mod)), err)
		}
	}
	return nil
}

// Assignments implements Store.
func (s *ClickHouseStore) Assignments(ctx context.Context, q Query) ([]Assignment, error) {
	pre, where, preArgs, whereArgs := chFilter(q.Filter)
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	prewhere := ""
	if pre != "" {
		prewhere = "PREWHERE " + strings.TrimPrefix(pre, " AND ")
	}
	args := append(append(append([]any{}, preArgs...), to), whereArgs...)
	args = append(args, to, from)
	rows, err := s.conn.Query(ctx, `SELECT a, conversation_id, f, t FROM conversation_facts FINAL
		ARRAY JOIN assign_agents AS a, assign_from AS f, assign_to AS t
		`+prewhere+`
		WHERE started_at < ? AND agent_id != '' AND `+where+` AND f < ? AND (t = 0 OR t > ?)`, args...)
	if err != nil {
		return nil, unavailable("assignments", err)
	}
	defer rows.Close()
	var out []Assignment
	for rows.Next() {
		var a Assignment
		if err := rows.Scan(&a.AgentID, &a.ConversationID, &a.From, &a.To); err != nil {
			return nil, fmt.Errorf("scan assignment: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("assignments", err)
	}
	return out, nil
}

// PresenceEvents implements Store.
func (s *ClickHouseStore) PresenceEvents(ctx context.Context, from, to time.Time) ([]ingest.Event, error) {
	typ := string(ingest.AgentPresence)
	rows, err := s.conn.Query(ctx, `SELECT raw FROM events
		WHERE type = ? AND occurred_at >= ? AND occurred_at < ?
		UNION ALL
		SELECT argMax(raw, occurred_at) FROM events
		WHERE type = ? AND occurred_at < ? GROUP BY conversation_id`,
		typ, from.UnixMilli(), to.UnixMilli(), typ, from.UnixMilli())
	if err != nil {
		return nil, unavailable("presence events", err)
	}
	defer rows.Close()
	var out []ingest.Event
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("scan presence event: %w", err)
		}
		var e ingest.Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("decode stored presence event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("presence events", err)
	}
	return out, nil
}

// Moderation implements Store.
func (s *ClickHouseStore) Moderation(ctx context.Context, q Query) (ModerationReport, error) {
	args := []any{q.To.UnixMilli()}
	site := ""
	if q.Filter.SiteID != "" {
		site = " AND site_id = ?"
		args = append(args, q.Filter.SiteID)
	}
	rows, err := s.conn.Query(ctx, `SELECT site_id, conversation_id, verdict_id, version, message_id, at, stage, action,
		categories, severity, item_id, decided_at, decision FROM moderation_facts FINAL WHERE at < ?`+site, args...)
	if err != nil {
		return ModerationReport{}, unavailable("moderation", err)
	}
	defer rows.Close()
	var facts []ModerationFact
	for rows.Next() {
		var m ModerationFact
		var version uint64
		if err := rows.Scan(&m.SiteID, &m.ConversationID, &m.VerdictID, &version, &m.MessageID, &m.At, &m.Stage, &m.Action,
			&m.Categories, &m.Severity, &m.ItemID, &m.DecidedAt, &m.Decision); err != nil {
			return ModerationReport{}, fmt.Errorf("scan moderation fact: %w", err)
		}
		m.Version = int64(version)
		facts = append(facts, m)
	}
	if err := rows.Err(); err != nil {
		return ModerationReport{}, unavailable("moderation", err)
	}
	return moderationReport(q, facts), nil
}

// EventCount implements Store.
func (s *ClickHouseStore) EventCount(ctx context.Context) (int64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT uniqExact(event_id) FROM events`).Scan(&n); err != nil {
		return 0, unavailable("count events", err)
	}
	return int64(n), nil
}

// RowCount returns the physical rows of events (duplicates included until merged); tests use it.
func (s *ClickHouseStore) RowCount(ctx context.Context) (int64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM events`).Scan(&n); err != nil {
		return 0, unavailable("count rows", err)
	}
	return int64(n), nil
}

// Reset implements Store.
func (s *ClickHouseStore) Reset(ctx context.Context) error {
	for _, t := range []string{"events", "conversation_facts", "moderation_facts"} {
		if err := s.conn.Exec(ctx, "TRUNCATE TABLE "+t); err != nil {
			return unavailable("truncate "+t, err)
		}
	}
	return nil
}

// DropDatabase removes the store's database; tests call it when done.
func (s *ClickHouseStore) DropDatabase(ctx context.Context) error {
	if err := s.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db); err != nil {
		return fmt.Errorf("drop database %s: %w", s.db, err)
	}
	return nil
}
