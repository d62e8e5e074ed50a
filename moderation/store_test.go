package moderation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// storeOpener opens handles on one fresh database of a backend. Each call
// is a new handle on the same data, as a restarted process or another
// node would open it.
func storeOpener(t testing.TB, backend string) func() Store {
	t.Helper()
	ctx := context.Background()
	switch backend {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "moderation.db")
		return func() Store {
			t.Helper()
			db, err := sqlstore.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			s, err := OpenSQLite(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	case "postgres":
		url := sqltest.PostgresURL(t)
		return func() Store {
			t.Helper()
			pool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: PostgresSchema, MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			s, err := OpenPostgres(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}

// openStore opens a fresh store of the backend.
func openStore(t testing.TB, backend string) Store { return storeOpener(t, backend)() }

// pendingEvents returns the outbox's unsent events in order without
// marking them sent: the claim acknowledges none.
func pendingEvents(t testing.TB, s Store) []ingest.Event {
	t.Helper()
	var out []ingest.Event
	_, err := s.ClaimOutbox(context.Background(), 100_000, func(_ context.Context, recs []ingest.OutboxRecord) ([]int64, error) {
		for _, r := range recs {
			e, err := ingest.Decode(r.Value)
			if err != nil {
				return nil, fmt.Errorf("outbox record %d: %w", r.Seq, err)
			}
			if r.Key != e.ConversationID || r.Topic != ingest.TopicFor(e.Type) || r.EventID != e.ID || r.Type != e.Type {
				return nil, fmt.Errorf("outbox record %d does not match its event: %+v", r.Seq, r)
			}
			out = append(out, e)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

// eventsOf filters events by type.
func eventsOf(events []ingest.Event, typ ingest.Type) []ingest.Event {
	var out []ingest.Event
	for _, e := range events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func update(t testing.TB, s Store, f func(ctx context.Context, tx Tx) error) {
	t.Helper()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx Tx) error { return f(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

var storeT0 = time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)

func storeItem(id, site string, severity int, cats []string, created time.Time) Item {
	return Item{
		ID: id, MessageEventID: "ev-" + id, SiteID: site, ConversationID: "conv-" + id, MessageID: "m-" + id,
		MessageSeq: 7, VisitorID: "v-" + id, ActorRole: "visitor", Text: "text of " + id, Action: ActionFlag,
		Categories: cats, Spans: []ingest.Span{{Start: 0, End: 4, Category: cats[0], Rule: "en:" + cats[0]}},
		Severity: severity, Status: StatusOpen, MessageAt: created.Add(-time.Second), CreatedAt: created,
	}
}

func TestStorePoliciesAndBans(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Policy(ctx, "site-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing policy: %v", err)
		}
		doc := []byte(`{"actions":{"abuse":"flag"},"block":{"custom":["a\u0000b"]}}`)
		update(t, s, func(ctx context.Context, tx Tx) error {
			return tx.PutPolicy(ctx, "site-1", StoredPolicy{Doc: []byte(`{"old":true}`), UpdatedAt: storeT0, UpdatedBy: "u1"})
		})
		update(t, s, func(ctx context.Context, tx Tx) error {
			return tx.PutPolicy(ctx, "site-1", StoredPolicy{Doc: doc, UpdatedAt: storeT0.Add(time.Minute), UpdatedBy: "u2"})
		})
		p, err := s.Policy(ctx, "site-1")
		if err != nil || string(p.Doc) != string(doc) || p.UpdatedBy != "u2" || !p.UpdatedAt.Equal(storeT0.Add(time.Minute)) {
			t.Fatalf("Policy = %+v %q, %v", p, p.Doc, err)
		}
		if _, err := s.Policy(ctx, "site-2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("policy leaked to another site: %v", err)
		}
		// a site id that is not UTF-8 (a percent-encoded path) is stored
		// and found again
		update(t, s, func(ctx context.Context, tx Tx) error {
			return tx.PutPolicy(ctx, "bad\xffsite", StoredPolicy{Doc: doc, UpdatedAt: storeT0, UpdatedBy: "u\x00"})
		})
		if p, err := s.Policy(ctx, "bad\xffsite"); err != nil || string(p.Doc) != string(doc) {
			t.Fatalf("policy of a non-UTF-8 site id = %+v, %v", p, err)
		}

		if _, err := s.Ban(ctx, "site-1", "v1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing ban: %v", err)
		}
		bans := []Ban{
			{SiteID: "site-1", VisitorID: "v1", Until: storeT0.Add(time.Hour), Reason: "abuse", BannedBy: "u1", ItemID: "i1", CreatedAt: storeT0},
			{SiteID: "site-1", VisitorID: "v2", Until: storeT0.Add(-time.Hour), Reason: "old", BannedBy: "u1", CreatedAt: storeT0.Add(-2 * time.Hour)},
			{SiteID: "site-2", VisitorID: "v1", Until: storeT0.Add(48 * time.Hour), Reason: "spam", BannedBy: "u2", ItemID: "i3", CreatedAt: storeT0.Add(time.Minute)},
		}
		update(t, s, func(ctx context.Context, tx Tx) error {
			for _, b := range bans {
				if err := tx.PutBan(ctx, b); err != nil {
					return err
				}
			}
			return nil
		})
		longer := bans[0]
		longer.Until, longer.Reason = storeT0.Add(24*time.Hour), "abuse again"
		update(t, s, func(ctx context.Context, tx Tx) error { return tx.PutBan(ctx, longer) })
		if b, err := s.Ban(ctx, "site-1", "v1"); err != nil || b != longer {
			t.Fatalf("Ban = %+v, %v; want %+v", b, err, longer)
		}
		all, err := s.Bans(ctx, BanFilter{Limit: 10})
		if err != nil || len(all) != 3 || all[0] != bans[2] || all[1] != longer || all[2] != bans[1] {
			t.Fatalf("Bans (newest first) = %+v, %v", all, err)
		}
		active, err := s.Bans(ctx, BanFilter{SiteID: "site-1", After: storeT0, Limit: 10})
		if err != nil || len(active) != 1 || active[0].VisitorID != "v1" {
			t.Fatalf("active bans of site-1 = %+v, %v", active, err)
		}
		if first, err := s.Bans(ctx, BanFilter{Limit: 1}); err != nil || len(first) != 1 || first[0] != bans[2] {
			t.Fatalf("limited bans = %+v, %v", first, err)
		}
		var lifted Ban
		update(t, s, func(ctx context.Context, tx Tx) error {
			var err error
			lifted, err = tx.DeleteBan(ctx, "site-1", "v1")
			return err
		})
		if lifted != longer {
			t.Fatalf("DeleteBan returned %+v, want %+v", lifted, longer)
		}
		if _, err := s.Ban(ctx, "site-1", "v1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("lifted ban still there: %v", err)
		}
		err = s.Update(ctx, func(tx Tx) error { _, err := tx.DeleteBan(ctx, "site-1", "v1"); return err })
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("lifting a missing ban: %v", err)
		}
	})
}

func TestStoreReviewQueue(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		items := []Item{
			storeItem("i1", "site-1", 1, []string{CatProfanity}, storeT0),
			storeItem("i2", "site-1", 4, []string{CatAbuse, CatThreat}, storeT0.Add(time.Second)),
			storeItem("i3", "site-2", 3, []string{CatAbuse}, storeT0.Add(2*time.Second)),
			storeItem("i4", "site-1", 3, []string{CatAbuse}, storeT0.Add(3*time.Second)),
		}
		items[0].Text = "nul \x00 inside"
		update(t, s, func(ctx context.Context, tx Tx) error {
			for _, it := range items {
				if ok, err := tx.AddItem(ctx, it); err != nil || !ok {
					return fmt.Errorf("AddItem %s = %v, %v", it.ID, ok, err)
				}
			}
			again := items[1]
			if ok, err := tx.AddItem(ctx, again); err != nil || ok {
				return fmt.Errorf("same item again = %v, %v", ok, err)
			}
			again.ID = "i2-other"
			if ok, err := tx.AddItem(ctx, again); err != nil || ok {
				return fmt.Errorf("same message event under another id = %v, %v", ok, err)
			}
			return nil
		})
		got, err := s.Item(ctx, "i2")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Categories, items[1].Categories) || !slices.Equal(got.Spans, items[1].Spans) || got.Text != items[1].Text ||
			!got.CreatedAt.Equal(items[1].CreatedAt) || !got.MessageAt.Equal(items[1].MessageAt) || got.MessageSeq != 7 ||
			got.Status != StatusOpen || got.ClaimUntil != nil || got.DecidedAt != nil || got.VisitorID != "v-i2" {
			t.Fatalf("Item = %+v", got)
		}
		if it, err := s.Item(ctx, "i1"); err != nil || (it.Text != items[0].Text && it.Text != "nul \uFFFD inside") {
			t.Fatalf("text with a NUL came back as %q, %v", it.Text, err)
		}
		if _, err := s.Item(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing item: %v", err)
		}
		if n, err := s.OpenItems(ctx); err != nil || n != 4 {
			t.Fatalf("OpenItems = %d, %v", n, err)
		}

		page, err := s.Items(ctx, ItemFilter{Status: StatusOpen, Limit: 10})
		if err != nil || page.Total != 4 || len(page.Items) != 4 {
			t.Fatalf("Items = %+v, %v", page, err)
		}
		var order []string
		for _, it := range page.Items {
			order = append(order, it.ID)
		}
		if !slices.Equal(order, []string{"i2", "i3", "i4", "i1"}) {
			t.Fatalf("order %v, want most severe first, then oldest", order)
		}
		if want := map[string]int{CatAbuse: 3, CatThreat: 1, CatProfanity: 1}; !maps.Equal(page.Counts, want) {
			t.Fatalf("counts %v, want %v", page.Counts, want)
		}
		page, err = s.Items(ctx, ItemFilter{Status: StatusOpen, SiteID: "site-1", Category: CatAbuse, Limit: 1, Offset: 1})
		if err != nil || page.Total != 2 || len(page.Items) != 1 || page.Items[0].ID != "i4" || page.Counts[CatAbuse] != 2 || page.Counts[CatProfanity] != 1 {
			t.Fatalf("filtered page = %+v, %v", page, err)
		}

		until := storeT0.Add(10 * time.Minute)
		update(t, s, func(ctx context.Context, tx Tx) error {
			it, err := tx.LockItem(ctx, "i3")
			if err != nil || it.ID != "i3" {
				return fmt.Errorf("LockItem = %+v, %v", it, err)
			}
			if err := tx.ClaimItem(ctx, "i3", "u1", until); err != nil {
				return err
			}
			// reads after a write see it, and still tell a missing row
			if it, err := tx.LockItem(ctx, "i3"); err != nil || it.ClaimedBy != "u1" {
				return fmt.Errorf("LockItem after ClaimItem = %+v, %v", it, err)
			}
			if err := tx.AddAudit(ctx, AuditEntry{At: storeT0, ActorID: "u1", Action: "claim", SiteID: "site-2"}); err != nil {
				return err
			}
			if _, err := tx.LockItem(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("locking a missing item: %v", err)
			}
			if _, err := tx.DeleteBan(ctx, "site-2", "nobody"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("lifting a missing ban after a write: %v", err)
			}
			return nil
		})
		if a, err := s.Audit(ctx, AuditFilter{SiteID: "site-2", Limit: 10}); err != nil || len(a) != 1 {
			t.Fatalf("audit written before a missing-row read = %+v, %v", a, err)
		}
		if it, _ := s.Item(ctx, "i3"); it.ClaimedBy != "u1" || it.ClaimUntil == nil || !it.ClaimUntil.Equal(until) {
			t.Fatalf("claimed item %+v", it)
		}
		update(t, s, func(ctx context.Context, tx Tx) error { return tx.ClaimItem(ctx, "i3", "", time.Time{}) })
		if it, _ := s.Item(ctx, "i3"); it.ClaimedBy != "" || it.ClaimUntil != nil {
			t.Fatalf("released item %+v", it)
		}
		update(t, s, func(ctx context.Context, tx Tx) error { return tx.ClaimItem(ctx, "i3", "u2", until) })
		decided := storeT0.Add(5 * time.Minute)
		update(t, s, func(ctx context.Context, tx Tx) error {
			return tx.DecideItem(ctx, "i3", ItemDecision{Status: StatusRemoved, By: "u2", Reason: "abusive", At: decided})
		})
		it, _ := s.Item(ctx, "i3")
		if it.Status != StatusRemoved || it.DecidedBy != "u2" || it.DecisionReason != "abusive" || it.DecidedAt == nil || !it.DecidedAt.Equal(decided) || it.ClaimedBy != "" || it.ClaimUntil != nil {
			t.Fatalf("decided item %+v", it)
		}
		if n, _ := s.OpenItems(ctx); n != 3 {
			t.Fatalf("OpenItems after a decision = %d", n)
		}
		page, err = s.Items(ctx, ItemFilter{Status: StatusRemoved, Limit: 10})
		if err != nil || page.Total != 1 || page.Items[0].ID != "i3" || !maps.Equal(page.Counts, map[string]int{CatAbuse: 1}) {
			t.Fatalf("removed items = %+v, %v", page, err)
		}
	})
}

// A failed transaction leaves nothing behind.
func TestStoreUpdateRollsBack(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		boom := errors.New("boom")
		err := s.Update(ctx, func(tx Tx) error {
			if _, err := tx.AddItem(ctx, storeItem("i1", "s", 2, []string{CatSpam}, storeT0)); err != nil {
				return err
			}
			if err := tx.AddAudit(ctx, AuditEntry{At: storeT0, ActorID: "u", Action: "x", SiteID: "s"}); err != nil {
				return err
			}
			if _, err := tx.MarkProcessed(ctx, []string{"ev-1"}, storeT0); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want f's error", err)
		}
		if _, err := s.Item(ctx, "i1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rolled-back item is there: %v", err)
		}
		if a, _ := s.Audit(ctx, AuditFilter{Limit: 10}); len(a) != 0 {
			t.Fatalf("rolled-back audit: %+v", a)
		}
		update(t, s, func(ctx context.Context, tx Tx) error {
			if fresh, err := tx.MarkProcessed(ctx, []string{"ev-1"}, storeT0); err != nil || !fresh["ev-1"] {
				return fmt.Errorf("event marked by a rolled-back transaction: %v %v", fresh, err)
			}
			return nil
		})
	})
}

