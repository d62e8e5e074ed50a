package chatsvc

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/parleychat/parley/ingest"
)

// Inactivity: a conversation that is not resolved and that nothing
// happened to (no message, no status or routing change) for its site's
// inactivity_timeout_s (default 24 h) is resolved with reason "inactive",
// as if a person had closed it: conversation.resolved through the
// outbox, the agents following it are told. The sweep goes through the
// writer's working set (every conversation that is not resolved is in
// it), inside the writer's transaction, so it never races a message.
const (
	inactivityEvery = time.Minute
	// inactivityBatch bounds how many conversations one sweep operation
	// resolves, so that it does not hold the writer long.
	inactivityBatch = 200
)

// inactivityActor is who resolves an inactive conversation.
var inactivityActor = Author{Role: string(ingest.RoleSystem), ID: "chatsvc"}

// lastActivity is when something last happened to c (ms).
func (c *convState) lastActivity() int64 { return max(c.LastAt, c.UpdatedAt, c.CreatedAt) }

// closeInactive resolves every conversation idle past its site's timeout
// at now and returns how many it resolved.
func (s *Service) closeInactive(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		var closed int
		if err := s.writer.do(ctx, s.inactivityOp(now, &closed)); err != nil {
			return total, fmt.Errorf("close inactive conversations: %w", err)
		}
		total += closed
		if closed < inactivityBatch {
			return total, nil
		}
	}
}

// inactivityOp resolves up to inactivityBatch idle conversations.
func (s *Service) inactivityOp(now time.Time, closed *int) func(t *wtx) error {
	return func(t *wtx) error {
		*closed = 0
		var idle []string
		for id, c := range t.w.convs {
			if !c.active() {
				continue
			}
			timeout := time.Duration(DefaultInactivityTimeoutSeconds) * time.Second
			if site, ok := s.sites.get(c.SiteID); ok {
				timeout = site.Settings.inactivityTimeout()
			}
			if now.UnixMilli()-c.lastActivity() >= timeout.Milliseconds() {
				idle = append(idle, id)
			}
		}
		sort.Strings(idle)
		for _, id := range idle {
			if *closed == inactivityBatch {
				break
			}
			// A change staged earlier in this batch is activity.
			if _, staged := t.batch.convs[id]; staged {
				continue
			}
			c, err := t.conv(id)
			if err != nil {
				return err
			}
			t.put(c)
			if err := t.setStatus(c, inactivityActor, StatusResolved, closeReasonInactive); err != nil {
				return err
			}
			*closed++
		}
		return nil
	}
}

// closeReasonInactive is the conversation.resolved reason of an inactivity close.
const closeReasonInactive = "inactive"

// inactivity runs closeInactive every inactivityEvery until ctx ends.
func (s *Service) inactivity(ctx context.Context) {
	tick := time.NewTicker(inactivityEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n, err := s.closeInactive(ctx, now)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("inactivity sweep", "closed", n, "err", err)
			} else if n > 0 {
				s.log.Info("closed inactive conversations", "count", n)
			}
		}
	}
}
