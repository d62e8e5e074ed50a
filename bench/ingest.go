package bench

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/parleychat/parley/ingest"
)

// IngestResult holds the ingest scenario's figures.
type IngestResult struct {
	Events int `json:"events"`
	// Raw is a plain clickhouse-go batch insert of the same event rows into
	// a copy of Parley's events table, in batches of BatchSize.
	BatchSize  int     `json:"batch_size"`
	RawS       float64 `json:"raw_s"`
	RawPerS    float64 `json:"raw_events_per_s"`
	PublishS   float64 `json:"publish_s"`
	PublishPer float64 `json:"publish_events_per_s"`
	// Loader is publish start → every event counted in ClickHouse.
	LoaderS    float64 `json:"loader_s"`
	LoaderPerS float64 `json:"loader_events_per_s"`
	// SteadyPerS is the loader's rate between 10% and 90% of the events.
	SteadyPerS float64 `json:"loader_steady_events_per_s"`
	Ratio      float64 `json:"ratio"`
	// Loaded counts distinct event ids stored; Rows counts rows (duplicates
	// included, before ReplacingMergeTree merges them).
	Loaded int64 `json:"loaded"`
	Rows   int64 `json:"rows"`
}

func (r *IngestResult) text(b *strings.Builder) {
	fmt.Fprintf(b, "  events                     %d (batches of %d for the raw insert)\n", r.Events, r.BatchSize)
	fmt.Fprintf(b, "  raw clickhouse-go insert   %.0f events/s (%.2f s)\n", r.RawPerS, r.RawS)
	fmt.Fprintf(b, "  publish to Kafka           %.0f events/s (%.2f s)\n", r.PublishPer, r.PublishS)
	fmt.Fprintf(b, "  loader Kafka→ClickHouse    %.0f events/s end to end (%.2f s, %d loaded), %.0f events/s steady (10%%→90%%)\n", r.LoaderPerS, r.LoaderS, r.Loaded, r.SteadyPerS)
	fmt.Fprintf(b, "  loader / raw               %.2f\n", r.Ratio)
}

var chIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (e *env) runIngest(ctx context.Context) error {
	o := e.opts
	if !chIdent.MatchString(o.ClickHouseDatabase) {
		return fmt.Errorf("--clickhouse-db %q is not a plain identifier", o.ClickHouseDatabase)
	}
	batchSize := 10_000
	res := &IngestResult{Events: o.Events, BatchSize: batchSize}
	e.report.Ingest = res
	e.report.Settings = map[string]any{"events": o.Events, "clickhouse": o.ClickHouse, "db": o.ClickHouseDatabase, "brokers": strings.Join(o.Brokers, ","), "run": e.runID}

	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:     clickhouse.Native,
		Addr:         []string{o.ClickHouse},
		Auth:         clickhouse.Auth{Database: o.ClickHouseDatabase, Username: o.ClickHouseUser, Password: o.ClickHousePassword},
		DialTimeout:  5 * time.Second,
		ReadTimeout:  2 * time.Minute,
		MaxOpenConns: 4,
	})
	if err != nil {
		return fmt.Errorf("clickhouse %s: %w", o.ClickHouse, err)
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse %s: %w", o.ClickHouse, err)
	}
	var tables uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'events'", o.ClickHouseDatabase).Scan(&tables); err != nil {
		return fmt.Errorf("clickhouse: look for %s.events: %w", o.ClickHouseDatabase, err)
	}
	if tables == 0 {
		return fmt.Errorf("clickhouse: %s.events does not exist: start parley serve with --clickhouse %s first", o.ClickHouseDatabase, o.ClickHouse)
	}

	// The loader loads only events of sites it knows (from site.updated,
	// which chat publishes when the site is created) and by staff that
	// exist: the run's site is a real one, and its agent is the admin.
	if err := e.signIn(ctx); err != nil {
		return err
	}
	st, err := e.admin.createSite(ctx, "bench ingest "+e.runID, benchOrigin, 5)
	if err != nil {
		return err
	}
	siteID := st.ID
	e.status("ingest: generating %d events", o.Events)
	events, err := genEvents(siteID, e.adminUser.ID, o.Events, time.Now())
	if err != nil {
		return err
	}

	// 1. Raw insert of the same rows into a copy of the events table.
	raw := "bench_raw_events_" + e.runID
	if err := conn.Exec(ctx, "CREATE TABLE "+raw+" AS events"); err != nil {
		return fmt.Errorf("clickhouse: create %s: %w", raw, err)
	}
	defer func() {
		if err := conn.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+raw); err != nil {
			e.report.note("drop %s: %v", raw, err)
		}
	}()
	rawStart := time.Now()
	for i := 0; i < len(events); i += batchSize {
		e.progress.update(time.Now(), fmt.Sprintf("ingest: raw insert %d/%d", i, len(events)))
		if err := insertRaw(ctx, conn, raw, events[i:min(i+batchSize, len(events))]); err != nil {
			return err
		}
	}
	rawTook := time.Since(rawStart)
	res.RawS = round3(rawTook.Seconds())
	res.RawPerS = round3(float64(len(events)) / rawTook.Seconds())

	// 2. The loader: publish to Kafka, count rows of the run's site.
	prod := ingest.NewProducer(ingest.ProducerConfig{Brokers: o.Brokers, BatchSize: 5000, BatchTimeout: 5 * time.Millisecond})
	defer prod.Close()
	// Distinct event ids: the events table is a ReplacingMergeTree that
	// may hold a retried insert twice until it merges. Moderation verdicts
	// the workers publish about the run's messages, and the site's
	// site.updated, carry the same site and are loaded too; they are not
	// the run's events.
	count := func(ctx context.Context) (int64, error) {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events WHERE site_id = ? AND type NOT LIKE 'moderation.%' AND type != 'site.updated'", siteID).Scan(&n)
		return int64(n), err
	}
	type point struct {
		at time.Time
		n  int64
	}
	loadStart := time.Now()
	pubDone := make(chan error, 1)
	go func() {
		for i := 0; i < len(events); i += 5000 {
			if err := prod.Publish(ctx, events[i:min(i+5000, len(events))]...); err != nil {
				pubDone <- fmt.Errorf("publish events %d..: %w", i, err)
				return
			}
		}
		pubDone <- nil
	}()
	var points []point
	var pubErr error
	published := false
	deadline := time.Now().Add(o.LoaderTimeout)
	var loaded int64
	for loaded < int64(len(events)) {
		if time.Now().After(deadline) {
			e.report.note("the loader had stored %d of %d events after %s", loaded, len(events), o.LoaderTimeout)
			break
		}
		select {
		case pubErr = <-pubDone:
			if pubErr != nil {
				return pubErr
			}
			published = true
			res.PublishS = round3(time.Since(loadStart).Seconds())
			res.PublishPer = round3(float64(len(events)) / time.Since(loadStart).Seconds())
			pubDone = nil
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		n, err := count(ctx)
		if err != nil {
			return fmt.Errorf("clickhouse: count loaded events: %w", err)
		}
		loaded = n
		points = append(points, point{time.Now(), n})
		e.progress.update(time.Now(), fmt.Sprintf("ingest: loader stored %d/%d (published: %v)", n, len(events), published))
	}
	loadTook := time.Since(loadStart)
	res.Loaded = loaded
	var rows uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE site_id = ? AND type NOT LIKE 'moderation.%'", siteID).Scan(&rows); err != nil {
		return fmt.Errorf("clickhouse: count event rows: %w", err)
	}
	res.Rows = int64(rows)
	if res.Rows > res.Loaded {
		e.report.note("the events table holds %d rows for %d distinct events: the loader wrote %d events twice (harmless for queries, which count distinct ids; it costs insert work)", res.Rows, res.Loaded, res.Rows-res.Loaded)
	}
	res.LoaderS = round3(loadTook.Seconds())
	res.LoaderPerS = round3(float64(loaded) / loadTook.Seconds())
	// Steady rate: first points at or past 10% and 90%.
	var p10, p90 *point
	for i := range points {
		if p10 == nil && points[i].n >= int64(len(events))/10 {
			p10 = &points[i]
		}
		if p90 == nil && points[i].n >= int64(len(events))*9/10 {
			p90 = &points[i]
		}
	}
	if p10 != nil && p90 != nil && p90.at.After(p10.at) {
		res.SteadyPerS = round3(float64(p90.n-p10.n) / p90.at.Sub(p10.at).Seconds())
	}
	if res.RawPerS > 0 {
		res.Ratio = round3(res.LoaderPerS / res.RawPerS)
	}
	e.report.target("ingest loader rate", "≥ 0.5 × raw clickhouse-go insert", fmt.Sprintf("%.2f × (%.0f vs %.0f events/s)", res.Ratio, res.LoaderPerS, res.RawPerS), res.Ratio >= 0.5 && loaded == int64(len(events)))
	e.report.note("the loader also reads each batch's conversations back and writes conversation and moderation facts; the raw insert writes only the event rows")
	return nil
}

// insertRaw writes events as rows of Parley's events table layout.
func insertRaw(ctx context.Context, conn driver.Conn, table string, events []ingest.Event) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (event_id, type, occurred_at, site_id, conversation_id, actor_role, actor_id, kind, raw, loaded_at)")
	if err != nil {
		return fmt.Errorf("clickhouse: prepare raw insert: %w", err)
	}
	now := time.Now().UTC()
	for _, ev := range events {
		b, err := ev.Encode()
		if err != nil {
			batch.Abort()
			return err
		}
		kind := ""
		if ev.Type == ingest.MessageSent {
			var p ingest.MessageSentPayload
			if ev.Into(&p) == nil {
				kind = p.Kind
			}
		}
		if err := batch.Append(ev.ID, string(ev.Type), ev.OccurredAt.UnixMilli(), ev.SiteID, ev.ConversationID,
			string(ev.Actor.Role), ev.Actor.ID, kind, string(b), now); err != nil {
			batch.Abort()
			return fmt.Errorf("clickhouse: append raw row: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse: raw insert of %d rows: %w", len(events), err)
	}
	return nil
}
