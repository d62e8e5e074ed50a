package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// GroupLag returns how many records of topics the consumer group has not
// committed yet, from the broker: the sum over partitions of end offset −
// committed offset, where a partition the group never committed counts
// from its first retained offset. It does not depend on the group's
// members fetching anything, so it keeps growing while a consumer is
// stuck.
func GroupLag(ctx context.Context, brokers []string, group string, topics []string) (int64, error) {
	if len(brokers) == 0 {
		return 0, errors.New("group lag: no brokers")
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	offs, err := PartitionOffsets(ctx, client, topics)
	if err != nil {
		return 0, fmt.Errorf("group lag: %w", err)
	}
	fetchReq := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for topic, parts := range offs {
		for _, p := range parts {
			fetchReq.Topics[topic] = append(fetchReq.Topics[topic], p.Partition)
		}
	}
	committed := map[string]map[int]int64{}
	fetched, err := client.OffsetFetch(ctx, fetchReq)
	if err != nil {
		return 0, fmt.Errorf("group lag: committed offsets of %s: %w", group, err)
	}
	// A group that never committed may answer "group id not found": no commits.
	if fetched.Error != nil && !errors.Is(fetched.Error, kafka.GroupIdNotFound) {
		return 0, fmt.Errorf("group lag: committed offsets of %s: %w", group, fetched.Error)
	}
	for topic, parts := range fetched.Topics {
		committed[topic] = map[int]int64{}
		for _, p := range parts {
			if p.Error == nil {
				committed[topic][p.Partition] = p.CommittedOffset
			}
		}
	}
	var lag int64
	for topic, parts := range offs {
		for _, p := range parts {
			from, ok := committed[topic][p.Partition]
			if !ok || from < p.FirstOffset {
				from = p.FirstOffset
			}
			if p.LastOffset > from {
				lag += p.LastOffset - from
			}
		}
	}
	return lag, nil
}

// PartitionOffsets lists the first and end offsets of every partition of
// topics (lag, replay progress, the relay's look after a crash).
func PartitionOffsets(ctx context.Context, client *kafka.Client, topics []string) (map[string][]kafka.PartitionOffsets, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	for topic, parts := range offs.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
		}
	}
	return offs.Topics, nil
}
