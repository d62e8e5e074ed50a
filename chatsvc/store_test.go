package chatsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// openTestStore opens a fresh chat store of the given backend for t.
func openTestStore(t testing.TB, backend string) ChatStore {
	s, _ := openTestStores(t, backend)
	return s
}

// openTestStores opens a fresh chat store and the attachment store that
// goes with it: files in t's directory for SQLite, the schema's table for
// PostgreSQL.
func openTestStores(t testing.TB, backend string) (ChatStore, AttachmentStore) {
	t.Helper()
	ctx := context.Background()
	switch backend {
	case "sqlite":
		s, err := OpenSQLite(ctx, sqltest.SQLite(t, "chat"), SQLiteOptions{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		files, err := NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s, files
	case "postgres":
		pool := sqltest.Postgres(t, PostgresSchema, 8)
		s, err := OpenPostgres(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		return s, PostgresFiles(pool)
	}
	t.Fatalf("unknown backend %q", backend)
	return nil, nil
}

// inTx runs f in one writer transaction and commits it.
func inTx(t *testing.T, s ChatStore, f func(tx ChatTx) error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f(tx); err != nil {
		tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

func mustTx(t *testing.T, s ChatStore, f func(tx ChatTx) error) {
	t.Helper()
	if err := inTx(t, s, f); err != nil {
		t.Fatal(err)
	}
}

func outboxRecord(t *testing.T, typ ingest.Type, site, conv string, payload any) ingest.OutboxRecord {
	t.Helper()
	e, err := ingest.New(typ, site, conv, ingest.Actor{Role: ingest.RoleSystem, ID: "test"}, time.Now(), payload)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ingest.NewOutboxRecord(e)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChatStoreConformance runs every ChatStore and ChatTx method on each
// backend and expects the same answers.
func TestChatStoreConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s, files := openTestStores(t, backend)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.UnixMilli(1_790_000_000_000)

		// Attachment bytes.
		const fileKey = "0123456789abcdef0123456789abcdef"
		if n, err := files.Put(ctx, fileKey, strings.NewReader("png bytes")); err != nil || n != 9 {
			t.Fatalf("Put = %d, %v", n, err)
		}
		r, err := files.Open(ctx, fileKey)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(r); string(b) != "png bytes" {
			t.Fatalf("Open read %q", b)
		}
		r.Close()
		if err := files.Delete(ctx, fileKey); err != nil {
			t.Fatal(err)
		}
		if _, err := files.Open(ctx, fileKey); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted file: %v", err)
		}

		// Sites, with their events in the same transaction.
		site := Site{ID: "s1", Name: "Shop", Key: "pk_1", Secret: "sec", AllowedOrigins: []string{"https://a.example"},
			IdentityRequired: true, Settings: SiteSettings{Color: "#123456", RetentionDays: 3}, CreatedAt: ingest.At(t0)}
		if err := s.InsertSite(ctx, site, outboxRecord(t, ingest.SiteUpdated, "s1", ingest.SiteKey("s1"), ingest.SiteUpdatedPayload{Name: "Shop"})); err != nil {
			t.Fatal(err)
		}
		site.Name, site.IdentityRequired, site.AllowedOrigins = "Shop 2", false, []string{}
		if err := s.UpdateSite(ctx, site, outboxRecord(t, ingest.SiteUpdated, "s1", ingest.SiteKey("s1"), ingest.SiteUpdatedPayload{Name: "Shop 2"})); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateSite(ctx, Site{ID: "nope"}, outboxRecord(t, ingest.SiteUpdated, "nope", ingest.SiteKey("nope"), ingest.SiteUpdatedPayload{})); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update missing site: %v", err)
		}
		if err := s.SetSiteSecret(ctx, "s1", "sec2"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSiteSecret(ctx, "nope", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("secret of missing site: %v", err)
		}
		sites, err := s.Sites(ctx)
		if err != nil || len(sites) != 1 {
			t.Fatalf("Sites = %v, %v", sites, err)
		}
		got := sites[0]
		if got.Name != "Shop 2" || got.Secret != "sec2" || got.IdentityRequired || got.Key != "pk_1" || got.Settings.RetentionDays != 3 ||
			!got.CreatedAt.Equal(t0) || len(got.AllowedOrigins) != 0 {
			t.Fatalf("site as stored: %+v", got)
		}
		if err := s.InsertSite(ctx, Site{ID: "s2", Name: "Gone", Key: "pk_2", AllowedOrigins: []string{}, CreatedAt: ingest.At(t0)}, outboxRecord(t, ingest.SiteUpdated, "s2", ingest.SiteKey("s2"), ingest.SiteUpdatedPayload{Name: "Gone"})); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSite(ctx, "s2", outboxRecord(t, ingest.SiteUpdated, "s2", ingest.SiteKey("s2"), ingest.SiteUpdatedPayload{Name: "Gone", Deleted: true})); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSite(ctx, "s2", outboxRecord(t, ingest.SiteUpdated, "s2", ingest.SiteKey("s2"), ingest.SiteUpdatedPayload{})); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}

		// Visitors.
		if err := s.InsertVisitor(ctx, VisitorRecord{ID: "v1", SiteID: "s1", IP: "10.0.0.1", UserAgent: "UA", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.VisitorExists(ctx, "v1"); !ok || err != nil {
			t.Fatalf("VisitorExists(v1) = %v, %v", ok, err)
		}
		if ok, err := s.VisitorExists(ctx, "v9"); ok || err != nil {
			t.Fatalf("VisitorExists(v9) = %v, %v", ok, err)
		}
		idA, err := s.EnsureExternalVisitor(ctx, VisitorRecord{ID: "v2", SiteID: "s1", ExternalID: "crm-7", Verified: true, CreatedAt: t0})
		if err != nil || idA != "v2" {
			t.Fatalf("EnsureExternalVisitor = %q, %v", idA, err)
		}
		if idB, err := s.EnsureExternalVisitor(ctx, VisitorRecord{ID: "v3", SiteID: "s1", ExternalID: "crm-7", Verified: true, CreatedAt: t0}); err != nil || idB != "v2" {
			t.Fatalf("second EnsureExternalVisitor = %q, %v (want the first id)", idB, err)
		}
		if err := s.TouchVisitor(ctx, "v1", "10.0.0.2", "UA2", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetVisitorPage(ctx, "v1", VisitorPage{URL: "https://a.example/p", Title: "P", Referrer: "r", Timezone: "Europe/Paris", Locale: "fr"}, t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		v, ok, err := s.Visitor(ctx, "v1")
		if err != nil || !ok || v.IP != "10.0.0.2" || v.UserAgent != "UA2" || v.PageURL != "https://a.example/p" || v.Timezone != "Europe/Paris" ||
			v.Locale != "fr" || !v.LastSeenAt.Equal(t0.Add(2*time.Minute)) || !v.CreatedAt.Equal(t0) || v.Verified {
			t.Fatalf("Visitor(v1) = %+v %v %v", v, ok, err)
		}
		if v, _, _ := s.Visitor(ctx, "v2"); !v.Verified || v.ExternalID != "crm-7" {
			t.Fatalf("Visitor(v2) = %+v", v)
		}
		if _, ok, err := s.Visitor(ctx, "v9"); ok || err != nil {
			t.Fatalf("Visitor(v9) = %v, %v", ok, err)
		}

		// Attachments.
		att := AttachmentRecord{Attachment: ingest.Attachment{ID: "a1", Name: "f.png", ContentType: "image/png", Size: 42}, UploaderID: "v1", CreatedAt: t0}
		if err := s.InsertAttachment(ctx, att); err != nil {
			t.Fatal(err)
		}
		if a, err := s.Attachment(ctx, "a1"); err != nil || a.Name != "f.png" || a.Size != 42 || a.UploaderID != "v1" || a.ConversationID != "" {
			t.Fatalf("Attachment = %+v, %v", a, err)
		}
		if _, err := s.Attachment(ctx, "zz"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing attachment: %v", err)
		}

		// A conversation through the writer's transaction.
		c := &convState{ID: "c1", SiteID: "s1", VisitorID: "v1", Channel: ingest.ChannelWidget, Status: StatusOpen, Routing: RoutingQueued,
			QueuedAt: t0.UnixMilli(), CreatedAt: t0.UnixMilli(), UpdatedAt: t0.UnixMilli()}
		msg := func(seq int64, clientID, text string) Message {
			return Message{ID: fmt.Sprintf("m%d", seq), ConversationID: "c1", Seq: seq, ClientID: clientID,
				Author: Author{Role: "visitor", ID: "v1", Name: "Ann"}, Kind: ingest.KindText, Text: text, Status: MsgVisible,
				CreatedAt: ingest.At(t0.Add(time.Duration(seq) * time.Second)), eventID: fmt.Sprintf("e%d", seq), categories: []string{"pii"}}
		}
		mustTx(t, s, func(tx ChatTx) error {
			if id, err := tx.NewestConversationOf(ctx, "v1"); err != nil || id != "" {
				t.Fatalf("NewestConversationOf before = %q, %v", id, err)
			}
			if err := tx.InsertConversation(ctx, c); err != nil {
				return err
			}
			if c.Version != 1 {
				t.Fatalf("new conversation version %d", c.Version)
			}
			c.LastSeq = 1
			if err := tx.InsertMessage(ctx, msg(1, "cl-1", "hello"), []ingest.Attachment{att.Attachment}); err != nil {
				return err
			}
			if err := tx.BindAttachment(ctx, "a1", "c1"); err != nil {
				return err
			}
			if err := tx.AppendOutbox(ctx, outboxRecord(t, ingest.ConversationStarted, "s1", "c1", ingest.ConversationStartedPayload{Channel: ingest.ChannelWidget, VisitorID: "v1"})); err != nil {
				return err
			}
			if err := tx.UpdateVisitorProfile(ctx, "v1", "Ann", "ann@example.test", map[string]string{"order": "42"}); err != nil {
				return err
			}
			// Reads see the transaction's own writes.
			if id, err := tx.NewestConversationOf(ctx, "v1"); err != nil || id != "c1" {
				t.Fatalf("NewestConversationOf in tx = %q, %v", id, err)
			}
			if vs, err := tx.VisitorSummary(ctx, "v1"); err != nil || vs.Name != "Ann" || vs.Email != "ann@example.test" || vs.SiteID != "s1" {
				t.Fatalf("VisitorSummary = %+v, %v", vs, err)
			}
			if a, err := tx.Attachment(ctx, "a1"); err != nil || a.ConversationID != "c1" {
				t.Fatalf("tx Attachment = %+v, %v", a, err)
			}
			return tx.UpdateConversation(ctx, c, changeActivity)
		})
		if c.Version != 2 {
			t.Fatalf("version after update = %d, want 2", c.Version)
		}
		if vs, _, _ := s.Visitor(ctx, "v1"); vs.Fields["order"] != "42" {
			t.Fatalf("fields = %v", vs.Fields)
		}
		// nil fields keep the stored ones.
		mustTx(t, s, func(tx ChatTx) error { return tx.UpdateVisitorProfile(ctx, "v1", "Ann B", "ann@example.test", nil) })
		if vs, _, _ := s.Visitor(ctx, "v1"); vs.Name != "Ann B" || vs.Fields["order"] != "42" {
			t.Fatalf("after profile without fields: %+v", vs)
		}

		// A stale version is a conflict, and so is a taken sequence number.
		stale := *c
		stale.Version = 1
		if err := inTx(t, s, func(tx ChatTx) error { return tx.UpdateConversation(ctx, &stale, changeAll) }); !errors.Is(err, errConflict) {
			t.Fatalf("stale update: %v, want errConflict", err)
		}
		if err := inTx(t, s, func(tx ChatTx) error {
			return tx.InsertMessage(ctx, func() Message { m := msg(1, "", "x"); m.ID = "other"; return m }(), nil)
		}); !errors.Is(err, errConflict) {
			t.Fatalf("taken seq: %v, want errConflict", err)
		}
		var resend *resendError
		if err := inTx(t, s, func(tx ChatTx) error { m := msg(2, "cl-1", "again"); return tx.InsertMessage(ctx, m, nil) }); !errors.As(err, &resend) || resend.clientID != "cl-1" {
			t.Fatalf("reused client id: %v, want *resendError", err)
		}

		mustTx(t, s, func(tx ChatTx) error {
			got, err := tx.Conversation(ctx, "c1")
			if err != nil || got.LastSeq != 1 || got.Version != 2 {
				t.Fatalf("tx Conversation = %+v, %v", got, err)
			}
			if _, err := tx.Conversation(ctx, "zz"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing conversation in tx: %v", err)
			}
			locked, err := tx.LockConversations(ctx, []string{"zz", "c1"})
			if err != nil || len(locked) != 1 || locked[0].ID != "c1" || locked[0].Version != 2 || locked[0].LastSeq != 1 {
				t.Fatalf("LockConversations = %+v, %v", locked, err)
			}
			if locked, err := tx.TryLockConversations(ctx, []string{"zz", "c1"}); err != nil || len(locked) != 1 || locked[0].ID != "c1" || locked[0].Version != 2 {
				t.Fatalf("TryLockConversations = %+v, %v", locked, err)
			}
			m, found, err := tx.MessageByClientID(ctx, "v1", "cl-1")
			if err != nil || !found || m.ID != "m1" || m.Text != "hello" || len(m.Attachments) != 1 || m.Attachments[0].ID != "a1" ||
				m.eventID != "e1" || len(m.categories) != 1 || !m.CreatedAt.Equal(t0.Add(time.Second)) {
				t.Fatalf("MessageByClientID = %+v %v %v", m, found, err)
			}
			if _, found, err := tx.MessageByClientID(ctx, "v1", "nope"); found || err != nil {
				t.Fatalf("unknown client id: %v %v", found, err)
			}
			if err := tx.SetMessageStatus(ctx, "m1", MsgHidden); err != nil {
				return err
			}
			m, found, err = tx.MessageByID(ctx, "m1")
			if err != nil || !found || m.Status != MsgHidden {
				t.Fatalf("MessageByID = %+v %v %v", m, found, err)
			}
			if _, found, err := tx.MessageByID(ctx, "zz"); found || err != nil {
				t.Fatalf("unknown message: %v %v", found, err)
			}
			return nil
		})
		// Rollback leaves nothing behind.
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.InsertConversation(ctx, &convState{ID: "rolled", SiteID: "s1", VisitorID: "v1", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1}); err != nil {
			t.Fatal(err)
		}
		tx.Rollback(ctx)
		if _, err := s.Conversation(ctx, "rolled"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rolled back conversation: %v", err)
		}

		// Reads for handlers.
		if cv, err := s.Conversation(ctx, "c1"); err != nil || cv.Version != 2 || cv.SiteID != "s1" {
			t.Fatalf("Conversation = %+v, %v", cv, err)
		}
		open, err := s.OpenConversations(ctx)
		if err != nil || len(open) != 1 || open[0].ID != "c1" {
			t.Fatalf("OpenConversations = %v, %v", open, err)
		}
		rows, err := s.ConversationRows(ctx, ConversationFilter{Status: StatusOpen, Scope: "unassigned", SiteID: "s1", VisitorID: "v1", Before: t0.Add(time.Hour), Limit: 10})
		if err != nil || len(rows) != 1 || rows[0].Visitor.Name != "Ann B" || rows[0].Visitor.Email != "ann@example.test" {
			t.Fatalf("ConversationRows = %+v, %v", rows, err)
		}
		if rows, _ := s.ConversationRows(ctx, ConversationFilter{Status: StatusResolved, Limit: 10}); len(rows) != 0 {
			t.Fatalf("resolved rows = %v", rows)
		}
		if rows, _ := s.ConversationRows(ctx, ConversationFilter{Status: "all", Scope: "mine", Me: "agent-x", Limit: 10}); len(rows) != 0 {
			t.Fatalf("mine rows = %v", rows)
		}
		if r, err := s.LatestConversationRow(ctx, "v1"); err != nil || r == nil || r.Conv.ID != "c1" {
			t.Fatalf("LatestConversationRow = %+v, %v", r, err)
		}
		if r, err := s.LatestConversationRow(ctx, "v2"); err != nil || r != nil {
			t.Fatalf("LatestConversationRow(v2) = %+v, %v", r, err)
		}
		mustTx(t, s, func(tx ChatTx) error {
			for seq := int64(2); seq <= 4; seq++ {
				if err := tx.InsertMessage(ctx, msg(seq, "", fmt.Sprint("m", seq)), nil); err != nil {
					return err
				}
			}
			return nil
		})
		msgs, err := s.MessagesAfter(ctx, "c1", 1, 2)
		if err != nil || len(msgs) != 2 || msgs[0].Seq != 2 || msgs[1].Seq != 3 {
			t.Fatalf("MessagesAfter = %+v, %v", msgs, err)
		}

		// Canned replies.
		for _, r := range []Canned{{ID: "k1", Shortcut: "hi", Text: "Hello"}, {ID: "k2", SiteID: "s1", Shortcut: "hi", Text: "Hi from s1"}, {ID: "k3", SiteID: "s9", Shortcut: "bye", Text: "Bye"}} {
			if err := s.InsertCanned(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.InsertCanned(ctx, Canned{ID: "k4", SiteID: "s1", Shortcut: "hi", Text: "dup"}); !errors.Is(err, errShortcutTaken) {
			t.Fatalf("duplicate shortcut: %v", err)
		}
		if list, err := s.CannedReplies(ctx, "s1"); err != nil || len(list) != 2 {
			t.Fatalf("CannedReplies(s1) = %v, %v", list, err)
		}
		if list, _ := s.CannedReplies(ctx, ""); len(list) != 3 || list[0].Shortcut != "bye" {
			t.Fatalf("CannedReplies() = %v", list)
		}
		if err := s.UpdateCanned(ctx, Canned{ID: "k3", SiteID: "s1", Shortcut: "hi", Text: "x"}); !errors.Is(err, errShortcutTaken) {
			t.Fatalf("update onto taken shortcut: %v", err)
		}
		if err := s.UpdateCanned(ctx, Canned{ID: "zz", Shortcut: "q", Text: "x"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update missing canned: %v", err)
		}
		if err := s.UpdateCanned(ctx, Canned{ID: "k3", SiteID: "s9", Shortcut: "ciao", Text: "Ciao"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteCanned(ctx, "k3"); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.CannedReplies(ctx, ""); len(list) != 2 {
			t.Fatalf("after delete: %v", list)
		}

		// Bans.
		if err := s.PutBan(ctx, BanRecord{SiteID: "s1", VisitorID: "v1", Until: t0.Add(time.Hour), Reason: "spam"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBan(ctx, BanRecord{SiteID: "s1", VisitorID: "v1", Until: t0.Add(2 * time.Hour), Reason: "again"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBan(ctx, BanRecord{SiteID: "s1", VisitorID: "old", Until: t0.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		bans, err := s.ActiveBans(ctx, t0)
		if err != nil || len(bans) != 1 || bans[0].Reason != "again" || !bans[0].Until.Equal(t0.Add(2*time.Hour)) {
			t.Fatalf("ActiveBans = %+v, %v", bans, err)
		}
		if err := s.DeleteBan(ctx, "s1", "v1"); err != nil {
			t.Fatal(err)
		}
		if bans, _ := s.ActiveBans(ctx, t0); len(bans) != 0 {
			t.Fatalf("after lift: %v", bans)
		}

		// The outbox: 4 site events + 1 from the transaction + 2 appended.
		if err := s.AppendOutbox(ctx, []ingest.OutboxRecord{
			outboxRecord(t, ingest.SiteUpdated, "s1", ingest.SiteKey("s1"), ingest.SiteUpdatedPayload{Name: "Shop 2"}),
			outboxRecord(t, ingest.SiteUpdated, "s1", ingest.SiteKey("s1"), ingest.SiteUpdatedPayload{Name: "Shop 2"}),
		}); err != nil {
			t.Fatal(err)
		}
		if n, oldest, err := s.OutboxBacklog(ctx); err != nil || n != 7 || oldest.IsZero() {
			t.Fatalf("OutboxBacklog = %d, %v, %v", n, oldest, err)
		}
		var published []ingest.OutboxRecord
		n, err := s.ClaimOutbox(ctx, 5, func(_ context.Context, recs []ingest.OutboxRecord) ([]int64, error) {
			published = append(published, recs...)
			return []int64{recs[0].Seq, recs[1].Seq}, errors.New("3 of 5 not acknowledged")
		})
		if n != 5 || err == nil || len(published) != 5 {
			t.Fatalf("ClaimOutbox = %d, %v", n, err)
		}
		for i := 1; i < len(published); i++ {
			if published[i].Seq <= published[i-1].Seq || published[i].Topic != ingest.TopicChat || len(published[i].Value) == 0 {
				t.Fatalf("claimed out of order or empty: %+v", published)
			}
		}
		if published[0].Key != ingest.SiteKey("s1") {
			t.Fatalf("first record key %q", published[0].Key)
		}
		if n, _, _ := s.OutboxBacklog(ctx); n != 5 {
			t.Fatalf("backlog after a partial publish = %d, want 5", n)
		}
		n, err = s.ClaimOutbox(ctx, 100, func(_ context.Context, recs []ingest.OutboxRecord) ([]int64, error) {
			if recs[0].Seq != published[2].Seq {
				t.Fatalf("unacknowledged records must come first again")
			}
			seqs := make([]int64, len(recs))
			for i, r := range recs {
				seqs[i] = r.Seq
			}
			return seqs, nil
		})
		if n != 5 || err != nil {
			t.Fatalf("second claim = %d, %v", n, err)
		}
		if n, oldest, _ := s.OutboxBacklog(ctx); n != 0 || !oldest.IsZero() {
			t.Fatalf("backlog after relaying all = %d, %v", n, oldest)
		}
		if err := s.PurgeOutbox(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.ClaimOutbox(ctx, 10, func(context.Context, []ingest.OutboxRecord) ([]int64, error) {
			t.Fatal("nothing should be claimed")
			return nil, nil
		}); n != 0 || err != nil {
			t.Fatalf("empty claim = %d, %v", n, err)
		}

		// Retention: resolved, old conversations go with their messages and attachments.
		mustTx(t, s, func(tx ChatTx) error {
			cur, err := tx.Conversation(ctx, "c1")
			if err != nil {
				return err
			}
			cur.Status, cur.ResolvedAt, cur.UpdatedAt = StatusResolved, t0.UnixMilli(), t0.UnixMilli()
			return tx.UpdateConversation(ctx, cur, changeAll)
		})
		mustTx(t, s, func(tx ChatTx) error {
			exp, err := tx.ExpiredConversations(ctx, "s1", t0.Add(time.Minute), 10)
			if err != nil || len(exp) != 1 || exp[0].ID != "c1" || exp[0].VisitorID != "v1" {
				t.Fatalf("ExpiredConversations = %+v, %v", exp, err)
			}
			if exp, _ := tx.ExpiredConversations(ctx, "s1", t0.Add(-time.Minute), 10); len(exp) != 0 {
				t.Fatalf("too early: %v", exp)
			}
			files, err := tx.DeleteConversation(ctx, "c1")
			if err != nil || len(files) != 1 || files[0] != "a1" {
				t.Fatalf("DeleteConversation = %v, %v", files, err)
			}
			return nil
		})
		if _, err := s.Conversation(ctx, "c1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted conversation: %v", err)
		}
		if msgs, _ := s.MessagesAfter(ctx, "c1", 0, 10); len(msgs) != 0 {
			t.Fatalf("messages of a deleted conversation: %d", len(msgs))
		}
		if _, err := s.Attachment(ctx, "a1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("attachment of a deleted conversation: %v", err)
		}
		// The signing key: the first candidate offered wins for every node.
		k1, err := s.SigningKey(ctx, []byte("first-candidate-key-0123456789abcdef"))
		if err != nil || string(k1) != "first-candidate-key-0123456789abcdef" {
			t.Fatalf("SigningKey = %q, %v", k1, err)
		}
		if k2, err := s.SigningKey(ctx, []byte("second-candidate")); err != nil || string(k2) != string(k1) {
			t.Fatalf("second SigningKey = %q, %v (want the first)", k2, err)
		}
		mctx, cancel := context.WithCancel(ctx)
		cancel()
		s.Maintain(mctx) // returns at once when its context has ended
	})
}

// A batch redone after a lost race locks its conversations first; a write
// from another node to one of them gives up after the writer's lock
// timeout as a lost race (it is redone), instead of waiting for the whole
// batch or for PostgreSQL's deadlock check.
func TestLockedConversationMakesOtherWritersRedo(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, "postgres")
	mustTx(t, s, func(tx ChatTx) error {
		return tx.InsertConversation(ctx, &convState{ID: "c", SiteID: "s", VisitorID: "v", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1})
	})
	holder := holdConversations(t, s, "c")
	start := time.Now()
	result := make(chan error, 1)
	go func() {
		result <- inTx(t, s, func(tx ChatTx) error {
			c, err := tx.Conversation(ctx, "c")
			if err != nil {
				return err
			}
			c.LastPreview = "from the other node"
			return tx.UpdateConversation(ctx, c, changeActivity)
		})
	}()
	var err error
	select {
	case err = <-result:
	case <-time.After(5 * time.Second):
		holder.Rollback(ctx) // lets the other writer finish before the test ends
		t.Fatalf("the other writer still waits after 5 s; the lock timeout is %s", writerLockTimeout)
	}
	waited := time.Since(start)
	if !errors.Is(err, errConflict) {
		t.Fatalf("write to a locked conversation: %v, want errConflict", err)
	}
	t.Logf("the other writer gave up after %v", waited)
}

// TryLockConversations leaves out, at once, the conversations another
// transaction holds, and locks the others.
// TestOutboxKeepsATransactionsOrder: the records one writer transaction
// appends, before and after a read in it, and those AppendOutbox is given
// at once, are claimed in the order they were appended (PostgreSQL inserts
// each flush's records with one statement).
func TestOutboxKeepsATransactionsOrder(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openTestStore(t, backend)
		var want []string
		record := func(i int) ingest.OutboxRecord {
			r := outboxRecord(t, ingest.SiteUpdated, "s1", ingest.SiteKey("s1"), ingest.SiteUpdatedPayload{Name: fmt.Sprint("Shop ", i)})
			want = append(want, r.EventID)
			return r
		}
		mustTx(t, s, func(tx ChatTx) error {
			for i := range 40 {
				if i == 20 { // a read flushes the first twenty
					if _, err := tx.NewestConversationOf(ctx, "nobody"); err != nil {
						return err
					}
				}
				if err := tx.AppendOutbox(ctx, record(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err := s.AppendOutbox(ctx, []ingest.OutboxRecord{record(40), record(41), record(42)}); err != nil {
			t.Fatal(err)
		}
		var got []string
		if _, err := s.ClaimOutbox(ctx, 100, func(_ context.Context, recs []ingest.OutboxRecord) ([]int64, error) {
			seqs := make([]int64, len(recs))
			for i, r := range recs {
				got, seqs[i] = append(got, r.EventID), r.Seq
			}
			return seqs, nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("claimed %d records in another order than appended:\n got %v\nwant %v", len(got), got, want)
		}
	})
}

// TestOneTransactionsWritesKeepTheirRefusals: a writer transaction
// updating several conversations (one of them twice) and inserting
// several messages commits them all, and a refusal names the operation
// that caused it, not just the first of the kind (PostgreSQL writes each
// kind with one statement per flush).
func TestOneTransactionsWritesKeepTheirRefusals(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openTestStore(t, backend)
		t0 := time.UnixMilli(1_790_000_000_000)
		msg := func(conv string, seq int64, clientID string) Message {
			return Message{ID: fmt.Sprintf("%s-m%d", conv, seq), ConversationID: conv, Seq: seq, ClientID: clientID,
				Author: Author{Role: "visitor", ID: "v-" + conv, Name: "Ann"}, Kind: ingest.KindText, Text: "hi", Status: MsgVisible,
				CreatedAt: ingest.At(t0), eventID: fmt.Sprintf("e-%s-%d", conv, seq)}
		}
		convs := map[string]*convState{}
		mustTx(t, s, func(tx ChatTx) error {
			for _, id := range []string{"b", "a"} {
				convs[id] = &convState{ID: id, SiteID: "s", VisitorID: "v-" + id, Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1}
				if err := tx.InsertConversation(ctx, convs[id]); err != nil {
					return err
				}
			}
			return nil
		})
		a, b := convs["a"], convs["b"]
		mustTx(t, s, func(tx ChatTx) error {
			for _, step := range []struct {
				c *convState
				m Message
			}{{a, msg("a", 1, "x1")}, {b, msg("b", 1, "")}, {a, msg("a", 2, "x2")}} {
				step.c.LastSeq, step.c.LastPreview = step.m.Seq, fmt.Sprint("seq ", step.m.Seq)
				if err := tx.InsertMessage(ctx, step.m, nil); err != nil {
					return err
				}
				if err := tx.UpdateConversation(ctx, step.c, changeAll); err != nil {
					return err
				}
			}
			return nil
		})
		for _, want := range []struct {
			id           string
			seq, version int64
			preview      string
		}{{"a", 2, 3, "seq 2"}, {"b", 1, 2, "seq 1"}} {
			got, err := s.Conversation(ctx, want.id)
			if err != nil || got.LastSeq != want.seq || got.Version != want.version || got.LastPreview != want.preview {
				t.Fatalf("conversation %s = %+v, %v; want seq %d, version %d, %q", want.id, got, err, want.seq, want.version, want.preview)
			}
		}
		conflictOn := func(err error) string {
			var c *conflictError
			if !errors.As(err, &c) {
				t.Fatalf("%v, want a conflict", err)
			}
			return c.conversationID
		}
		// b is stale, a is not: the conflict names b.
		staleB := *b
		staleB.Version = 1
		freshA := *a
		if id := conflictOn(inTx(t, s, func(tx ChatTx) error {
			if err := tx.UpdateConversation(ctx, &freshA, changeAll); err != nil {
				return err
			}
			return tx.UpdateConversation(ctx, &staleB, changeAll)
		})); id != "b" {
			t.Fatalf("stale update named %q, want b", id)
		}
		// a's new message is fine, b's seq 1 is taken: the conflict names b.
		if id := conflictOn(inTx(t, s, func(tx ChatTx) error {
			if err := tx.InsertMessage(ctx, msg("a", 3, ""), nil); err != nil {
				return err
			}
			return tx.InsertMessage(ctx, func() Message { m := msg("b", 1, ""); m.ID = "other"; return m }(), nil)
		})); id != "b" {
			t.Fatalf("taken seq named %q, want b", id)
		}
		// The second message reuses a client id: the resend names it.
		var resend *resendError
		if err := inTx(t, s, func(tx ChatTx) error {
			if err := tx.InsertMessage(ctx, msg("a", 3, "y1"), nil); err != nil {
				return err
			}
			return tx.InsertMessage(ctx, func() Message { m := msg("a", 4, "x2"); return m }(), nil)
		}); !errors.As(err, &resend) || resend.clientID != "x2" || resend.author != "v-a" {
			t.Fatalf("reused client id: %v, want a resend of x2 by v-a", err)
		}
	})
}

func TestTryLockSkipsHeldConversations(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, "postgres")
	for _, id := range []string{"held", "free"} {
		mustTx(t, s, func(tx ChatTx) error {
			return tx.InsertConversation(ctx, &convState{ID: id, SiteID: "s", VisitorID: "v", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1})
		})
	}
	holdConversations(t, s, "held")
	mustTx(t, s, func(tx ChatTx) error {
		got, err := tx.TryLockConversations(ctx, []string{"free", "held"})
		if err != nil || len(got) != 1 || got[0].ID != "free" {
			t.Fatalf("TryLockConversations = %+v, %v; want only the free one", got, err)
		}
		return nil
	})
	// The free one is now held by nobody again; the held one still is.
	other, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if got, err := other.TryLockConversations(ctx, []string{"free", "held"}); err != nil || len(got) != 1 || got[0].ID != "free" {
		t.Fatalf("TryLockConversations after the first committed = %+v, %v", got, err)
	}
}

// holdConversations locks conversations in a transaction of its own, as
// another node's batch would, until the caller rolls it back or t ends.
func holdConversations(t *testing.T, s ChatStore, ids ...string) ChatTx {
	t.Helper()
	ctx := context.Background()
	holder, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Rollback(ctx) })
	if got, err := holder.LockConversations(ctx, ids); err != nil || len(got) != len(ids) {
		t.Fatalf("LockConversations(%v) = %v, %v", ids, got, err)
	}
	return holder
}

// Two writers on one conversation (two chat nodes on one PostgreSQL) never
// produce the same sequence number or lose a message: the loser of each
// race sees errConflict, rereads the row and tries again.
func TestConcurrentWritersKeepSequenceNumbers(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, "postgres")
	if err := s.InsertVisitor(ctx, VisitorRecord{ID: "v", SiteID: "s", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mustTx(t, s, func(tx ChatTx) error {
		return tx.InsertConversation(ctx, &convState{ID: "c", SiteID: "s", VisitorID: "v", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1})
	})
	const writers, each = 4, 40
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					err := inTx(t, s, func(tx ChatTx) error {
						c, err := tx.Conversation(ctx, "c")
						if err != nil {
							return err
						}
						c.LastSeq++
						m := Message{ID: fmt.Sprintf("w%d-%d", w, i), ConversationID: "c", Seq: c.LastSeq, Author: Author{Role: "visitor", ID: "v"},
							Kind: ingest.KindText, Text: "x", Status: MsgVisible, CreatedAt: ingest.At(time.Now()), eventID: "e"}
						if err := tx.InsertMessage(ctx, m, nil); err != nil {
							return err
						}
						return tx.UpdateConversation(ctx, c, changeActivity)
					})
					if errors.Is(err, errConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	msgs, err := s.MessagesAfter(ctx, "c", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != writers*each {
		t.Fatalf("%d messages stored, want %d", len(msgs), writers*each)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d: sequence numbers reused or skipped", i, m.Seq)
		}
	}
	c, _ := s.Conversation(ctx, "c")
	if c.LastSeq != writers*each {
		t.Fatalf("last_seq = %d", c.LastSeq)
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}

// The routing and presence methods several nodes share.
func TestChatStoreRoutingAndPresence(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openTestStore(t, backend)
		conv := func(id, routing, status, assignee string, queuedAt int64) *convState {
			return &convState{ID: id, SiteID: "s", VisitorID: "v-" + id, Channel: "widget", Status: status, Routing: routing,
				Assignee: assignee, QueuedAt: queuedAt, CreatedAt: 1, UpdatedAt: 1}
		}
		mustTx(t, s, func(tx ChatTx) error {
			for _, c := range []*convState{
				conv("q2", RoutingQueued, StatusOpen, "", 20), conv("q1", RoutingQueued, StatusOpen, "", 10),
				conv("q-resolved", RoutingQueued, StatusResolved, "", 5),
				conv("a1", RoutingAssigned, StatusOpen, "ann", 0), conv("a2", RoutingAssigned, StatusPending, "ann", 0),
				conv("a3", RoutingAssigned, StatusOpen, "bob", 0), conv("a-done", RoutingAssigned, StatusResolved, "bob", 0),
				conv("b1", RoutingBot, StatusOpen, "", 0),
			} {
				if err := tx.InsertConversation(ctx, c); err != nil {
					return err
				}
			}
			return nil
		})
		q, err := s.QueuedConversations(ctx)
		if err != nil || len(q) != 2 || q[0].ID != "q1" || q[1].ID != "q2" {
			t.Fatalf("QueuedConversations = %v, %v", q, err)
		}
		loads, err := s.AgentLoads(ctx)
		if err != nil || loads["ann"] != 2 || loads["bob"] != 1 || len(loads) != 2 {
			t.Fatalf("AgentLoads = %v, %v", loads, err)
		}
		mustTx(t, s, func(tx ChatTx) error {
			ids, err := tx.AssignedConversations(ctx, "ann")
			if err != nil || len(ids) != 2 || ids[0] != "a1" || ids[1] != "a2" {
				t.Fatalf("AssignedConversations = %v, %v", ids, err)
			}
			prev, err := tx.SetAgentStatus(ctx, "ann", StatusOnline, time.UnixMilli(100))
			if err != nil || prev != "" {
				t.Fatalf("first SetAgentStatus = %q, %v", prev, err)
			}
			prev, err = tx.SetAgentStatus(ctx, "ann", StatusAway, time.UnixMilli(200))
			if err != nil || prev != StatusOnline {
				t.Fatalf("second SetAgentStatus = %q, %v", prev, err)
			}
			return nil
		})
		if st, err := s.AgentStatuses(ctx); err != nil || st["ann"] != StatusAway || len(st) != 1 {
			t.Fatalf("AgentStatuses = %v, %v", st, err)
		}

		t0 := time.UnixMilli(1_790_000_000_000)
		if err := s.ReportPresence(ctx, "n1", []NodePresence{{AgentID: "ann", Status: StatusOnline, TeamID: "t", Name: "Ann"}, {AgentID: "bob", Status: StatusAway}}, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.ReportPresence(ctx, "n2", []NodePresence{{AgentID: "ann", Status: StatusAway}}, t0.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		// A node's new report replaces its old one (bob is gone from n1).
		if err := s.ReportPresence(ctx, "n1", []NodePresence{{AgentID: "ann", Status: StatusOnline, TeamID: "t", Name: "Ann"}}, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		fresh, err := s.FreshPresence(ctx, t0.Add(-10*time.Second))
		if err != nil || len(fresh) != 1 || fresh[0].AgentID != "ann" || fresh[0].Node != "n1" || fresh[0].TeamID != "t" || !fresh[0].At.Equal(t0.Add(time.Second)) {
			t.Fatalf("FreshPresence = %+v, %v", fresh, err)
		}
		if all, _ := s.FreshPresence(ctx, t0.Add(-time.Hour)); len(all) != 2 {
			t.Fatalf("FreshPresence since an hour = %+v", all)
		}

		// Leadership: one holder at a time on a shared store; the node
		// that runs alone on SQLite always leads.
		lease, ok, err := s.TryLead(ctx, "router")
		if err != nil || !ok {
			t.Fatalf("TryLead = %v, %v", ok, err)
		}
		if backend == "postgres" {
			if _, ok, err := s.TryLead(ctx, "router"); ok || err != nil {
				t.Fatalf("second TryLead while held = %v, %v", ok, err)
			}
		}
		lease.Release()
		again, ok, err := s.TryLead(ctx, "router")
		if err != nil || !ok {
			t.Fatalf("TryLead after release = %v, %v", ok, err)
		}
		select {
		case <-again.Lost():
			t.Fatal("a held lease reports lost")
		default:
		}
		again.Release()
	})
}

// tripCounter counts what a pgx connection sends to PostgreSQL: each
// batch and each lone statement is one round trip.
type tripCounter struct{ trips atomic.Int64 }

func (c *tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.trips.Add(1)
	return ctx
}
func (c *tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}
func (c *tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// A writer transaction on PostgreSQL sends its writes and COMMIT in one
// round trip (and BEGIN with them when it read nothing first): on a busy
// machine each trip is a wake-up of both processes.
func TestPostgresCommitRidesWithTheWrites(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(sqltest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = PostgresSchema
	counter := &tripCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+PostgresSchema); err != nil {
		t.Fatal(err)
	}
	s, err := OpenPostgres(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	trips := func(what string, want int64, f func(tx ChatTx) error) {
		t.Helper()
		before := counter.trips.Load()
		mustTx(t, s, f)
		if got := counter.trips.Load() - before; got != want {
			t.Fatalf("%s: %d round trips, want %d", what, got, want)
		}
	}
	trips("writes only", 1, func(tx ChatTx) error {
		return tx.InsertConversation(ctx, &convState{ID: "c", SiteID: "s", VisitorID: "v", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1})
	})
	// BEGIN, the read, then the writes with COMMIT.
	trips("a read, then writes", 3, func(tx ChatTx) error {
		c, err := tx.Conversation(ctx, "c")
		if err != nil {
			return err
		}
		c.LastPreview = "hello"
		return tx.UpdateConversation(ctx, c, changeActivity)
	})
	if c, err := s.Conversation(ctx, "c"); err != nil || c.LastPreview != "hello" || c.Version != 2 {
		t.Fatalf("after commit: %+v, %v", c, err)
	}
	// A write refused in the last trip fails the commit and keeps nothing.
	err = inTx(t, s, func(tx ChatTx) error {
		c := &convState{ID: "c", SiteID: "s", VisitorID: "v", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1, Version: 1}
		c.LastPreview = "stale"
		return tx.UpdateConversation(ctx, c, changeActivity)
	})
	if !errors.Is(err, errConflict) {
		t.Fatalf("stale update: %v, want errConflict", err)
	}
	if c, err := s.Conversation(ctx, "c"); err != nil || c.LastPreview != "hello" {
		t.Fatalf("after the refused commit: %+v, %v", c, err)
	}
}

// Each kind of conversation update stores the columns it may change, and
// the lists read the rows the partial indexes hold: resolved newest first
// (page by page), open and pending by status, retention oldest first.
func TestConversationUpdatesAndStatusLists(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openTestStore(t, backend)
		conv := func(id, site string) *convState {
			return &convState{ID: id, SiteID: site, VisitorID: "v-" + id, Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1}
		}
		convs := map[string]*convState{"a": conv("a", "s1"), "b": conv("b", "s1"), "c": conv("c", "s1"), "d": conv("d", "s2")}
		mustTx(t, s, func(tx ChatTx) error {
			for _, id := range []string{"a", "b", "c", "d"} {
				if err := tx.InsertConversation(ctx, convs[id]); err != nil {
					return err
				}
			}
			return nil
		})
		update := func(id string, change convChange, edit func(c *convState)) {
			t.Helper()
			c := convs[id]
			edit(c)
			mustTx(t, s, func(tx ChatTx) error { return tx.UpdateConversation(ctx, c, change) })
			got, err := s.Conversation(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if *got != *c {
				t.Fatalf("stored after a %d update:\n%+v\nwant\n%+v", change, *got, *c)
			}
		}
		update("a", changeActivity, func(c *convState) {
			c.LastSeq, c.LastRole, c.LastPreview, c.LastAt, c.VisitorReadSeq, c.AgentReadSeq = 1, "visitor", "hi", 5, 1, 1
			c.CSATRating, c.CSATComment, c.CSATAt, c.AwaySent, c.UpdatedAt = 4, "ok", 5, true, 5
		})
		update("b", changeRouting, func(c *convState) { c.Routing, c.TeamID, c.QueuedAt, c.UpdatedAt = RoutingBot, "t1", 6, 6 })
		update("c", changeAll, func(c *convState) {
			c.Status, c.Assignee, c.Routing, c.UpdatedAt = StatusPending, "ag", RoutingAssigned, 7
		})
		for _, r := range []struct {
			id string
			at int64
		}{{"a", 20}, {"b", 30}, {"d", 40}} {
			update(r.id, changeAll, func(c *convState) { c.Status, c.ResolvedAt, c.UpdatedAt = StatusResolved, r.at, r.at })
		}
		// A resolved conversation's later change (a rating) moves it up.
		update("a", changeActivity, func(c *convState) { c.CSATRating, c.UpdatedAt = 5, 50 })

		ids := func(f ConversationFilter) []string {
			t.Helper()
			rows, err := s.ConversationRows(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rows {
				out = append(out, r.Conv.ID)
			}
			return out
		}
		for _, c := range []struct {
			what string
			f    ConversationFilter
			want []string
		}{
			{"resolved", ConversationFilter{Status: StatusResolved, Limit: 10}, []string{"a", "d", "b"}},
			{"resolved, first page", ConversationFilter{Status: StatusResolved, Limit: 2}, []string{"a", "d"}},
			{"resolved, next page", ConversationFilter{Status: StatusResolved, Before: time.UnixMilli(40), Limit: 2}, []string{"b"}},
			{"resolved on s1", ConversationFilter{Status: StatusResolved, SiteID: "s1", Limit: 10}, []string{"a", "b"}},
			{"resolved on a staff member's sites", ConversationFilter{Status: StatusResolved, Sites: []string{"s2"}, Limit: 10}, []string{"d"}},
			{"open", ConversationFilter{Limit: 10}, nil},
			{"pending", ConversationFilter{Status: StatusPending, Limit: 10}, []string{"c"}},
			{"all", ConversationFilter{Status: "all", Limit: 10}, []string{"a", "d", "b", "c"}},
		} {
			if got := ids(c.f); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.what, got, c.want)
			}
		}
		mustTx(t, s, func(tx ChatTx) error {
			exp, err := tx.ExpiredConversations(ctx, "s1", time.UnixMilli(60), 10)
			if err != nil || len(exp) != 2 || exp[0].ID != "b" || exp[1].ID != "a" {
				t.Errorf("expired on s1 = %+v, %v; want b then a", exp, err)
			}
			return nil
		})
	})
}

// On PostgreSQL a message's update of an open conversation changes no
// indexed column, so the row is updated in place with no new index entry
// (a HOT update: 0.020–0.029 ms against 0.058–0.074 ms, docs/benchmarks.md);
// a resolved conversation's update moves it in the resolved lists and is
// not. pg_stat_xact_user_tables counts the updates of the backend not yet
// reported, so the test reads it before and after each update.
func TestPostgresMessageUpdateIsInPlace(t *testing.T) {
	ctx := context.Background()
	pool := sqltest.Postgres(t, PostgresSchema, 4)
	s, err := OpenPostgres(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	open := &convState{ID: "open", SiteID: "s1", VisitorID: "v1", Channel: "widget", Status: StatusOpen, Routing: RoutingAssigned, Assignee: "a1", CreatedAt: 1, UpdatedAt: 1}
	done := &convState{ID: "done", SiteID: "s1", VisitorID: "v2", Channel: "widget", Status: StatusResolved, Routing: RoutingAssigned, Assignee: "a1", CreatedAt: 1, UpdatedAt: 1, ResolvedAt: 1}
	mustTx(t, s, func(tx ChatTx) error {
		if err := tx.InsertConversation(ctx, open); err != nil {
			return err
		}
		return tx.InsertConversation(ctx, done)
	})
	updates := func(c *convState, edit func(c *convState)) (all, inPlace int64) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		counts := func() (all, hot int64) {
			t.Helper()
			if err := tx.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'conversations'`).Scan(&all, &hot); err != nil {
				t.Fatal(err)
			}
			return all, hot
		}
		all0, hot0 := counts()
		edit(c)
		if tag, err := tx.Exec(ctx, pgConversationUpdate, pgConversationUpdateArgs(c)...); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("update %s: %v, %v", c.ID, tag, err)
		}
		all1, hot1 := counts()
		return all1 - all0, hot1 - hot0
	}
	if all, hot := updates(open, func(c *convState) {
		c.LastSeq, c.LastRole, c.LastPreview, c.LastAt, c.UpdatedAt, c.AgentReadSeq = 1, "visitor", "hi", 2, 2, 1
	}); all != 1 || hot != 1 {
		t.Errorf("an open conversation's message: %d updates, %d in place; want 1 in place", all, hot)
	}
	if all, hot := updates(done, func(c *convState) { c.CSATRating, c.UpdatedAt = 5, 3 }); all != 1 || hot != 0 {
		t.Errorf("a resolved conversation's rating: %d updates, %d in place; want 1, not in place (it moves in the resolved lists)", all, hot)
	}
}

// `parley migrate` gives resolved conversations the list_at PostgreSQL
// orders them by (SQLite has no such column): copied, they keep their
// place in the resolved list, and retention finds only the old ones.
func TestCopyFromSQLiteKeepsResolvedOrder(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t, "chat")
	src, err := OpenSQLite(ctx, db, SQLiteOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mustTx(t, src, func(tx ChatTx) error {
		for _, c := range []*convState{
			{ID: "open", SiteID: "s1", VisitorID: "v1", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 40},
			{ID: "older", SiteID: "s1", VisitorID: "v2", Channel: "widget", Status: StatusResolved, Routing: RoutingAssigned, CreatedAt: 1, UpdatedAt: 20, ResolvedAt: 20},
			{ID: "newer", SiteID: "s1", VisitorID: "v3", Channel: "widget", Status: StatusResolved, Routing: RoutingAssigned, CreatedAt: 1, UpdatedAt: 30, ResolvedAt: 30},
		} {
			if err := tx.InsertConversation(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	pool := sqltest.Postgres(t, PostgresSchema, 4)
	dst, err := OpenPostgres(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	sqltest.CopyToPostgres(t, db, pool, PostgresSchema, CopyFromSQLite(), "conversations", 3)
	rows, err := dst.ConversationRows(ctx, ConversationFilter{Status: StatusResolved, Limit: 10})
	if err != nil || len(rows) != 2 || rows[0].Conv.ID != "newer" || rows[1].Conv.ID != "older" {
		t.Fatalf("resolved after the copy: %+v, %v; want newer, older", rows, err)
	}
	mustTx(t, dst, func(tx ChatTx) error {
		exp, err := tx.ExpiredConversations(ctx, "s1", time.UnixMilli(25), 10)
		if err != nil || len(exp) != 1 || exp[0].ID != "older" {
			t.Errorf("expired before 25 ms after the copy: %+v, %v; want older alone", exp, err)
		}
		return nil
	})
}
