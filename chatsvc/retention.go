package chatsvc

import (
	"context"
	"fmt"
	"time"
)

// Retention: a site's retention_days (0 keeps everything) bounds how long
// a resolved conversation is kept after its last change. Deletion removes
// the conversation, its messages, its attachment rows and their files.
// Open and pending conversations are never deleted: they still belong to
// someone's inbox or queue.
const (
	retentionEvery = time.Hour
	retentionBatch = 200
)

// enforceRetention deletes every expired conversation of every site and
// returns how many it deleted.
func (s *Service) enforceRetention(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, site := range s.sites.all() {
		days := site.Settings.RetentionDays
		if days <= 0 {
			continue
		}
		cutoff := now.Add(-time.Duration(days) * 24 * time.Hour).UnixMilli()
		for {
			var gone []string
			var files []string
			if err := s.writer.do(ctx, s.retentionOp(site.ID, cutoff, &gone, &files)); err != nil {
				return total, fmt.Errorf("retention of site %s: %w", site.ID, err)
			}
			s.metaMu.Lock()
			for _, id := range gone {
				delete(s.meta, id)
			}
			s.metaMu.Unlock()
			for _, f := range files {
				if err := s.files.Delete(ctx, f); err != nil {
					// The row is gone; a leftover file is unreachable but logged.
					s.log.Warn("retention: delete attachment file", "attachment", f, "err", err)
				}
			}
			total += len(gone)
			if len(gone) < retentionBatch {
				break
			}
		}
	}
	return total, nil
}

// retentionOp deletes up to retentionBatch resolved conversations of
// siteID last changed before cutoff (ms), inside the writer's transaction
// so that it never races a message to the same conversation.
func (s *Service) retentionOp(siteID string, cutoff int64, deleted, files *[]string) func(t *wtx) error {
	return func(t *wtx) error {
		*deleted, *files = (*deleted)[:0], (*files)[:0]
		list, err := t.tx.ExpiredConversations(t.ctx, siteID, time.UnixMilli(cutoff), retentionBatch)
		if err != nil {
			return err
		}
		for _, x := range list {
			// An earlier operation of this batch may have staged a change
			// (a reopening message) that is not written yet: keep it.
			if _, staged := t.batch.convs[x.ID]; staged {
				continue
			}
			gone, err := t.tx.DeleteConversation(t.ctx, x.ID)
			if err != nil {
				return err
			}
			*files = append(*files, gone...)
			delete(t.w.convs, x.ID)
			if t.w.visitorConv[x.VisitorID] == x.ID {
				delete(t.w.visitorConv, x.VisitorID)
			}
			*deleted = append(*deleted, x.ID)
		}
		return nil
	}
}

// retention runs enforceRetention shortly after start and then every
// retentionEvery until ctx ends.
func (s *Service) retention(ctx context.Context) {
	first := time.NewTimer(time.Minute)
	defer first.Stop()
	tick := time.NewTicker(retentionEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-first.C:
			s.runRetention(ctx, now)
		case now := <-tick.C:
			s.runRetention(ctx, now)
		}
	}
}

func (s *Service) runRetention(ctx context.Context, now time.Time) {
	n, err := s.enforceRetention(ctx, now)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("retention", "deleted", n, "err", err)
		return
	}
	if n > 0 {
		s.log.Info("retention: deleted expired conversations", "count", n)
	}
}
