package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/parleychat/parley/ingest"
)

// consume runs the consumer group until ctx ends.
func (s *Service) consume(ctx context.Context) {
	ingest.RunConsumer(ctx, ingest.ConsumerConfig{
		Brokers: s.cfg.Brokers, GroupID: s.cfg.GroupID, Topics: []string{ingest.TopicChat, ingest.TopicModeration},
		BatchSize: 1000, BatchWait: 50 * time.Millisecond, FetchMinBytes: ingest.PatientFetch, DeadLetter: s.cfg.DeadLetter,
		Registerer: s.cfg.Registerer, Logger: s.log,
	}, s.handle)
}

// handle turns a batch of events into deliveries, stored before the
// consumer commits; a redelivered event is skipped per endpoint by its id.
func (s *Service) handle(ctx context.Context, batch []ingest.Record) ([]ingest.Reject, error) {
	endpoints, err := s.store.Endpoints(ctx, "")
	if err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		return nil, nil
	}
	now := time.Now()
	var ds []Delivery
	for _, r := range batch {
		e := r.Event
		var body []byte
		for _, ep := range endpoints {
			if !ep.wants(e.SiteID, e.Type) {
				continue
			}
			if body == nil {
				if body, err = e.Encode(); err != nil {
					return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
				}
			}
			ds = append(ds, Delivery{
				ID: ingest.NewID(), EndpointID: ep.ID, EventID: e.ID, EventType: string(e.Type),
				Lane: e.ConversationID, Body: body, NextAt: now, CreatedAt: now,
			})
		}
	}
	n, err := s.store.EnqueueDeliveries(ctx, ds)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.enqueued.Add(float64(n))
		s.wake()
	}
	return nil, nil
}
