package chatsvc

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestChatStoreSecurityConformance covers the store methods behind the
// security controls (webhook secrets, attachment quotas and the unbound
// sweep, address bans) on both backends.
func TestChatStoreSecurityConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openTestStore(t, backend)
		now := time.Now().Truncate(time.Millisecond)

		site := Site{ID: "s1", Name: "One", Key: "pk_1", Secret: "identity", WebhookSecret: "hook-1", AllowedOrigins: []string{}, CreatedAt: ingest.At(now)}
		if err := s.InsertSite(ctx, site, outboxRecord(t, ingest.SiteUpdated, "s1", "site:s1", &ingest.SiteUpdatedPayload{Name: "One"})); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWebhookSecret(ctx, "s1", "hook-2"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWebhookSecret(ctx, "nope", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetWebhookSecret of a missing site = %v, want ErrNotFound", err)
		}
		sites, err := s.Sites(ctx)
		if err != nil || len(sites) != 1 || sites[0].WebhookSecret != "hook-2" || sites[0].Secret != "identity" {
			t.Fatalf("Sites = %+v, %v; want webhook secret hook-2 and identity secret kept", sites, err)
		}

		// Quotas: bytes per uploader and per site.
		for i, a := range []AttachmentRecord{
			{Attachment: ingest.Attachment{ID: "a1", Name: "a", ContentType: "image/png", Size: 100}, UploaderID: "v1", SiteID: "s1", CreatedAt: now.Add(-2 * time.Hour)},
			{Attachment: ingest.Attachment{ID: "a2", Name: "b", ContentType: "image/png", Size: 50}, UploaderID: "v1", SiteID: "s1", CreatedAt: now},
			{Attachment: ingest.Attachment{ID: "a3", Name: "c", ContentType: "image/png", Size: 7}, UploaderID: "v2", SiteID: "s1", CreatedAt: now.Add(-3 * time.Hour)},
			{Attachment: ingest.Attachment{ID: "a4", Name: "d", ContentType: "image/png", Size: 1000}, UploaderID: "agent", CreatedAt: now.Add(-3 * time.Hour)},
		} {
			if err := s.InsertAttachment(ctx, a); err != nil {
				t.Fatalf("attachment %d: %v", i, err)
			}
		}
		got, err := s.Attachment(ctx, "a1")
		if err != nil || got.SiteID != "s1" || got.UploaderID != "v1" {
			t.Fatalf("Attachment = %+v, %v", got, err)
		}
		mine, perSite, err := s.AttachmentBytes(ctx, "v1", "s1")
		if err != nil || mine != 150 || perSite != 157 {
			t.Fatalf("AttachmentBytes(v1, s1) = %d, %d, %v; want 150, 157", mine, perSite, err)
		}
		if mine, perSite, err = s.AttachmentBytes(ctx, "nobody", ""); err != nil || mine != 0 || perSite != 0 {
			t.Fatalf("AttachmentBytes(nobody) = %d, %d, %v", mine, perSite, err)
		}

		// The sweep removes unbound records older than the cutoff, never bound ones.
		mustTx(t, s, func(tx ChatTx) error { return tx.BindAttachment(ctx, "a3", "conv-1") })
		gone, err := s.DeleteUnboundAttachments(ctx, now.Add(-time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(gone)
		if !slices.Equal(gone, []string{"a1", "a4"}) {
			t.Fatalf("swept %v, want [a1 a4]", gone)
		}
		for id, want := range map[string]bool{"a1": false, "a2": true, "a3": true, "a4": false} {
			_, err := s.Attachment(ctx, id)
			if want != (err == nil) {
				t.Errorf("attachment %s after the sweep: %v", id, err)
			}
		}

		// Address bans: stored, expiring, a longer one kept, lifted.
		if _, ok, err := s.IPBan(ctx, "s1", "203.0.113.9", now); err != nil || ok {
			t.Fatalf("IPBan before any = %v, %v", ok, err)
		}
		until := now.Add(time.Hour)
		if err := s.PutIPBan(ctx, IPBanRecord{SiteID: "s1", IP: "203.0.113.9", Until: until, Reason: "spam"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutIPBan(ctx, IPBanRecord{SiteID: "s1", IP: "203.0.113.9", Until: now.Add(time.Minute), Reason: "again"}); err != nil {
			t.Fatal(err)
		}
		b, ok, err := s.IPBan(ctx, "s1", "203.0.113.9", now)
		if err != nil || !ok || !b.Until.Equal(until) || b.Reason != "again" {
			t.Fatalf("IPBan = %+v, %v, %v; want until %s kept", b, ok, err, until)
		}
		if _, ok, _ := s.IPBan(ctx, "s2", "203.0.113.9", now); ok {
			t.Fatal("an address ban of one site applies to another")
		}
		if _, ok, _ := s.IPBan(ctx, "s1", "203.0.113.9", until.Add(time.Second)); ok {
			t.Fatal("an expired address ban still applies")
		}
		if err := s.DeleteIPBans(ctx, "s1", "203.0.113.9"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.IPBan(ctx, "s1", "203.0.113.9", now); ok {
			t.Fatal("a lifted address ban still applies")
		}
	})
}