func TestStoreAuditAndContext(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		entries := []AuditEntry{
			{At: storeT0, ActorID: "u1", ActorEmail: "a@x", Action: "ban", SiteID: "site-1", ItemID: "i1", VisitorID: "v1", Reason: "r1", Detail: "until x"},
			{At: storeT0.Add(time.Second), ActorID: "u2", ActorEmail: "b@x", Action: "approve", SiteID: "site-2", ItemID: "i2", Reason: "r2"},
			{At: storeT0.Add(2 * time.Second), ActorID: "u1", ActorEmail: "a@x", Action: "policy_update", SiteID: "site-1"},
			{At: storeT0.Add(3 * time.Second), ActorID: "u1", ActorEmail: "a@x", Action: "lift_ban", SiteID: "site-1", VisitorID: "v1", Reason: "appeal"},
		}
		update(t, s, func(ctx context.Context, tx Tx) error {
			for _, a := range entries {
				if err := tx.AddAudit(ctx, a); err != nil {
					return err
				}
			}
			return nil
		})
		all, err := s.Audit(ctx, AuditFilter{Limit: 10})
		if err != nil || len(all) != 4 || all[0].Action != "lift_ban" || all[3].Action != "ban" || all[0].ID <= all[1].ID {
			t.Fatalf("Audit = %+v, %v", all, err)
		}
		first := all[3]
		first.ID = 0
		if first != entries[0] {
			t.Fatalf("audit entry %+v, want %+v", first, entries[0])
		}
		site1, err := s.Audit(ctx, AuditFilter{SiteID: "site-1", Before: all[0].ID, Limit: 1})
		if err != nil || len(site1) != 1 || site1[0].Action != "policy_update" {
			t.Fatalf("site-1 page before the newest = %+v, %v", site1, err)
		}
		if byItem, err := s.Audit(ctx, AuditFilter{ItemID: "i2", Limit: 10}); err != nil || len(byItem) != 1 || byItem[0].ActorID != "u2" {
			t.Fatalf("audit of i2 = %+v, %v", byItem, err)
		}

		update(t, s, func(ctx context.Context, tx Tx) error {
			for seq := int64(1); seq <= 20; seq++ {
				m := ContextEntry{SiteID: "site-1", ConversationID: "c1", EventID: fmt.Sprintf("e%d", seq),
					ContextMessage: ContextMessage{Seq: seq, MessageID: fmt.Sprintf("m%d", seq), Role: "visitor", ActorID: "v1",
						Text: fmt.Sprintf("message %d", seq), At: storeT0.Add(time.Duration(seq) * time.Second)}}
				if seq%2 == 0 {
					m.Role, m.ActorID = "agent", "a1"
				}
				if err := tx.AddContext(ctx, m); err != nil {
					return err
				}
			}
			// the same event again changes nothing; another conversation is apart
			if err := tx.AddContext(ctx, ContextEntry{SiteID: "site-1", ConversationID: "c1", EventID: "e5", ContextMessage: ContextMessage{Seq: 5, Text: "dup"}}); err != nil {
				return err
			}
			return tx.AddContext(ctx, ContextEntry{SiteID: "site-1", ConversationID: "c2", EventID: "x1", ContextMessage: ContextMessage{Seq: 10, Text: "other"}})
		})
		conv, err := s.Context(ctx, "site-1", "c1", 10, 3, 2)
		if err != nil || len(conv) != 6 {
			t.Fatalf("Context = %+v, %v", conv, err)
		}
		for i, m := range conv {
			if m.Seq != int64(7+i) {
				t.Fatalf("context seqs %+v, want 7..12", conv)
			}
		}
		if m := conv[3]; m.MessageID != "m10" || m.Role != "agent" || m.ActorID != "a1" || m.Text != "message 10" || !m.At.Equal(storeT0.Add(10*time.Second)) {
			t.Fatalf("context message %+v", m)
		}
		if conv, err := s.Context(ctx, "site-1", "c1", 5, 10, 0); err != nil || len(conv) != 5 || conv[4].Text != "message 5" {
			t.Fatalf("context at the start = %+v, %v", conv, err)
		}
		if conv, err := s.Context(ctx, "site-2", "c1", 5, 10, 5); err != nil || len(conv) != 0 {
			t.Fatalf("context of another site = %+v, %v", conv, err)
		}
	})
}

