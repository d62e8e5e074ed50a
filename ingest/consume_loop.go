package ingest

import (
	"context"
	"time"
)

// RunConsumer runs handle over a consumer group until ctx ends, starting
// the consumer again (with backoff, up to 30 s) when it fails because the
// broker went away: the loop of every long-running consumer component.
func RunConsumer(ctx context.Context, cfg ConsumerConfig, handle Handler) {
	backoff := time.Second
	for ctx.Err() == nil {
		c, err := NewConsumer(cfg)
		if err == nil {
			err = c.Run(ctx, handle)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		if cfg.Logger != nil {
			cfg.Logger.Warn("consumer stopped; restarting", "group", cfg.GroupID, "err", err, "backoff", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}
