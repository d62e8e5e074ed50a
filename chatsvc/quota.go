package chatsvc

import (
	"context"
	"fmt"
	"time"
)

// Attachment quotas: a visitor keeps at most Limits.VisitorAttachmentBytes
// uploaded and a site's visitors at most Limits.SiteAttachmentBytes; an
// upload never sent in a message is refused after Limits.UnboundUploadTTL
// and swept with its file (sweepUploads). Uploads also spend the uploader's
// address budget (Limits.IPConnectRate), like sessions and sockets.

// CodeQuotaExceeded refuses an upload over a byte quota (HTTP 413).
const CodeQuotaExceeded = "quota_exceeded"

// checkQuota refuses an upload of size bytes that would take the
// uploader or the site past its quota.
func (s *Service) checkQuota(ctx context.Context, uploaderID, siteID string, size int64) error {
	mine, site, err := s.store.AttachmentBytes(ctx, uploaderID, siteID)
	if err != nil {
		return err
	}
	l := s.cfg.Limits
	if mine+size > l.VisitorAttachmentBytes {
		return errf(CodeQuotaExceeded, "your uploads would take %d bytes; the limit is %d: send or drop earlier files", mine+size, l.VisitorAttachmentBytes)
	}
	if siteID != "" && site+size > l.SiteAttachmentBytes {
		s.log.Warn("site attachment quota reached", "site", siteID, "bytes", site, "limit", l.SiteAttachmentBytes)
		return errf(CodeQuotaExceeded, "this site's upload space is full; try again later")
	}
	return nil
}

// uploadExpired reports whether an unbound upload is too old to be sent.
func (s *Service) uploadExpired(a AttachmentRecord, now time.Time) bool {
	return a.ConversationID == "" && now.Sub(a.CreatedAt) > s.cfg.Limits.UnboundUploadTTL
}

// sweepGrace keeps an expired upload a little longer than sends refuse
// it (a minute for the default hour), so a send checked just before
// expiry never binds a swept record.
func (s *Service) sweepGrace() time.Duration { return s.cfg.Limits.UnboundUploadTTL / 60 }

// sweepUploads deletes uploads never sent within UnboundUploadTTL, rows
// then files, every few minutes until ctx ends.
func (s *Service) sweepUploads(ctx context.Context) {
	every := min(5*time.Minute, max(s.cfg.Limits.UnboundUploadTTL/4, 10*time.Millisecond))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if n, err := s.sweepUploadsOnce(ctx, now); err != nil && ctx.Err() == nil {
				s.log.Warn("sweep unsent uploads", "deleted", n, "err", err)
			} else if n > 0 {
				s.log.Info("swept unsent uploads", "count", n)
			}
		}
	}
}

func (s *Service) sweepUploadsOnce(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.Add(-s.cfg.Limits.UnboundUploadTTL - s.sweepGrace())
	total := 0
	for {
		ids, err := s.store.DeleteUnboundAttachments(ctx, cutoff, 500)
		if err != nil {
			return total, err
		}
		for _, id := range ids {
			if err := s.files.Delete(ctx, id); err != nil {
				return total, fmt.Errorf("delete file of upload %s: %w", id, err)
			}
		}
		total += len(ids)
		if len(ids) < 500 {
			return total, nil
		}
	}
}