func TestStoreWorkerRecordsAndPrune(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		mark := func(id string, at time.Time, fp string) FloodMark {
			return FloodMark{SiteID: "s", VisitorID: "v", EventID: id, Fingerprint: fp, At: at, Since: at.Add(-time.Minute)}
		}
		observe := func(tx Tx, marks ...FloodMark) []FloodCount {
			t.Helper()
			counts, err := tx.ObserveFloods(ctx, marks)
			if err != nil || len(counts) != len(marks) {
				t.Fatalf("ObserveFloods = %v, %v", counts, err)
			}
			return counts
		}
		update(t, s, func(ctx context.Context, tx Tx) error {
			// One call, one mark each: every call sees the marks before it.
			for _, c := range []struct {
				m    FloodMark
				want FloodCount
			}{
				{mark("e1", storeT0, "buynow"), FloodCount{0, 0}},
				{mark("e2", storeT0.Add(time.Second), "buynow"), FloodCount{1, 1}},
				{mark("e3", storeT0.Add(2*time.Second), ""), FloodCount{2, 0}},
			} {
				if got := observe(tx, c.m)[0]; got != c.want {
					return fmt.Errorf("ObserveFloods(%s) = %+v; want %+v", c.m.EventID, got, c.want)
				}
			}
			// One call for several: each counts the others up to its own
			// time, whatever their order in the call; a reprocessed event
			// is judged alike and not recorded twice.
			got := observe(tx, mark("e5", storeT0.Add(4*time.Second), "buynow"), mark("e4", storeT0.Add(3*time.Second), "hello"),
				mark("e2", storeT0.Add(time.Second), "buynow"))
			if want := []FloodCount{{4, 2}, {3, 0}, {1, 1}}; !slices.Equal(got, want) {
				return fmt.Errorf("ObserveFloods of three = %+v; want %+v", got, want)
			}
			// the window starts after Since; other visitors are apart
			windowed := mark("e6", storeT0.Add(5*time.Second), "buynow")
			windowed.Since = storeT0.Add(time.Second)
			other := mark("o1", storeT0.Add(5*time.Second), "buynow")
			other.VisitorID = "w"
			if got := observe(tx, windowed, other); !slices.Equal(got, []FloodCount{{3, 1}, {0, 0}}) {
				return fmt.Errorf("windowed and another visitor's flood = %+v", got)
			}
			if got, err := tx.ObserveFloods(ctx, nil); err != nil || len(got) != 0 {
				return fmt.Errorf("ObserveFloods of none = %v, %v", got, err)
			}
			if fresh, err := tx.MarkProcessed(ctx, []string{"ev-2", "ev-1", "ev-2"}, storeT0); err != nil || !maps.Equal(fresh, map[string]bool{"ev-1": true, "ev-2": true}) {
				return fmt.Errorf("MarkProcessed = %v, %v", fresh, err)
			}
			if fresh, err := tx.MarkProcessed(ctx, []string{"ev-3", "ev-1", "ev-\x00"}, storeT0); err != nil || !maps.Equal(fresh, map[string]bool{"ev-3": true, "ev-\x00": true}) {
				return fmt.Errorf("MarkProcessed again = %v, %v", fresh, err)
			}
			if fresh, err := tx.MarkProcessed(ctx, []string{"ev-\x00"}, storeT0); err != nil || len(fresh) != 0 {
				return fmt.Errorf("MarkProcessed of a marked id with a NUL = %v, %v", fresh, err)
			}
			return tx.AddContext(ctx, ContextEntry{SiteID: "s", ConversationID: "c", EventID: "e1", ContextMessage: ContextMessage{Seq: 1, Text: "old", At: storeT0}})
		})

		if err := s.Prune(ctx, PruneCutoffs{Flood: storeT0.Add(2 * time.Second), Processed: storeT0.Add(time.Second), Context: storeT0.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		update(t, s, func(ctx context.Context, tx Tx) error {
			late := mark("e7", storeT0.Add(6*time.Second), "")
			late.Since = storeT0.Add(-time.Hour)
			if got := observe(tx, late)[0]; got.Recent != 4 {
				return fmt.Errorf("flood after prune = %+v; want 4 (e1 and e2 pruned)", got)
			}
			if fresh, err := tx.MarkProcessed(ctx, []string{"ev-1"}, storeT0); err != nil || !fresh["ev-1"] {
				return fmt.Errorf("processed mark survived the prune: %v %v", fresh, err)
			}
			return nil
		})
		if conv, err := s.Context(ctx, "s", "c", 1, 5, 5); err != nil || len(conv) != 0 {
			t.Fatalf("context survived the prune: %+v %v", conv, err)
		}
	})
}

