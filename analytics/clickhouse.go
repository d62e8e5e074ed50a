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
}

// ClickHouseStore is the Store on ClickHouse. It only uses SQL that runs on
// 18.16 (Debian's server) and current servers; insert deduplication tokens
// are switched on for servers that know them (22.2+).
type ClickHouseStore struct {
	conn    driver.Conn
	db      string
	version driver.ServerVersion
	dedupTk bool
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// chMigration is one schema step; each statement must be idempotent
// (IF NOT EXISTS) because a crash can interrupt a step midway.
type chMigration struct {
	Version    int
	Statements func(s *ClickHouseStore) []string
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
	open := func(db string) (driver.Conn, error) {
		return clickhouse.Open(&clickhouse.Options{
			Protocol:     clickhouse.Native,
			Addr:         []string{cfg.Addr},
			Auth:         clickhouse.Auth{Database: db, Username: cfg.Username, Password: cfg.Password},
			DialTimeout:  cfg.DialTimeout,
			ReadTimeout:  cfg.ReadTimeout,
			MaxOpenConns: 8,
			MaxIdleConns: 4,
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
	s := &ClickHouseStore{conn: conn, db: cfg.Database, version: *v}
	s.dedupTk = v.Version.Major > 22 || (v.Version.Major == 22 && v.Version.Minor >= 2)
	if err := s.migrate(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func (s *ClickHouseStore) migrate(ctx context.Context) error {
	if err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (version UInt32, applied_at DateTime)
		ENGINE = MergeTree() ORDER BY version`); err != nil {
		return fmt.Errorf("clickhouse migrate: create schema_versions: %w", err)
	}
	var current uint32
	if err := s.conn.QueryRow(ctx, `SELECT max(version) FROM schema_versions`).Scan(&current); err != nil {
		return fmt.Errorf("clickhouse migrate: read version: %w", err)
	}
	for _, m := range chMigrations {
		if uint32(m.Version) <= current {
			continue
		}
		for i, stmt := range m.Statements(s) {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse migrate to %d, statement %d: %w", m.Version, i+1, err)
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

// ConversationEvents implements Store.
func (s *ClickHouseStore) ConversationEvents(ctx context.Context, keys []ConversationKey) (map[ConversationKey][]ingest.Event, error) {
	out := make(map[ConversationKey][]ingest.Event, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	want := make(map[ConversationKey]bool, len(keys))
	siteSet, convSet := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		want[k] = true
		siteSet[k.SiteID] = true
		convSet[k.ConversationID] = true
	}
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
// ReplacingMergeTree(version) keeps the highest; queries read FINAL.
func (s *ClickHouseStore) WriteFacts(ctx context.Context, conv []ConversationFacts, mod []ModerationFact) error {
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

// chFilter renders a filter over conversation_facts.
func chFilter(f Filter) (string, []any) {
	var parts []string
	var args []any
	add := func(col, v string) {
		if v != "" {
			parts = append(parts, col+" = ?")
			args = append(args, v)
		}
	}
	add("site_id", f.SiteID)
	add("team_id", f.TeamID)
	add("agent_id", f.AgentID)
	add("channel", f.Channel)
	switch f.Hours {
	case "in":
		parts = append(parts, "started_in_hours = 1")
	case "out":
		parts = append(parts, "started_in_hours = 0")
	}
	if len(parts) == 0 {
		return "1", nil
	}
	return strings.Join(parts, " AND "), args
}

// chBucket renders the bucket of a millisecond column as SQL: the same
// arithmetic as bucketOf, with the zone's offsets over the range inlined.
func chBucket(b Bucket, spans []zoneSpan, col string) string {
	if b == BucketNone {
		return "toInt64(0)"
	}
	sec := "intDiv(" + col + ", 1000)"
	var off string
	if len(spans) == 1 {
		off = fmt.Sprintf("toInt64(%d)", spans[0].Offset)
	} else {
		var sb strings.Builder
		sb.WriteString("multiIf(")
		for _, z := range spans[:len(spans)-1] {
			fmt.Fprintf(&sb, "%s < %d, toInt64(%d), ", sec, z.Until, z.Offset)
		}
		fmt.Fprintf(&sb, "toInt64(%d))", spans[len(spans)-1].Offset)
		off = sb.String()
	}
	local := "(" + sec + " + " + off + ")"
	switch b {
	case BucketHour:
		return "intDiv(" + local + ", 3600) * 3600"
	case BucketDay:
		return "intDiv(" + local + ", 86400) * 86400"
	default: // week, Monday-based
		return "(intDiv(intDiv(" + local + ", 86400) + 3, 7) * 7 - 3) * 86400"
	}
}

func chDim(d Dimension) string {
	switch d {
	case DimSite:
		return "site_id"
	case DimTeam:
		return "team_id"
	case DimAgent:
		return "agent_id"
	case DimChannel:
		return "channel"
	}
	return "''"
}

// Report implements Store with two aggregate queries: conversations by
// start bucket and messages by send bucket.
//
// PREWHERE before FINAL filters versions of a row before they are merged.
// That is only correct on columns whose newest version always passes when
// any version does: started_at never changes once set (0 is excluded) and
// last_event_at only grows. Mutable columns (open, agent, …) stay in WHERE.
func (s *ClickHouseStore) Report(ctx context.Context, q Query) (Report, error) {
	spans := zoneSpans(q.Location, q.From, q.To)
	where, fargs := chFilter(q.Filter)
	fr, reply, wait, res := "first_response_ms", "reply_ms", "queue_wait_ms", "resolution_ms"
	if q.Clock == ClockBusiness {
		fr, reply, wait, res = "first_response_bh_ms", "reply_bh_ms", "queue_wait_bh_ms", "resolution_bh_ms"
	}
	now := q.Now.UnixMilli()
	convSQL := fmt.Sprintf(`SELECT %s AS k, %s AS b,
		count(), countIf(resolved_at > 0), countIf(reopens > 0), sum(reopens),
		countIf(miss_candidate = 1 AND miss_at <= %d), countIf(channel = 'offline_form'), countIf(agent_id != ''),
		countIf(%[4]s >= 0), quantileExactIf(0.5)(%[4]s, %[4]s >= 0), quantileExactIf(0.9)(%[4]s, %[4]s >= 0), sumIf(%[4]s, %[4]s >= 0),
		sum(length(%[5]s)), quantileExactArray(0.5)(%[5]s), quantileExactArray(0.9)(%[5]s), sumArray(%[5]s),
		sum(length(%[6]s)), quantileExactArray(0.5)(%[6]s), quantileExactArray(0.9)(%[6]s), sumArray(%[6]s),
		countIf(%[7]s >= 0), quantileExactIf(0.5)(%[7]s, %[7]s >= 0), quantileExactIf(0.9)(%[7]s, %[7]s >= 0), sumIf(%[7]s, %[7]s >= 0),
		countIf(csat > 0), countIf(csat >= 4)
		FROM conversation_facts FINAL
		PREWHERE started_at >= ? AND started_at < ? AND started_at > 0
		WHERE %[8]s
		GROUP BY k, b`, chDim(q.Split), chBucket(q.Bucket, spans, "started_at"), now, fr, reply, wait, res, where)
	args := append([]any{q.From.UnixMilli(), q.To.UnixMilli()}, fargs...)
	rows, err := s.conn.Query(ctx, convSQL, args...)
	if err != nil {
		return Report{}, unavailable("report conversations", err)
	}
	var conv []group
	for rows.Next() {
		var g group
		var n, resolved, reopened, missed, offline, handled, rated, pos uint64
		var reopens int64
		var frN, waitN, resN uint64
		var replyN uint64
		var fr50, fr90, frSum, rp50, rp90, rpSum, w50, w90, wSum, r50, r90, rSum int64
		if err := rows.Scan(&g.key, &g.bucket, &n, &resolved, &reopened, &reopens, &missed, &offline, &handled,
			&frN, &fr50, &fr90, &frSum, &replyN, &rp50, &rp90, &rpSum, &waitN, &w50, &w90, &wSum,
			&resN, &r50, &r90, &rSum, &rated, &pos); err != nil {
			rows.Close()
			return Report{}, fmt.Errorf("scan report row: %w", err)
		}
		g.conv = ConversationCounts{New: int64(n), Resolved: int64(resolved), Reopened: int64(reopened), Reopens: reopens,
			Missed: int64(missed), Offline: int64(offline), Handled: int64(handled)}
		g.fr = durStats{int64(frN), fr50, fr90, frSum}
		g.reply = durStats{int64(replyN), rp50, rp90, rpSum}
		g.wait = durStats{int64(waitN), w50, w90, wSum}
		g.res = durStats{int64(resN), r50, r90, rSum}
		g.rated, g.pos = int64(rated), int64(pos)
		conv = append(conv, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Report{}, unavailable("report conversations", err)
	}

	// Messages by send time, from the facts' message lists (deduplicated
	// with the facts); a message at m ≤ last_event_at prunes idle conversations.
	msgSQL := fmt.Sprintf(`SELECT %s AS k, %s AS b,
		countIf(r = 1), countIf(r = 2), countIf(r = 3), countIf(r = 4)
		FROM conversation_facts FINAL
		ARRAY JOIN msg_at AS m, msg_role AS r
		PREWHERE last_event_at >= ?
		WHERE m >= ? AND m < ? AND %s
		GROUP BY k, b`, chDim(q.Split), chBucket(q.Bucket, spans, "m"), where)
	margs := append([]any{q.From.UnixMilli(), q.From.UnixMilli(), q.To.UnixMilli()}, fargs...)
	rows, err = s.conn.Query(ctx, msgSQL, margs...)
	if err != nil {
		return Report{}, unavailable("report messages", err)
	}
	defer rows.Close()
	var msgs []group
	for rows.Next() {
		var g group
		var v, a, b, n uint64
		if err := rows.Scan(&g.key, &g.bucket, &v, &a, &b, &n); err != nil {
			return Report{}, fmt.Errorf("scan message row: %w", err)
		}
		g.msgs = MessageCounts{Visitor: int64(v), Agent: int64(a), Bot: int64(b), Notes: int64(n)}
		msgs = append(msgs, g)
	}
	if err := rows.Err(); err != nil {
		return Report{}, unavailable("report messages", err)
	}
	return assemble(q, s.Backend(), conv, msgs), nil
}

// chDrillMetrics are drillMetrics as SQL predicates (%d = now in ms).
var chDrillMetrics = map[string]string{
	"": "1", "new": "1",
	"resolved":       "resolved_at > 0",
	"reopened":       "reopens > 0",
	"missed":         "miss_candidate = 1 AND miss_at <= %d",
	"offline":        "channel = 'offline_form'",
	"handled":        "agent_id != ''",
	"first_response": "first_response_ms >= 0",
	"reply_time":     "length(reply_ms) > 0",
	"queue_wait":     "length(queue_wait_ms) > 0",
	"resolution":     "resolution_ms >= 0",
	"csat":           "csat > 0",
	"csat_positive":  "csat >= 4",
}

// Conversations implements Store.
func (s *ClickHouseStore) Conversations(ctx context.Context, q Query, d Drill) ([]ConversationFacts, error) {
	pred, ok := chDrillMetrics[d.Metric]
	if !ok {
		return nil, fmt.Errorf("drill-down metric %q is unknown", d.Metric)
	}
	if strings.Contains(pred, "%d") {
		pred = fmt.Sprintf(pred, q.Now.UnixMilli())
	}
	where, fargs := chFilter(q.Filter)
	args := append([]any{q.From.UnixMilli(), q.To.UnixMilli()}, fargs...)
	extra := ""
	if d.Bucket != "" && q.Bucket != BucketNone {
		b, err := parseBucketLabel(d.Bucket)
		if err != nil {
			return nil, fmt.Errorf("drill-down bucket %q: %w", d.Bucket, err)
		}
		extra += " AND " + chBucket(q.Bucket, zoneSpans(q.Location, q.From, q.To), "started_at") + " = ?"
		args = append(args, b)
	}
	if q.Split != DimNone {
		extra += " AND " + chDim(q.Split) + " = ?"
		args = append(args, d.Key)
	}
	limit := ""
	if d.Limit > 0 {
		limit = fmt.Sprintf(" LIMIT %d", d.Limit)
	}
	rows, err := s.conn.Query(ctx, `SELECT `+factColumns+` FROM conversation_facts FINAL
		PREWHERE started_at >= ? AND started_at < ? AND started_at > 0
		WHERE `+where+extra+` AND `+pred+`
		ORDER BY started_at, conversation_id`+limit, args...)
	if err != nil {
		return nil, unavailable("drill-down", err)
	}
	defer rows.Close()
	out := []ConversationFacts{}
	for rows.Next() {
		var f ConversationFacts
		var version uint64
		var inHours, miss, open uint8
		var roles []uint8
		if err := rows.Scan(&f.SiteID, &f.ConversationID, &version, &f.Channel, &f.TeamID, &f.AgentID, &f.VisitorID,
			&f.StartedAt, &inHours, &f.LastEventAt, &f.WaitFrom, &f.FirstReplyAt, &f.FirstResponseMs, &f.FirstResponseBhMs,
			&f.ReplyMs, &f.ReplyBhMs, &f.QueueWaitMs, &f.QueueWaitBhMs, &f.ResolvedAt, &f.ResolutionMs, &f.ResolutionBhMs, &f.Reopens,
			&miss, &f.MissAt, &f.LeftAt, &f.CSAT, &f.CSATAt, &f.MsgsVisitor, &f.MsgsAgent, &f.MsgsBot, &f.Notes, &f.MsgAt, &roles, &open, &f.WaitingSince,
			&f.AssignAgents, &f.AssignFrom, &f.AssignTo); err != nil {
			return nil, fmt.Errorf("scan facts: %w", err)
		}
		f.Version, f.StartedInHours, f.MissCandidate, f.Open = int64(version), inHours == 1, miss == 1, open == 1
		f.MsgRole = RoleCodes(roles)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("drill-down", err)
	}
	return out, nil
}

// Assignments implements Store.
func (s *ClickHouseStore) Assignments(ctx context.Context, q Query) ([]Assignment, error) {
	where, fargs := chFilter(q.Filter)
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	args := append([]any{to}, fargs...)
	args = append(args, to, from)
	rows, err := s.conn.Query(ctx, `SELECT a, conversation_id, f, t FROM conversation_facts FINAL
		ARRAY JOIN assign_agents AS a, assign_from AS f, assign_to AS t
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

// Overview implements Store.
func (s *ClickHouseStore) Overview(ctx context.Context, siteID string, dayStart, now time.Time) (Overview, error) {
	o := Overview{At: now.UTC()}
	n, d := now.UnixMilli(), dayStart.UnixMilli()
	var open, waiting, newToday, missed, rated, pos uint64
	var oldest int64
	err := s.conn.QueryRow(ctx, `SELECT
		countIf(open = 1 AND started_at > 0),
		countIf(open = 1 AND started_at > 0 AND waiting_since > 0),
		minIf(waiting_since, open = 1 AND started_at > 0 AND waiting_since > 0),
		countIf(started_at >= ? AND started_at <= ?),
		countIf(miss_candidate = 1 AND miss_at >= ? AND miss_at <= ?),
		countIf(csat > 0 AND csat_at >= ? AND csat_at <= ?),
		countIf(csat >= 4 AND csat_at >= ? AND csat_at <= ?)
		FROM conversation_facts FINAL WHERE (? = '' OR site_id = ?)`,
		d, n, d, n, d, n, d, n, siteID, siteID).Scan(&open, &waiting, &oldest, &newToday, &missed, &rated, &pos)
	if err != nil {
		return Overview{}, unavailable("overview", err)
	}
	o.Open, o.Waiting, o.NewToday, o.MissedToday = int64(open), int64(waiting), int64(newToday), int64(missed)
	o.CSATToday = CSAT{Rated: int64(rated), Positive: int64(pos)}
	finishOverview(&o, oldest, n)
	return o, nil
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
