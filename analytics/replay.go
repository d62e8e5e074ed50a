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
	Topics        []string
	Schedules     Schedules
	MissThreshold time.Duration
	// BatchSize defaults to 10000.
	BatchSize int
	// Progress receives one line per batch; nil = no progress output.
	Progress io.Writer
	Logger   *slog.Logger
}

// ReplayStats says what a replay did.
type ReplayStats struct {
	Events  int64
	Skipped int64
}

// Replay empties the store and rebuilds it from everything the topics
// retain, reading each partition from its first to its current last offset
// (without a consumer group, so the live loader's offsets are untouched).
// Loading is idempotent by event id, so a live loader running alongside
// causes no double counting.
func Replay(ctx context.Context, cfg ReplayConfig) error {
	_, err := replay(ctx, cfg)
	return err
}

func replay(ctx context.Context, cfg ReplayConfig) (ReplayStats, error) {
	var st ReplayStats
	if cfg.Store == nil {
		return st, errors.New("replay: no store")
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
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: cfg.Topics})
	if err != nil {
		return st, fmt.Errorf("replay: metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return st, fmt.Errorf("replay: topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return st, fmt.Errorf("replay: list offsets: %w", err)
	}
	var total int64
	for _, parts := range offs.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return st, fmt.Errorf("replay: offsets of partition %d: %w", p.Partition, p.Error)
			}
			total += p.LastOffset - p.FirstOffset
		}
	}
	progress("replay: %d retained events in %v; emptying %s", total, cfg.Topics, cfg.Store.Backend())
	if err := cfg.Store.Reset(ctx); err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	a := &applier{store: cfg.Store, schedules: cfg.Schedules, log: cfg.Logger, cache: newConvCache(defaultCacheEvents), facts: FactsConfig{MissThreshold: cfg.MissThreshold}}
	start := time.Now()
	for _, topic := range cfg.Topics {
		for _, p := range offs.Topics[topic] {
			if p.LastOffset <= p.FirstOffset {
				continue
			}
			if err := replayPartition(ctx, cfg, a, topic, p, &st, func() {
				progress("replay: %d/%d events (%s/%d), %.0f events/s", st.Events+st.Skipped, total, topic, p.Partition,
					float64(st.Events+st.Skipped)/max(time.Since(start).Seconds(), 0.001))
			}); err != nil {
				return st, err
			}
		}
	}
	progress("replay: done, %d events loaded, %d undecodable skipped, in %s", st.Events, st.Skipped, time.Since(start).Round(time.Millisecond))
	return st, nil
}

func replayPartition(ctx context.Context, cfg ReplayConfig, a *applier, topic string, p kafka.PartitionOffsets, st *ReplayStats, report func()) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: cfg.Brokers, Topic: topic, Partition: p.Partition,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(p.FirstOffset); err != nil {
		return fmt.Errorf("replay %s/%d: seek: %w", topic, p.Partition, err)
	}
	batch := make([]ingest.Event, 0, cfg.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := a.apply(ctx, batch); err != nil {
			return fmt.Errorf("replay %s/%d: %w", topic, p.Partition, err)
		}
		st.Events += int64(len(batch))
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
		if err != nil || check(e) != "" {
			st.Skipped++ // the live loader dead-lettered it already
			continue
		}
		batch = append(batch, e)
		if len(batch) >= cfg.BatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