func TestStoreOutbox(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		if n, oldest, err := s.OutboxBacklog(ctx); err != nil || n != 0 || !oldest.IsZero() {
			t.Fatalf("empty backlog = %d %v %v", n, oldest, err)
		}
		var events []ingest.Event
		for i := range 5 {
			e, err := ingest.New(ingest.ModerationDecision, "site-1", fmt.Sprintf("conv-%d", i%2), ingest.Actor{Role: ingest.RoleModerator, ID: "u1"},
				storeT0.Add(time.Duration(i)*time.Second), ingest.ModerationDecisionPayload{ItemID: fmt.Sprintf("i%d", i), Decision: ingest.DecisionApprove})
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		}
		update(t, s, func(ctx context.Context, tx Tx) error {
			for i, e := range events {
				if err := tx.AddEvent(ctx, e, storeT0.Add(time.Duration(i)*time.Second)); err != nil {
					return err
				}
			}
			return tx.AddEvent(ctx, events[0], storeT0) // the same event again is ignored
		})
		if n, oldest, err := s.OutboxBacklog(ctx); err != nil || n != 5 || !oldest.Equal(storeT0) {
			t.Fatalf("backlog = %d %v %v", n, oldest, err)
		}
		pending := pendingEvents(t, s)
		if len(pending) != 5 {
			t.Fatalf("%d pending, want 5", len(pending))
		}
		for i, e := range pending {
			if e.ID != events[i].ID {
				t.Fatalf("outbox order %d: %s, want %s", i, e.ID, events[i].ID)
			}
		}
		// a partial failure: Kafka took the first and third
		failed := errors.New("kafka down")
		n, err := s.ClaimOutbox(ctx, 3, func(_ context.Context, recs []ingest.OutboxRecord) ([]int64, error) {
			if len(recs) != 3 || recs[0].EventID != events[0].ID || recs[0].Seq >= recs[1].Seq {
				return nil, fmt.Errorf("claimed %+v", recs)
			}
			return []int64{recs[0].Seq, recs[2].Seq}, failed
		})
		if n != 3 || !errors.Is(err, failed) {
			t.Fatalf("ClaimOutbox = %d, %v", n, err)
		}
		var left []string
		for _, e := range pendingEvents(t, s) {
			left = append(left, e.ID)
		}
		if !slices.Equal(left, []string{events[1].ID, events[3].ID, events[4].ID}) {
			t.Fatalf("unsent after a partial publish: %v", left)
		}
		if n, oldest, err := s.OutboxBacklog(ctx); err != nil || n != 3 || !oldest.Equal(storeT0.Add(time.Second)) {
			t.Fatalf("backlog after a partial publish = %d %v %v", n, oldest, err)
		}
		all := func(_ context.Context, recs []ingest.OutboxRecord) ([]int64, error) {
			var acked []int64
			for _, r := range recs {
				acked = append(acked, r.Seq)
			}
			return acked, nil
		}
		if n, err := s.ClaimOutbox(ctx, 10, all); n != 3 || err != nil {
			t.Fatalf("ClaimOutbox = %d, %v", n, err)
		}
		if n, err := s.ClaimOutbox(ctx, 10, all); n != 0 || err != nil {
			t.Fatalf("ClaimOutbox on an empty outbox = %d, %v", n, err)
		}
		// sent rows are kept to ignore a re-added event until purged
		update(t, s, func(ctx context.Context, tx Tx) error { return tx.AddEvent(ctx, events[2], storeT0) })
		if p := pendingEvents(t, s); len(p) != 0 {
			t.Fatalf("a sent event came back: %v", p)
		}
		if err := s.PurgeOutbox(ctx, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		update(t, s, func(ctx context.Context, tx Tx) error { return tx.AddEvent(ctx, events[2], storeT0) })
		if p := pendingEvents(t, s); len(p) != 0 {
			t.Fatalf("a recently sent event was purged: %v", p)
		}
		if err := s.PurgeOutbox(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		update(t, s, func(ctx context.Context, tx Tx) error { return tx.AddEvent(ctx, events[2], storeT0) })
		if p := pendingEvents(t, s); len(p) != 1 || p[0].ID != events[2].ID {
			t.Fatalf("after purging, the event id is new again: %v", p)
		}
	})
}

