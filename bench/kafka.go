package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
)

// topicWatch reads every partition of a topic from the offsets it had when
// the watch started, decodes each record as an ingest.Event and hands it to
// onEvent with the time it was read. It sees only what is published after
// start: the bench measures its own traffic, never the topic's history.
type topicWatch struct {
	readers []*kafka.Reader
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	mu      sync.Mutex
	errs    []error
	bad     int64 // records that did not decode
}

// watchTopic starts one reader goroutine per partition; stop ends them.
func watchTopic(ctx context.Context, brokers []string, topic string, onEvent func(ev ingest.Event, at time.Time)) (*topicWatch, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("watch %s: metadata: %w", topic, err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("watch %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("watch %s: the topic has no partitions (is this Parley's broker?)", topic)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("watch %s: list offsets: %w", topic, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &topicWatch{cancel: cancel}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			cancel()
			return nil, fmt.Errorf("watch %s partition %d: %w", topic, po.Partition, po.Error)
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   brokers,
			Topic:     topic,
			Partition: po.Partition,
			MinBytes:  1,
			MaxBytes:  16 << 20,
			MaxWait:   20 * time.Millisecond,
		})
		if err := r.SetOffset(po.LastOffset); err != nil {
			cancel()
			return nil, fmt.Errorf("watch %s partition %d: set offset: %w", topic, po.Partition, err)
		}
		w.readers = append(w.readers, r)
		w.wg.Add(1)
		go w.read(ctx, r, onEvent)
	}
	return w, nil
}

func (w *topicWatch) read(ctx context.Context, r *kafka.Reader, onEvent func(ingest.Event, time.Time)) {
	defer w.wg.Done()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.mu.Lock()
				w.errs = append(w.errs, err)
				w.mu.Unlock()
			}
			return
		}
		at := time.Now()
		ev, err := ingest.Decode(m.Value)
		if err != nil {
			w.mu.Lock()
			w.bad++
			w.mu.Unlock()
			continue
		}
		onEvent(ev, at)
	}
}

// stop ends the readers and returns the first read error, if any.
func (w *topicWatch) stop() error {
	w.cancel()
	w.wg.Wait()
	var errs []error
	for _, r := range w.readers {
		if err := r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		errs = append(errs, w.errs[0])
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka watch: %w", err)
	}
	return nil
}
