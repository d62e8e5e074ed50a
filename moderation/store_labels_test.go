package moderation

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

func storeLabel(item, site, label, decision string, cats, sources []string, at time.Time) DecisionLabel {
	return DecisionLabel{ItemID: item, SiteID: site, Text: "text of " + item, Label: label, Decision: decision, Action: ActionFlag,
		Categories: cats, Sources: sources, DecidedBy: "mod", DecidedAt: at}
}

// TestStoreLabelsSourcesAndPolicyLock is the conformance suite of what
// item 4 of issue 12 added to the Store: an item keeps its verdict's
// sources, labels are kept (one per item, the last decision wins), listed
// oldest first with a cursor and counted per site, category and source,
// and LockPolicy reads a site's policy (ErrNotFound before one is saved).
func TestStoreLabelsSourcesAndPolicyLock(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		s := openStore(t, backend)
		ctx := context.Background()
		it := storeItem("i1", "site-1", 3, []string{CatAbuse, CatProfanity}, storeT0)
		it.Sources = []ingest.VerdictSource{{Category: CatAbuse, Source: "model:parley-lr@2", Decided: true}, {Category: CatProfanity, Source: SourceRules}}
		bare := storeItem("i2", "site-1", 1, []string{CatProfanity}, storeT0)
		update(t, s, func(ctx context.Context, tx Tx) error {
			if _, err := tx.AddItem(ctx, it); err != nil {
				return err
			}
			_, err := tx.AddItem(ctx, bare)
			return err
		})
		got, err := s.Item(ctx, "i1")
		if err != nil || !slices.Equal(got.Sources, it.Sources) {
			t.Fatalf("item sources %+v, %v", got.Sources, err)
		}
		if got, err := s.Item(ctx, "i2"); err != nil || got.Sources != nil {
			t.Fatalf("item without sources %+v, %v", got.Sources, err)
		}

		t1, t2, t3 := storeT0.Add(time.Minute), storeT0.Add(2*time.Minute), storeT0.Add(3*time.Minute)
		update(t, s, func(ctx context.Context, tx Tx) error {
			for _, l := range []DecisionLabel{
				storeLabel("i1", "site-1", CatProfanity, "approve", []string{CatAbuse, CatProfanity}, []string{"model:parley-lr@2"}, t1),
				storeLabel("i1", "site-1", CatAbuse, "remove", []string{CatAbuse, CatProfanity}, []string{"model:parley-lr@2"}, t2), // replaces
				storeLabel("i2", "site-1", LabelClean, "approve", []string{CatProfanity}, []string{SourceRules}, t2),
				storeLabel("i3", "site-2", CatSpam, "ban", []string{CatSpam}, []string{SourceRules, "classifier:x"}, t3),
			} {
				if err := tx.AddLabel(ctx, l); err != nil {
					return err
				}
			}
			return nil
		})
		all, err := s.Labels(ctx, LabelFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		ids := func(ls []DecisionLabel) []string {
			var out []string
			for _, l := range ls {
				out = append(out, l.ItemID)
			}
			return out
		}
		if !slices.Equal(ids(all), []string{"i1", "i2", "i3"}) {
			t.Fatalf("labels %v", ids(all))
		}
		if l := all[0]; l.Label != CatAbuse || l.Decision != "remove" || !l.DecidedAt.Equal(t2) || l.Text != "text of i1" ||
			!slices.Equal(l.Categories, []string{CatAbuse, CatProfanity}) || !slices.Equal(l.Sources, []string{"model:parley-lr@2"}) {
			t.Fatalf("replaced label %+v", l)
		}
		for _, c := range []struct {
			f    LabelFilter
			want []string
		}{
			{LabelFilter{SiteID: "site-1", Limit: 10}, []string{"i1", "i2"}},
			{LabelFilter{Since: t3, Limit: 10}, []string{"i3"}},
			{LabelFilter{Until: t3, Limit: 10}, []string{"i1", "i2"}},
			{LabelFilter{AfterAt: t2, AfterID: "i1", Limit: 10}, []string{"i2", "i3"}},
			{LabelFilter{Limit: 1}, []string{"i1"}},
			{LabelFilter{Sites: []string{"site-2"}, Limit: 10}, []string{"i3"}},
			{LabelFilter{Sites: []string{}, Limit: 10}, nil},
		} {
			got, err := s.Labels(ctx, c.f)
			if err != nil || !slices.Equal(ids(got), c.want) {
				t.Errorf("%+v: %v, %v; want %v", c.f, ids(got), err, c.want)
			}
		}

		counts, err := s.LabelCounts(ctx, LabelCountFilter{Since: storeT0})
		if err != nil {
			t.Fatal(err)
		}
		want := []LabelCount{
			{SiteID: "site-1", Kind: CountAll, Key: "", Approved: 1, Removed: 1},
			{SiteID: "site-1", Kind: CountCategory, Key: CatAbuse, Approved: 0, Removed: 1},
			{SiteID: "site-1", Kind: CountCategory, Key: CatProfanity, Approved: 1, Removed: 1},
			{SiteID: "site-1", Kind: CountSource, Key: "model:parley-lr@2", Approved: 0, Removed: 1},
			{SiteID: "site-1", Kind: CountSource, Key: SourceRules, Approved: 1, Removed: 0},
			{SiteID: "site-2", Kind: CountAll, Key: "", Approved: 0, Removed: 1},
			{SiteID: "site-2", Kind: CountCategory, Key: CatSpam, Approved: 0, Removed: 1},
			{SiteID: "site-2", Kind: CountSource, Key: "classifier:x", Approved: 0, Removed: 1},
			{SiteID: "site-2", Kind: CountSource, Key: SourceRules, Approved: 0, Removed: 1},
		}
		if !slices.Equal(counts, want) {
			t.Fatalf("counts\n got %+v\nwant %+v", counts, want)
		}
		if counts, err := s.LabelCounts(ctx, LabelCountFilter{SiteID: "site-2", Since: t3.Add(time.Millisecond)}); err != nil || len(counts) != 0 {
			t.Fatalf("counts after the last label: %+v, %v", counts, err)
		}
		if counts, err := s.LabelCounts(ctx, LabelCountFilter{Sites: []string{"site-2"}, Since: storeT0}); err != nil || !slices.Equal(counts, want[5:]) {
			t.Fatalf("counts of site-2: %+v, %v", counts, err)
		}
		if counts, err := s.LabelCounts(ctx, LabelCountFilter{Sites: []string{}, Since: storeT0}); err != nil || len(counts) != 0 {
			t.Fatalf("counts of no site: %+v, %v", counts, err)
		}

		update(t, s, func(ctx context.Context, tx Tx) error {
			if _, err := tx.LockPolicy(ctx, "site-1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("unsaved policy: %v", err)
			}
			return tx.PutPolicy(ctx, "site-1", StoredPolicy{Doc: []byte(`{"allow":["x"]}`), UpdatedAt: storeT0, UpdatedBy: "u"})
		})
		update(t, s, func(ctx context.Context, tx Tx) error {
			p, err := tx.LockPolicy(ctx, "site-1")
			if err != nil || string(p.Doc) != `{"allow":["x"]}` || p.UpdatedBy != "u" || !p.UpdatedAt.Equal(storeT0) {
				t.Errorf("locked policy %+v, %v", p, err)
			}
			return nil
		})
	})
}