// A pool that searches another schema is refused at once, not on the
// first query.
func TestOpenPostgresNeedsTheModerationSchema(t *testing.T) {
	ctx := context.Background()
	pool, err := sqlstore.OpenPostgres(ctx, sqltest.PostgresURL(t), sqlstore.PostgresOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := OpenPostgres(ctx, pool); err == nil || !strings.Contains(err.Error(), `Schema: "moderation"`) {
		t.Fatalf("OpenPostgres on a pool searching public: %v", err)
	}
}

// Two nodes relaying one PostgreSQL outbox never publish at the same
// time, publish in order, and publish every event once. (An SQLite file
// has one process and one relay.)
func TestStoreOutboxClaimsAreExclusive(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		open := storeOpener(t, "postgres")
		nodes := []Store{open(), open()}
		const total = 200
		update(t, nodes[0], func(ctx context.Context, tx Tx) error {
			for i := range total {
				e, err := ingest.New(ingest.ModerationDecision, "s", fmt.Sprintf("c%d", i%7), ingest.Actor{Role: ingest.RoleModerator, ID: "u"},
					storeT0, ingest.ModerationDecisionPayload{ItemID: fmt.Sprint(i), Decision: ingest.DecisionReviewed})
				if err != nil {
					return err
				}
				if err := tx.AddEvent(ctx, e, storeT0); err != nil {
					return err
				}
			}
			return nil
		})
		var publishing, overlaps atomic.Int32
		var mu sync.Mutex
		published := map[string]int{}
		var lastSeq int64
		publish := func(_ context.Context, recs []ingest.OutboxRecord) ([]int64, error) {
			if publishing.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer publishing.Add(-1)
			time.Sleep(2 * time.Millisecond) // a Kafka round trip
			mu.Lock()
			defer mu.Unlock()
			var acked []int64
			for _, r := range recs {
				if r.Seq <= lastSeq {
					return nil, fmt.Errorf("seq %d published after %d", r.Seq, lastSeq)
				}
				lastSeq = r.Seq
				published[r.EventID]++
				acked = append(acked, r.Seq)
			}
			return acked, nil
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(nodes))
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					claimed, err := n.ClaimOutbox(ctx, 7, publish)
					if err != nil {
						errs <- err
						return
					}
					if claimed == 0 {
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if overlaps.Load() != 0 {
			t.Fatalf("%d publishes ran while another node's was running", overlaps.Load())
		}
		if len(published) != total {
			t.Fatalf("%d events published, want %d", len(published), total)
		}
		for id, n := range published {
			if n != 1 {
				t.Fatalf("event %s published %d times", id, n)
			}
		}
	})
}
