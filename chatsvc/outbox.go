package chatsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

const relayBatch = 1000

type outboxRow struct {
	id      int64
	eventID string
	topic   string
	key     string
	value   []byte
	created int64
}

// relay publishes outbox rows in order and marks them sent after Kafka's
// acknowledgement. It wakes on every commit that wrote events, polls as a
// fallback, and backs off while Kafka is unreachable; chat never waits for it.
func (s *Service) relay(ctx context.Context) {
	if s.cfg.Producer == nil {
		s.log.Warn("no Kafka producer configured: events stay in the outbox")
		return
	}
	backoff := 100 * time.Millisecond
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.relayKick:
		case <-poll.C:
		}
		for {
			n, err := s.relayOnce(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.metrics.relayFailures.Inc()
				s.log.Warn("outbox relay failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			if n < relayBatch {
				break
			}
		}
		poll.Reset(s.cfg.RelayPoll)
	}
}

// relayOnce publishes up to relayBatch pending rows; it returns how many
// were published.
func (s *Service) relayOnce(ctx context.Context) (int, error) {
	if s.cfg.Producer == nil {
		return 0, errors.New("no producer")
	}
	rows, err := s.pendingOutbox(ctx, relayBatch)
	if err != nil {
		return 0, err
	}
	s.noteBacklog(ctx, rows)
	if len(rows) == 0 {
		return 0, nil
	}
	msgs := make([]kafka.Message, len(rows))
	for i, r := range rows {
		msgs[i] = kafka.Message{
			Topic: r.topic, Key: []byte(r.key), Value: r.value,
			Headers: []kafka.Header{{Key: "id", Value: []byte(r.eventID)}},
		}
	}
	pubErr := s.cfg.Producer.PublishRaw(ctx, msgs...)
	sent := make([]int64, 0, len(rows))
	if pubErr == nil {
		for _, r := range rows {
			sent = append(sent, r.id)
		}
	} else {
		// A partial failure names each message's fate: keep the ones Kafka
		// acknowledged so that they are not published twice.
		var we kafka.WriteErrors
		if errors.As(pubErr, &we) && len(we) == len(rows) {
			for i, e := range we {
				if e == nil {
					sent = append(sent, rows[i].id)
				}
			}
		}
	}
	if err := s.markSent(ctx, sent); err != nil {
		return 0, err
	}
	s.metrics.relayed.Add(float64(len(sent)))
	if pubErr != nil {
		return len(sent), fmt.Errorf("publish %d outbox events (%d acknowledged): %w", len(rows), len(sent), pubErr)
	}
	return len(rows), nil
}

func (s *Service) pendingOutbox(ctx context.Context, limit int) ([]outboxRow, error) {
	q, err := s.db.QueryContext(ctx, `SELECT id, event_id, topic, msg_key, value, created_at FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer q.Close()
	var rows []outboxRow
	for q.Next() {
		var r outboxRow
		if err := q.Scan(&r.id, &r.eventID, &r.topic, &r.key, &r.value, &r.created); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		rows = append(rows, r)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return rows, nil
}

func (s *Service) markSent(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	// Marking must not be abandoned half way when ctx ends: the events are in Kafka.
	work := context.WithoutCancel(ctx)
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, 0, n+1)
		args = append(args, now)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		q := `UPDATE outbox SET sent_at = ? WHERE id IN (?` + strings.Repeat(",?", n-1) + `)`
		if _, err := s.db.ExecContext(work, q, args...); err != nil {
			return fmt.Errorf("mark %d outbox events sent: %w", n, err)
		}
		ids = ids[n:]
	}
	return nil
}

func (s *Service) noteBacklog(ctx context.Context, rows []outboxRow) {
	if len(rows) == 0 {
		s.metrics.outboxBacklog.Set(0)
		s.metrics.relayLag.Set(0)
		return
	}
	s.metrics.relayLag.Set(time.Since(time.UnixMilli(rows[0].created)).Seconds())
	if len(rows) < relayBatch {
		s.metrics.outboxBacklog.Set(float64(len(rows)))
		return
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err == nil {
		s.metrics.outboxBacklog.Set(float64(n))
	}
}

// purgeOutbox deletes rows Kafka acknowledged before cutoff.
func (s *Service) purgeOutbox(ctx context.Context, cutoff time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, cutoff.UnixMilli()); err != nil {
		return fmt.Errorf("purge outbox: %w", err)
	}
	return nil
}

// OutboxBacklog returns how many events wait for Kafka.
func (s *Service) OutboxBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}
