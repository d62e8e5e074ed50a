package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Topic names. Chat events and moderation events travel apart so that the
// moderation workers read only what they judge, while analytics reads both.
const (
	TopicChat       = "parley.chat.v1"
	TopicModeration = "parley.moderation.v1"
	TopicDeadLetter = "parley.deadletter.v1"
)

// TopicFor returns the topic an event type is published to.
func TopicFor(t Type) string {
	switch t {
	case ModerationVerdict, ModerationDecision:
		return TopicModeration
	}
	return TopicChat
}

// TopicSpec is a topic Parley creates at start-up.
type TopicSpec struct {
	Name       string
	Partitions int
	Retention  time.Duration
}

// DefaultTopics returns Parley's topics with the given partition count and retention.
func DefaultTopics(partitions int, retention time.Duration) []TopicSpec {
	return []TopicSpec{
		{Name: TopicChat, Partitions: partitions, Retention: retention},
		{Name: TopicModeration, Partitions: partitions, Retention: retention},
		{Name: TopicDeadLetter, Partitions: 1, Retention: retention},
		LiveTopic(partitions),
	}
}

// EnsureTopics creates the topics that do not exist yet. It must run before
// any reader starts: a kafka-go group reader on a missing topic may never
// get partitions once the topic appears.
func EnsureTopics(ctx context.Context, brokers []string, specs []TopicSpec) error {
	if len(brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		cfg := []kafka.ConfigEntry{}
		if s.Retention > 0 {
			cfg = append(cfg, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.Retention.Milliseconds(), 10)})
		}
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: -1, ConfigEntries: cfg,
		})
	}
	var res *kafka.CreateTopicsResponse
	var err error
	// The first call on a pooled connection after a broker restart can fail
	// once with unexpected EOF, so a short retry loop covers that.
	for attempt := 0; attempt < 5; attempt++ {
		res, err = client.CreateTopics(ctx, req)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure topics: %w", ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("ensure topics on %v: %w", brokers, err)
	}
	for name, terr := range res.Errors {
		if terr == nil || errors.Is(terr, kafka.TopicAlreadyExists) {
			continue
		}
		return fmt.Errorf("create topic %s: %w", name, terr)
	}
	return nil
}

// Ping checks that a broker answers a metadata request.
func Ping(ctx context.Context, brokers []string) error {
	if len(brokers) == 0 {
		return errors.New("no brokers configured")
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	var last error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			last = err
			continue
		}
		conn.Close()
		client := &kafka.Client{Addr: kafka.TCP(b), Timeout: 2 * time.Second}
		if _, err := client.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
			last = err
			continue
		}
		return nil
	}
	return fmt.Errorf("no broker of %v answers: %w", brokers, last)
}
