package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// clockMargin widens the time window searched for records a relay may
// have published: the Kafka timestamp is the publishing node's clock and
// the outbox time the writing node's.
const clockMargin = time.Minute

// AlreadyPublished reports which of recs are already on their topics, by
// event id. A relay asks after it could not tell whether Kafka took a
// batch: at its first pass (the previous process may have died between
// Kafka's acknowledgement and marking the records sent) and after a
// failed pass. Records of an interrupted claim were published after the
// oldest of recs was written and are among the newest depth records of
// their partition (a claim publishes at most a batch, in order), so only
// that tail is read.
func (p *Producer) AlreadyPublished(ctx context.Context, recs []OutboxRecord, depth int) (map[string]bool, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	want := make(map[string]bool, len(recs))
	oldest := recs[0].CreatedAt
	var topics []string
	for _, r := range recs {
		if !slices.Contains(topics, r.Topic) {
			topics = append(topics, r.Topic)
		}
		want[r.EventID] = true
		if r.CreatedAt.Before(oldest) {
			oldest = r.CreatedAt
		}
	}
	client := &kafka.Client{Addr: p.w.Addr, Timeout: 10 * time.Second}
	offs, err := PartitionOffsets(ctx, client, topics)
	if err != nil {
		return nil, fmt.Errorf("find published records: %w", err)
	}
	since := oldest.Add(-clockMargin)
	found := map[string]bool{}
	for topic, parts := range offs {
		starts, err := offsetsSince(ctx, client, topic, parts, since)
		if err != nil {
			return nil, fmt.Errorf("find published records: %w", err)
		}
		for _, part := range parts {
			from := max(part.FirstOffset, part.LastOffset-int64(depth))
			if at, ok := starts[part.Partition]; ok {
				from = max(from, at)
			}
			if err := scanEventIDs(ctx, client, topic, part.Partition, from, part.LastOffset, func(id string) {
				if want[id] {
					found[id] = true
				}
			}); err != nil {
				return nil, fmt.Errorf("find published records: %w", err)
			}
		}
	}
	return found, nil
}

// offsetsSince gives, per partition, the first offset whose timestamp is
// at or after since; a partition with no such record maps to its end.
// A broker that cannot look offsets up by time yields an empty map.
func offsetsSince(ctx context.Context, client *kafka.Client, topic string, parts []kafka.PartitionOffsets, since time.Time) (map[int]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.TimeOffsetOf(p.Partition, since))
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("offsets of %s since %s: %w", topic, since.Format(time.RFC3339), err)
	}
	end := map[int]int64{}
	for _, p := range parts {
		end[p.Partition] = p.LastOffset
	}
	starts := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			continue
		}
		for off := range p.Offsets {
			if off < 0 {
				off = end[p.Partition]
			}
			starts[p.Partition] = off
		}
	}
	return starts, nil
}

// scanEventIDs reads partition records in [from, to) and hands each one's
// event id header to seen.
func scanEventIDs(ctx context.Context, client *kafka.Client, topic string, partition int, from, to int64, seen func(string)) error {
	for from < to {
		res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: partition, Offset: from, MaxBytes: 8 << 20, MaxWait: time.Second})
		if err != nil {
			return fmt.Errorf("read %s/%d at %d: %w", topic, partition, from, err)
		}
		if res.Error != nil {
			return fmt.Errorf("read %s/%d at %d: %w", topic, partition, from, res.Error)
		}
		next := from
		for {
			rec, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s/%d at %d: %w", topic, partition, next, err)
			}
			if rec.Offset >= from {
				for _, h := range rec.Headers {
					if h.Key == "id" {
						seen(string(h.Value))
					}
				}
			}
			next = max(next, rec.Offset+1)
		}
		if next == from {
			return fmt.Errorf("read %s/%d at %d: no records below the end offset %d", topic, partition, from, to)
		}
		from = next
	}
	return nil
}
