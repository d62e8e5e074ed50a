package moderation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// relayBatch is how many outbox rows one publish carries.
const relayBatch = 500

// relay publishes outbox rows in order and marks them sent. A row is
// marked only after Kafka acknowledged it, so a crash in between publishes
// it again: consumers deduplicate by event id, as for every Parley event.
func (s *Service) relay(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.RelayInterval)
	defer tick.Stop()
	backoff := 100 * time.Millisecond
	for {
		n, err := s.relayOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("outbox relay failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n == relayBatch {
			continue
		}
		select {
		case <-ctx.Done():
		case <-s.kick:
			continue
		case <-tick.C:
			continue
		}
		break
	}
	// flush what the last batches wrote before stopping
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for {
		n, err := s.relayOnce(flush)
		if err != nil {
			s.log.Warn("outbox not fully flushed at stop; the next start publishes the rest", "err", err)
			return nil
		}
		if n < relayBatch {
			return nil
		}
	}
}

// relayOnce publishes up to relayBatch pending rows and returns how many.
func (s *Service) relayOnce(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event_id, topic, msg_key, event_type, value FROM mod_outbox
		WHERE sent_at IS NULL ORDER BY seq LIMIT ?`, relayBatch)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	var seqs []any
	var msgs []kafka.Message
	for rows.Next() {
		var seq int64
		var id, topic, key, typ string
		var value []byte
		if err := rows.Scan(&seq, &id, &topic, &key, &typ, &value); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read outbox: %w", err)
		}
		seqs = append(seqs, seq)
		msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(key), Value: value, Headers: []kafka.Header{
			{Key: "type", Value: []byte(typ)}, {Key: "id", Value: []byte(id)},
		}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(msgs) == 0 {
		s.metrics.outboxPending.Set(0)
		return 0, nil
	}
	if err := s.cfg.Producer.PublishRaw(ctx, msgs...); err != nil {
		return 0, fmt.Errorf("publish outbox: %w", err)
	}
	q := `UPDATE mod_outbox SET sent_at = ? WHERE seq IN (?` + strings.Repeat(",?", len(seqs)-1) + `)`
	if _, err := s.db.ExecContext(ctx, q, append([]any{ms(time.Now())}, seqs...)...); err != nil {
		return 0, fmt.Errorf("mark outbox sent: %w", err)
	}
	var pending int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_outbox WHERE sent_at IS NULL`).Scan(&pending); err == nil {
		s.metrics.outboxPending.Set(float64(pending))
	}
	return len(msgs), nil
}
