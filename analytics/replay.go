package analytics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
)

// ReplayConfig configures Replay.
type ReplayConfig struct {
	Store   Store
	Brokers []string
	// Topics default to the chat and moderation topics.
	Topics []string
	// Staff vouches for staff ids (as for the loader); required.
	Staff StaffDirectory
	// BatchSize defaults to 10000.
	BatchSize int
	// Progress receives one line per batch; nil = no progress output.
	Progress io.Writer
	Logger   *slog.Logger
}

// ReplayStats says what a replay did.
type ReplayStats struct {
	Events int64
	// Skipped counts events the live loader dead-letters: undecodable,
	// out of range, naming staff that do not exist, or of a site that is
	// still unknown when the replay ends.
	Skipped int64
}

// Replay empties the store and rebuilds it from everything the topics
// retain, reading each partition from its first to its current last offset
// (without a consumer group, so the live loader's offsets are untouched).
// Loading is idempotent by event id, so a live loader running alongside
// causes no double counting. Site profiles and verified staff survive the
// reset (Store.Reset); events of sites without a profile are held as
// live and loaded once their site.updated event comes by; at the end,
// every site whose profile changed during the replay is recomputed, and
// events still held are skipped.
func Replay(ctx context.Context, cfg ReplayConfig) error {
	_, err := replay(ctx, cfg)
	return err
}

func replay(ctx context.Context, cfg ReplayConfig) (ReplayStats, error) {
	var st ReplayStats
	if cfg.Store == nil {
		return st, errors.New("replay: no store")
	}
	if cfg.Staff == nil {
		return st, errors.New("replay: no staff directory")
	}
	if len(cfg.Brokers) == 0 {
		return st, errors.New("replay: no brokers")
	}
	if len(cfg.Topics) == 0 {
		cfg.Topics = []string{ingest.TopicChat, ingest.TopicModeration}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	offs, err := ingest.PartitionOffsets(ctx, client, cfg.Topics)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	var total int64
	for _, parts := range offs {
		for _, p := range parts {
			total += p.LastOffset - p.FirstOffset
		}
	}
	progress("replay: %d retained events in %v; emptying %s", total, cfg.Topics, cfg.Store.Backend())
	if err := cfg.Store.Reset(ctx); err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	a := newApplier(cfg.Store, cfg.Logger, defaultCacheEvents)
	v := newValidator(cfg.Staff, cfg.Store)
	start := time.Now()
	for _, topic := range cfg.Topics {
		for _, p := range offs[topic] {
			if p.LastOffset <= p.FirstOffset {
				continue
			}
			if err := replayPartition(ctx, cfg, a, v, topic, p, &st, func() {
				progress("replay: %d/%d events (%s/%d), %.0f events/s", st.Events+st.Skipped, total, topic, p.Partition,
					float64(st.Events+st.Skipped)/max(time.Since(start).Seconds(), 0.001))
			}); err != nil {
				return st, err
			}
		}
	}
	if err := finishReplay(ctx, a, &st, progress); err != nil {
		return st, err
	}
	progress("replay: done, %d events loaded, %d skipped (dead-lettered by the live loader), in %s", st.Events, st.Skipped, time.Since(start).Round(time.Millisecond))
	return st, nil
}

// finishReplay releases the held events of sites known by now, skips the
// rest, and recomputes the sites whose profile changed during the replay.
func finishReplay(ctx context.Context, a *applier, st *ReplayStats, progress func(string, ...any)) error {
	if err := a.sites.refresh(ctx, true); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	held, err := a.store.HeldSites(ctx)
	if err != nil {
		return fmt.Errorf("replay: held sites: %w", err)
	}
	for _, h := range held {
		hs, err := a.store.HeldEvents(ctx, h.SiteID)
		if err != nil {
			return fmt.Errorf("replay: held events of site %s: %w", h.SiteID, err)
		}
		ids := make([]string, len(hs))
		events := make([]ingest.Event, len(hs))
		for i, e := range hs {
			ids[i], events[i] = e.Event.ID, e.Event
		}
		outcome := HeldDeadLettered
		if _, known := a.sites.profile(h.SiteID); known {
			if _, err := a.load(ctx, events); err != nil {
				return fmt.Errorf("replay: release held events of site %s: %w", h.SiteID, err)
			}
			outcome = HeldReleased
		} else {
			progress("replay: skipping %d events of site %s, which has no site.updated event", len(ids), h.SiteID)
			st.Skipped += int64(len(ids))
			st.Events -= int64(len(ids))
		}
		if err := a.store.FinishHeld(ctx, h.SiteID, ids, outcome); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	for _, p := range a.sites.all() {
		if p.Rev == p.FactsRev {
			continue
		}
		n, err := a.recomputeSite(ctx, p.SiteID, func() func() { return func() {} }, time.Hour)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		progress("replay: recomputed %d conversations of site %s with its current hours and targets", n, p.SiteID)
	}
	return nil
}

func replayPartition(ctx context.Context, cfg ReplayConfig, a *applier, v *validator, topic string, p kafka.PartitionOffsets, st *ReplayStats, report func()) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: cfg.Brokers, Topic: topic, Partition: p.Partition,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(p.FirstOffset); err != nil {
		return fmt.Errorf("replay %s/%d: seek: %w", topic, p.Partition, err)
	}
	batch := make([]ingest.Record, 0, cfg.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		good, rejects, err := v.validate(ctx, batch)
		if err != nil {
			return fmt.Errorf("replay %s/%d: %w", topic, p.Partition, err)
		}
		events := make([]ingest.Event, len(good))
		origins := make(map[string]ingest.Record, len(good))
		for i, r := range good {
			events[i], origins[r.Event.ID] = r.Event, r
		}
		if _, err := a.applyRecords(ctx, events, origins); err != nil {
			return fmt.Errorf("replay %s/%d: %w", topic, p.Partition, err)
		}
		st.Events += int64(len(good))
		st.Skipped += int64(len(rejects))
		batch = batch[:0]
		report()
		return nil
	}
	for next := p.FirstOffset; next < p.LastOffset; {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("replay %s/%d at offset %d: %w", topic, p.Partition, next, err)
		}
		next = m.Offset + 1
		e, err := ingest.Decode(m.Value)
		if err != nil {
			st.Skipped++ // the live loader dead-lettered it already
			continue
		}
		batch = append(batch, ingest.Record{Event: e, Topic: topic, Partition: p.Partition, Offset: m.Offset})
		if len(batch) >= cfg.BatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