// TestCopyFromSQLiteMovesLabelsAndSources: `parley migrate` carries an
// item's sources and the labels into PostgreSQL unchanged.
func TestCopyFromSQLiteMovesLabelsAndSources(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "moderation.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src, err := OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	it := storeItem("i1", "site-1", 3, []string{CatAbuse}, storeT0)
	it.Sources = []ingest.VerdictSource{{Category: CatAbuse, Source: SourceRules, Decided: true}}
	label := storeLabel("i1", "site-1", CatAbuse, "remove", []string{CatAbuse}, []string{SourceRules}, storeT0.Add(time.Minute))
	update(t, src, func(ctx context.Context, tx Tx) error {
		if _, err := tx.AddItem(ctx, it); err != nil {
			return err
		}
		return tx.AddLabel(ctx, label)
	})
	pool, err := sqlstore.OpenPostgres(ctx, sqltest.PostgresURL(t), sqlstore.PostgresOptions{Schema: PostgresSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	dst, err := OpenPostgres(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	sqltest.CopyToPostgres(t, db, pool, PostgresSchema, CopyFromSQLite(), "mod_labels", 1)
	got, err := dst.Item(ctx, "i1")
	if err != nil || !slices.Equal(got.Sources, it.Sources) {
		t.Fatalf("copied item %+v, %v", got, err)
	}
	labels, err := dst.Labels(ctx, LabelFilter{Limit: 10})
	if err != nil || len(labels) != 1 || labels[0].Label != CatAbuse || !labels[0].DecidedAt.Equal(label.DecidedAt) ||
		!slices.Equal(labels[0].Sources, label.Sources) || !slices.Equal(labels[0].Categories, label.Categories) {
		t.Fatalf("copied labels %+v, %v", labels, err)
	}
}
