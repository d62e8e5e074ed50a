package analytics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/parleychat/parley/ingest"
	"strings"
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
	conn        driver.Conn
	db          string
	readTimeout time.Duration
	version     driver.ServerVersion
	dedupTk     bool
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
	// Schema 3 (issue 14): site targets and SLA outcomes, missed vs late,
	// last close, surveys, rating comments, engagements; moderators on
	// decisions; site profiles, held events and verified staff. Defaults
	// make rows written before read as facts without the new data (the
	// loader recomputes every site's facts when its profile arrives). The
	// engagement lists default to one entry per assignment so that ARRAY
	// JOIN over them and assign_agents always sees equal lengths.
	{Version: 3, Columns: []chColumn{
		{Table: "conversation_facts", Name: "fr_target_ms", Def: "Int64 DEFAULT 300000"},
		{Table: "conversation_facts", Name: "reply_target_ms", Def: "Int64 DEFAULT 300000"},
		{Table: "conversation_facts", Name: "sla", Def: "UInt8"},
		{Table: "conversation_facts", Name: "sla_bh", Def: "UInt8"},
		{Table: "conversation_facts", Name: "fr_deadline", Def: "Int64"},
		{Table: "conversation_facts", Name: "fr_deadline_bh", Def: "Int64"},
		{Table: "conversation_facts", Name: "replies_in_target", Def: "Int64"},
		{Table: "conversation_facts", Name: "replies_in_target_bh", Def: "Int64"},
		{Table: "conversation_facts", Name: "last_resolved_at", Def: "Int64"},
		{Table: "conversation_facts", Name: "resolution_last_ms", Def: "Int64 DEFAULT -1"},
		{Table: "conversation_facts", Name: "resolution_last_bh_ms", Def: "Int64 DEFAULT -1"},
		{Table: "conversation_facts", Name: "close_reason", Def: "String"},
		{Table: "conversation_facts", Name: "miss_reason", Def: "String"},
		{Table: "conversation_facts", Name: "csat_comment", Def: "String"},
		{Table: "conversation_facts", Name: "survey_at", Def: "Int64"},
		// No constants in these defaults: 18.16 folds a constant into a
		// column named by its value, which clashes with the same literal
		// in a query ("Column '0' already exists") when old parts compute
		// the defaults on read.
		{Table: "conversation_facts", Name: "eng_team", Def: "Array(String) DEFAULT arrayMap(a -> arrayStringConcat(arrayFilter(x -> x != x, [a])), assign_agents)"},
		{Table: "conversation_facts", Name: "eng_start", Def: "Array(UInt8) DEFAULT arrayMap(f -> toUInt8(f = f), assign_from)"},
		{Table: "conversation_facts", Name: "eng_end", Def: "Array(UInt8) DEFAULT arrayMap(t -> toUInt8(t != t - t), assign_to)"},
		{Table: "conversation_facts", Name: "eng_fr_ms", Def: "Array(Int64) DEFAULT arrayMap(f -> bitNot(f - f), assign_from)"},
		{Table: "conversation_facts", Name: "eng_fr_bh_ms", Def: "Array(Int64) DEFAULT arrayMap(f -> bitNot(f - f), assign_from)"},
		{Table: "conversation_facts", Name: "eng_reply_ms", Def: "Array(Array(Int64)) DEFAULT arrayMap(a -> emptyArrayInt64(), assign_agents)"},
		{Table: "conversation_facts", Name: "eng_reply_bh_ms", Def: "Array(Array(Int64)) DEFAULT arrayMap(a -> emptyArrayInt64(), assign_agents)"},
		{Table: "conversation_facts", Name: "eng_msgs", Def: "Array(Int64) DEFAULT arrayMap(f -> f - f, assign_from)"},
		{Table: "conversation_facts", Name: "eng_replies_in_target", Def: "Array(Int64) DEFAULT arrayMap(f -> f - f, assign_from)"},
		{Table: "conversation_facts", Name: "eng_replies_in_target_bh", Def: "Array(Int64) DEFAULT arrayMap(f -> f - f, assign_from)"},
		// close_reason as a number (closeCode), so that reports carry no
		// string through FINAL. Written by the loader, not MATERIALIZED:
		// 18.16 clashes a materialized expression's constants with the same
		// literals in a query when it computes them for old parts.
		{Table: "conversation_facts", Name: "close_code", Def: "UInt8"},
		// What a report reads of a conversation, packed: FINAL's cost grows
		// with every column it carries (about 15 ms per column per million
		// conversations on 18.16), so reports read these few instead of
		// twenty (flags, engagementSums, the message and rating slots).
		{Table: "conversation_facts", Name: "flags", Def: "UInt64"},
		{Table: "conversation_facts", Name: "eng_sums", Def: "Array(Int64)"},
		{Table: "conversation_facts", Name: "eng_sums_bh", Def: "Array(Int64)"},
		{Table: "conversation_facts", Name: "eng_fr_all", Def: "Array(Int64)"},
		{Table: "conversation_facts", Name: "eng_fr_all_bh", Def: "Array(Int64)"},
		{Table: "conversation_facts", Name: "eng_rep_all", Def: "Array(Int64)"},
		{Table: "conversation_facts", Name: "eng_rep_all_bh", Def: "Array(Int64)"},
		{Table: "conversation_facts", Name: "eng_hand", Def: "Array(Int64)"},
		// Messages, ratings and surveys as one list (rateSlots); rows
		// written before have the messages only (no constants in these
		// defaults: see the engagement lists).
		{Table: "conversation_facts", Name: "all_slots", Def: "Array(Int64) DEFAULT msg_slots"},
		{Table: "conversation_facts", Name: "all_slot_n", Def: "Array(UInt32) DEFAULT msg_slot_n"},
		{Table: "conversation_facts", Name: "all_at", Def: "Array(Int64) DEFAULT msg_at"},
		{Table: "conversation_facts", Name: "all_role", Def: "Array(UInt8) DEFAULT msg_role"},
		{Table: "moderation_facts", Name: "decided_by", Def: "String"},
	}, Statements: func(s *ClickHouseStore) []string {
		return []string{
			// One row per profile change; version = the event's occurred_at,
			// so the newest state wins.
			`CREATE TABLE IF NOT EXISTS site_profiles (
				site_id String,
				version UInt64,
				doc String
			) ENGINE = ReplacingMergeTree(version) ORDER BY site_id`,
			// The highest revision all of a site's facts were built with.
			`CREATE TABLE IF NOT EXISTS site_facts (
				site_id String,
				facts_rev UInt64
			) ENGINE = ReplacingMergeTree(facts_rev) ORDER BY site_id`,
			// Events of sites without a profile; state 0 = held, 1 =
			// released, 2 = dead-lettered (version 0 held, 1 finished).
			`CREATE TABLE IF NOT EXISTS held_events (
				site_id String,
				event_id String,
				version UInt8,
				state UInt8,
				held_at Int64,
				topic String,
				kafka_partition Int32,
				kafka_offset Int64,
				raw String
			) ENGINE = ReplacingMergeTree(version) ORDER BY (site_id, event_id)`,
			`CREATE TABLE IF NOT EXISTS staff_seen (
				staff_id String,
				seen_at Int64
			) ENGINE = ReplacingMergeTree() ORDER BY staff_id`,
		}
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
	dialer := &net.Dialer{Timeout: cfg.DialTimeout}
	open := func(db string) (driver.Conn, error) {
		return clickhouse.Open(&clickhouse.Options{
			Protocol: clickhouse.Native,
			Addr:     []string{cfg.Addr},
			Auth:     clickhouse.Auth{Database: db, Username: cfg.Username, Password: cfg.Password},
			// Connecting follows the caller's context (a probe's deadline),
			// not only DialTimeout.
			DialContext: func(ctx context.Context, addr string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", addr)
			},
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
	s := &ClickHouseStore{conn: conn, db: cfg.Database, readTimeout: cfg.ReadTimeout, version: *v, parallelism: cfg.QueryParallelism}
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
		batch, err := s.prepareBatch(ctx, `INSERT INTO schema_versions (version, applied_at)`)
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

// Ping implements Store. It answers by ctx's deadline even while the
// driver waits longer (a new connection's handshake waits up to
// DialTimeout whatever the context says); the ping goes on in the
// background until then.
func (s *ClickHouseStore) Ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.conn.Ping(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: clickhouse: %v", ErrUnavailable, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: clickhouse did not answer a ping: %v", ErrUnavailable, ctx.Err())
	}
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

// finalBlockRows is the block size of the queries that read
// conversation_facts FINAL. 18.16's FINAL merges in one thread; with the
// default 65 536 rows a block's columns outgrow the CPU caches, and 8 192
// made the 90-day report's queries about a quarter faster (docs/metrics.md,
// "Query performance").
const finalBlockRows = 8192

// finalQuery is the context of a query that reads a table FINAL.
func finalQuery(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_block_size": finalBlockRows}))
}

// prepareBatch starts a batch insert. clickhouse-go closes a batch's
// connection when the batch's context ends, from a goroutine that can
// lose a race with the end of Send: a context cancelled right after Send
// returned (a deferred cancel) may close the connection after it went
// back to the pool, and the next query on it fails with "use of closed
// network connection". So the batch runs under a context of its own that
// follows the caller's cancellation only until Send returns (cancelling
// an insert still aborts it: the loader relies on that to not store a
// batch's events twice on servers without insert deduplication), and
// keeps the caller's deadline (or gets ReadTimeout).
func (s *ClickHouseStore) prepareBatch(ctx context.Context, query string) (driver.Batch, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.readTimeout)
	}
	bctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	follow := context.AfterFunc(ctx, cancel)
	// Released well after the batch is done, never right after Send.
	time.AfterFunc(time.Until(deadline)+time.Second, cancel)
	b, err := s.conn.PrepareBatch(bctx, query)
	if err != nil {
		follow()
		return nil, err
	}
	return &detachedBatch{Batch: b, follow: follow}, nil
}

// detachedBatch stops following the caller's cancellation once Send
// returned (prepareBatch).
type detachedBatch struct {
	driver.Batch
	follow func() bool
}

func (b *detachedBatch) Send() error {
	err := b.Batch.Send()
	b.follow()
	return err
}

func (b *detachedBatch) Abort() error {
	err := b.Batch.Abort()
	b.follow()
	return err
}

// unavailable marks connection-level failures so callers can tell them apart.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: clickhouse %s: %v", ErrUnavailable, op, err)
}

// InsertEvents implements Store. Events already stored are harmless: the
// table is a ReplacingMergeTree keyed by event id and every query counts
// distinct ids; the loader also skips ids it has just read back.
func (s *ClickHouseStore) InsertEvents(ctx context.Context, events []ingest.Event) error {
	events, err := s.unstored(ctx, events)
	if err != nil || len(events) == 0 {
		return err
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	ctx = s.withToken(ctx, "events", ids)
	batch, err := s.prepareBatch(ctx, `INSERT INTO events
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

// unstored drops the events that do not build facts (site profiles,
// presence) and are stored already. The loader checks the events of the
// conversations it rebuilds itself (it reads them back); these others it
// does not read, and a batch retried after an insert that went through
// but was reported failed would store them twice (insert deduplication
// tokens catch only an identical retry, and 18.16 has none). The lookup
// is by sorting key, so it reads the few granules of those keys.
func (s *ClickHouseStore) unstored(ctx context.Context, events []ingest.Event) ([]ingest.Event, error) {
	var ids []string
	sites, convs := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		if buildsFacts(e) {
			continue
		}
		ids = append(ids, e.ID)
		sites[e.SiteID], convs[e.ConversationID] = true, true
	}
	if len(ids) == 0 {
		return events, nil
	}
	rows, err := s.conn.Query(ctx, `SELECT event_id FROM events
		WHERE site_id IN ? AND conversation_id IN ? AND event_id IN ?`,
		inSet(setKeys(sites)), inSet(setKeys(convs)), inSet(ids))
	if err != nil {
		return nil, unavailable("read stored event ids", err)
	}
	defer rows.Close()
	stored := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, unavailable("read stored event ids", err)
		}
		stored[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read stored event ids", err)
	}
	if len(stored) == 0 {
		return events, nil
	}
	out := make([]ingest.Event, 0, len(events))
	for _, e := range events {
		if !stored[e.ID] {
			out = append(out, e)
		}
	}
	return out, nil
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
	assign_agents, assign_from, assign_to,
	fr_target_ms, reply_target_ms, sla, sla_bh, fr_deadline, fr_deadline_bh, replies_in_target, replies_in_target_bh,
	last_resolved_at, resolution_last_ms, resolution_last_bh_ms, close_reason, miss_reason, csat_comment, survey_at,
	eng_team, eng_start, eng_end, eng_fr_ms, eng_fr_bh_ms, eng_reply_ms, eng_reply_bh_ms, eng_msgs,
	eng_replies_in_target, eng_replies_in_target_bh`

// derivedColumns are computed from the facts when written (packFlags,
// engagementSums, allEntries) for reports; they are not read back.
const derivedColumns = `flags, eng_sums, eng_sums_bh, eng_fr_all, eng_fr_all_bh, eng_rep_all, eng_rep_all_bh, eng_hand,
	all_slots, all_slot_n, all_at, all_role`

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// factRow is a facts row: factColumns, then derivedColumns.
func factRow(f *ConversationFacts) []any {
	f.normalise()
	row := []any{f.SiteID, f.ConversationID, uint64(f.Version), f.Channel, f.TeamID, f.AgentID, f.VisitorID,
		f.StartedAt, b2u(f.StartedInHours), f.LastEventAt, f.WaitFrom, f.FirstReplyAt, f.FirstResponseMs, f.FirstResponseBhMs,
		f.ReplyMs, f.ReplyBhMs, f.QueueWaitMs, f.QueueWaitBhMs, f.ResolvedAt, f.ResolutionMs, f.ResolutionBhMs, f.Reopens,
		b2u(f.Missed), f.MissAt, f.LeftAt, f.CSAT, f.CSATAt, f.MsgsVisitor, f.MsgsAgent, f.MsgsBot, f.Notes, f.MsgAt, []uint8(f.MsgRole),
		b2u(f.Open), f.WaitingSince, f.AssignAgents, f.AssignFrom, f.AssignTo,
		f.FRTargetMs, f.ReplyTargetMs, f.SLA, f.SLABh, f.FRDeadline, f.FRDeadlineBh, f.RepliesInTarget, f.RepliesInTargetBh,
		f.LastResolvedAt, f.ResolutionLastMs, f.ResolutionLastBhMs, f.CloseReason, f.MissReason, f.CSATComment, f.SurveyAt,
		f.EngTeam, []uint8(f.EngStart), []uint8(f.EngEnd), f.EngFRMs, f.EngFRBhMs, f.EngReplyMs, f.EngReplyBhMs, f.EngMsgs,
		f.EngRepliesInTarget, f.EngRepliesInTargetBh}
	e := engagementSums(f)
	slots, slotN, at, role := allEntries(f)
	return append(row, packFlags(f), []int64{e.count, e.tin, e.tout, e.frMet, int64(len(e.fr)), e.later, e.repMet},
		[]int64{e.count, e.tin, e.tout, e.frMetBh, int64(len(e.fr)), e.later, e.repMetBh},
		e.fr, e.frBh, e.rep, e.repBh, e.handling, slots, slotN, at, role)
}

// engSums are a conversation's engagements summed up: what a report not
// split by agent or team needs of them (addEngagement's inputs). The
// eng_sums column holds count, transfers in, transfers out, first
// responses within target, first responses, later replies, later replies
// within target (eng_sums_bh: the same on the business clock).
type engSums struct {
	count, tin, tout, frMet, frMetBh, later, repMet, repMetBh int64
	fr, frBh, rep, repBh, handling                            []int64
}

func engagementSums(f *ConversationFacts) engSums {
	s := engSums{count: int64(len(f.AssignAgents)), fr: []int64{}, frBh: []int64{}, rep: []int64{}, repBh: []int64{}, handling: []int64{}}
	for e := range f.AssignAgents {
		if f.EngStart[e] == engStartTransfer {
			s.tin++
		}
		if f.EngEnd[e] == engEndTransferred {
			s.tout++
		}
		if f.EngFRMs[e] >= 0 {
			s.fr, s.frBh = append(s.fr, f.EngFRMs[e]), append(s.frBh, f.EngFRBhMs[e])
			if f.EngFRMs[e] <= f.FRTargetMs {
				s.frMet++
			}
			if f.EngFRBhMs[e] <= f.FRTargetMs {
				s.frMetBh++
			}
		}
		s.rep, s.repBh = append(s.rep, f.EngReplyMs[e]...), append(s.repBh, f.EngReplyBhMs[e]...)
		s.later += max(int64(len(f.EngReplyMs[e]))-1, 0)
		s.repMet, s.repMetBh = s.repMet+f.EngRepliesInTarget[e], s.repMetBh+f.EngRepliesInTargetBh[e]
		if f.AssignTo[e] > 0 {
			s.handling = append(s.handling, f.AssignTo[e]-f.AssignFrom[e])
		}
	}
	return s
}

// Bits of the flags column.
const (
	flagSLA        = 0  // 3 bits: SLA
	flagSLABh      = 3  // 3 bits: SLABh
	flagClose      = 6  // 3 bits: closeCode
	flagMissed     = 9  // Missed
	flagResolved   = 10 // ResolvedAt > 0
	flagReopened   = 11 // Reopens > 0
	flagHasAgent   = 12 // AgentID != ""
	flagOffline    = 13 // Channel offline_form
	flagReopens    = 16 // 16 bits: Reopens (capped at 65535)
	maxFlagReopens = 1<<16 - 1
)

// packFlags packs what a report reads of a conversation's codes and
// booleans into one number.
func packFlags(f *ConversationFacts) uint64 {
	v := uint64(f.SLA)<<flagSLA | uint64(f.SLABh)<<flagSLABh | uint64(closeCode(f))<<flagClose
	for bit, on := range map[int]bool{flagMissed: f.Missed, flagResolved: f.ResolvedAt > 0, flagReopened: f.Reopens > 0,
		flagHasAgent: f.AgentID != "", flagOffline: f.Channel == ingest.ChannelOffline} {
		if on {
			v |= 1 << bit
		}
	}
	return v | uint64(min(f.Reopens, maxFlagReopens))<<flagReopens
}

// closeCode numbers who closed a conversation last: 0 not closed, 1
// agent, 2 bot, 3 visitor, 4 inactive, 5 any other reason.
func closeCode(f *ConversationFacts) uint8 {
	if f.LastResolvedAt == 0 {
		return 0
	}
	switch f.CloseReason {
	case "agent":
		return 1
	case "bot":
		return 2
	case "visitor":
		return 3
	case closeReasonInactive:
		return 4
	}
	return 5
}

// Rating and survey entries in allEntries: in the slot list
// -(slot*16 + code) - 1 (code: rating 1–5 as 0–4, 5 a survey not
// answered, 6 one answered; +8 for an offline form); in the time list
// role 11–15 (rating), 16, 17 (survey), +10 for an offline form.
const (
	slotCodeOffline = 8
	roleRating      = 10 // + rating
	roleSurvey      = 16 // + answered
	roleOffline     = 10
)

// allEntries lists a conversation's messages (as msg_slots and msg_at do)
// followed by its rating and survey, for the message query.
func allEntries(f *ConversationFacts) (slots []int64, slotN []uint32, at []int64, role []uint8) {
	at, role = append([]int64{}, f.MsgAt...), append([]uint8{}, f.MsgRole...)
	count := map[int64]uint32{}
	for i, m := range f.MsgAt {
		k := floorDiv(m, slotMs)*4 + int64(f.MsgRole[i]) - 1
		if _, ok := count[k]; !ok {
			slots = append(slots, k)
		}
		count[k]++
	}
	for _, k := range slots {
		slotN = append(slotN, count[k])
	}
	if slots == nil {
		slots, slotN = []int64{}, []uint32{}
	}
	if f.StartedAt <= 0 {
		return slots, slotN, at, role
	}
	off, roleOff := int64(0), uint8(0)
	if f.Channel == ingest.ChannelOffline {
		off, roleOff = slotCodeOffline, roleOffline
	}
	add := func(t, code int64, r uint8) {
		slots, slotN = append(slots, -(floorDiv(t, slotMs)*16+code+off)-1), append(slotN, 1)
		at, role = append(at, t), append(role, r+roleOff)
	}
	if f.CSAT >= 1 && f.CSAT <= 5 {
		add(f.CSATAt, f.CSAT-1, uint8(roleRating+f.CSAT))
	}
	if f.SurveyAt > 0 {
		answered := int64(0)
		if f.CSAT > 0 {
			answered = 1
		}
		add(f.SurveyAt, 5+answered, uint8(roleSurvey+answered))
	}
	return slots, slotN, at, role
}

// scanFacts reads a row of factColumns.
func scanFacts(rows interface{ Scan(...any) error }) (ConversationFacts, error) {
	var f ConversationFacts
	var version uint64
	var inHours, miss, open uint8
	var roles, engStart, engEnd []uint8
	if err := rows.Scan(&f.SiteID, &f.ConversationID, &version, &f.Channel, &f.TeamID, &f.AgentID, &f.VisitorID,
		&f.StartedAt, &inHours, &f.LastEventAt, &f.WaitFrom, &f.FirstReplyAt, &f.FirstResponseMs, &f.FirstResponseBhMs,
		&f.ReplyMs, &f.ReplyBhMs, &f.QueueWaitMs, &f.QueueWaitBhMs, &f.ResolvedAt, &f.ResolutionMs, &f.ResolutionBhMs, &f.Reopens,
		&miss, &f.MissAt, &f.LeftAt, &f.CSAT, &f.CSATAt, &f.MsgsVisitor, &f.MsgsAgent, &f.MsgsBot, &f.Notes, &f.MsgAt, &roles,
		&open, &f.WaitingSince, &f.AssignAgents, &f.AssignFrom, &f.AssignTo,
		&f.FRTargetMs, &f.ReplyTargetMs, &f.SLA, &f.SLABh, &f.FRDeadline, &f.FRDeadlineBh, &f.RepliesInTarget, &f.RepliesInTargetBh,
		&f.LastResolvedAt, &f.ResolutionLastMs, &f.ResolutionLastBhMs, &f.CloseReason, &f.MissReason, &f.CSATComment, &f.SurveyAt,
		&f.EngTeam, &engStart, &engEnd, &f.EngFRMs, &f.EngFRBhMs, &f.EngReplyMs, &f.EngReplyBhMs, &f.EngMsgs,
		&f.EngRepliesInTarget, &f.EngRepliesInTargetBh); err != nil {
		return f, fmt.Errorf("scan facts: %w", err)
	}
	f.Version, f.StartedInHours, f.Missed, f.Open = int64(version), inHours == 1, miss == 1, open == 1
	f.MsgRole, f.EngStart, f.EngEnd = Codes(roles), Codes(engStart), Codes(engEnd)
	f.normalise()
	return f, nil
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
	if len(conv) == 0 {
		return nil
	}
	ids := make([]string, len(conv))
	for i, f := range conv {
		ids[i] = fmt.Sprintf("%s/%s/%d", f.SiteID, f.ConversationID, f.Version)
	}
	batch, err := s.prepareBatch(s.withToken(ctx, "conversation_facts", ids), "INSERT INTO conversation_facts ("+factColumns+", "+derivedColumns+")")
	if err != nil {
		return unavailable("prepare facts insert", err)
	}
	for i := range conv {
		if err := batch.Append(factRow(&conv[i])...); err != nil {
			batch.Abort()
			return fmt.Errorf("append facts %s: %w", conv[i].ConversationID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return unavailable(fmt.Sprintf("insert %d facts", len(conv)), err)
	}
	return nil
}

func (s *ClickHouseStore) writeModerationFacts(ctx context.Context, mod []ModerationFact) error {
	if len(mod) == 0 {
		return nil
	}
	ids := make([]string, len(mod))
	for i, m := range mod {
		ids[i] = fmt.Sprintf("%s/%d", m.VerdictID, m.Version)
	}
	batch, err := s.prepareBatch(s.withToken(ctx, "moderation_facts", ids), `INSERT INTO moderation_facts
		(site_id, conversation_id, verdict_id, version, message_id, at, stage, action, categories, severity, item_id, decided_at, decision, decided_by)`)
	if err != nil {
		return unavailable("prepare moderation insert", err)
	}
	for _, m := range mod {
		if err := batch.Append(m.SiteID, m.ConversationID, m.VerdictID, uint64(m.Version), m.MessageID, m.At, m.Stage,
			m.Action, m.Categories, m.Severity, m.ItemID, m.DecidedAt, m.Decision, m.DecidedBy); err != nil {
			batch.Abort()
			return fmt.Errorf("append moderation fact %s: %w", m.VerdictID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return unavailable(fmt.Sprintf("insert %d moderation facts", len(mod)), err)
	}
	return nil
}

// Assignments implements Store: ownership intervals (engagements)
// overlapping the range, filtered by the engagement's agent and team.
func (s *ClickHouseStore) Assignments(ctx context.Context, q Query) ([]Assignment, error) {
	f := chFilterOf(q.Filter)
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	where, whereArgs := f.engagementWhere()
	args := append(append([]any{to}, f.preArgs...), whereArgs...)
	args = append(args, to, from)
	rows, err := s.conn.Query(finalQuery(ctx), `SELECT ea, conversation_id, ef, et FROM conversation_facts FINAL
		ARRAY JOIN assign_agents AS ea, assign_from AS ef, assign_to AS et, eng_team AS eteam
		PREWHERE started_at < ? AND started_at > 0`+f.pre+`
		WHERE `+where+` AND ef < ? AND (et = 0 OR et > ?)`, args...)
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

// ModerationFacts implements Store. action and at never change between
// versions of a fact, so they filter before FINAL.
func (s *ClickHouseStore) ModerationFacts(ctx context.Context, q Query) ([]ModerationFact, error) {
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	args := []any{to, ingest.ActionAllow}
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
	args = append(args, from, from)
	rows, err := s.conn.Query(finalQuery(ctx), `SELECT site_id, conversation_id, verdict_id, version, message_id, at, stage, action,
		categories, severity, item_id, decided_at, decision, decided_by FROM moderation_facts FINAL
		PREWHERE at < ? AND action != ?`+site+`
		WHERE at >= ? OR (item_id != '' AND (decided_at = 0 OR decided_at >= ?))`, args...)
	if err != nil {
		return nil, unavailable("moderation", err)
	}
	defer rows.Close()
	var facts []ModerationFact
	for rows.Next() {
		var m ModerationFact
		var version uint64
		if err := rows.Scan(&m.SiteID, &m.ConversationID, &m.VerdictID, &version, &m.MessageID, &m.At, &m.Stage, &m.Action,
			&m.Categories, &m.Severity, &m.ItemID, &m.DecidedAt, &m.Decision, &m.DecidedBy); err != nil {
			return nil, fmt.Errorf("scan moderation fact: %w", err)
		}
		m.Version = int64(version)
		facts = append(facts, m)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("moderation", err)
	}
	return facts, nil
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
	for _, t := range []string{"events", "conversation_facts", "moderation_facts", "held_events"} {
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
