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
func (s *Service) retentionOp(siteID string, cutoff int64, gone, files *[]string) func(t *wtx) error {
	return func(t *wtx) error {
		*gone, *files = (*gone)[:0], (*files)[:0]
		rows, err := t.tx.QueryContext(t.ctx, `SELECT id, visitor_id FROM conversations
			WHERE site_id = ? AND status = ? AND updated_at < ? ORDER BY updated_at LIMIT ?`, siteID, StatusResolved, cutoff, retentionBatch)
		if err != nil {
			return fmt.Errorf("find expired conversations: %w", err)
		}
		type expired struct{ id, visitor string }
		var list []expired
		for rows.Next() {
			var x expired
			if err := rows.Scan(&x.id, &x.visitor); err != nil {
				rows.Close()
				return fmt.Errorf("scan expired conversation: %w", err)
			}
			// An earlier operation of this batch may have staged a change
			// (a reopening message) that is not written yet: keep it.
			if _, staged := t.batch.convs[x.id]; !staged {
				list = append(list, x)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read expired conversations: %w", err)
		}
		for _, x := range list {
			arows, err := t.tx.QueryContext(t.ctx, `SELECT id FROM attachments WHERE conversation_id = ?`, x.id)
			if err != nil {
				return fmt.Errorf("find attachments of %s: %w", x.id, err)
			}
			for arows.Next() {
				var a string
				if err := arows.Scan(&a); err != nil {
					arows.Close()
					return fmt.Errorf("scan attachment of %s: %w", x.id, err)
				}
				*files = append(*files, a)
			}
			arows.Close()
			for _, q := range []string{
				`DELETE FROM messages WHERE conversation_id = ?`,
				`DELETE FROM attachments WHERE conversation_id = ?`,
				`DELETE FROM conversations WHERE id = ?`,
			} {
				if _, err := t.tx.ExecContext(t.ctx, q, x.id); err != nil {
					return fmt.Errorf("delete expired conversation %s: %w", x.id, err)
				}
			}
			delete(t.w.convs, x.id)
			if t.w.visitorConv[x.visitor] == x.id {
				delete(t.w.visitorConv, x.visitor)
			}
			*gone = append(*gone, x.id)
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
