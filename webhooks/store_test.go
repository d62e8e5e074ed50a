package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// openStore opens a fresh store of the given backend for t.
func openStore(t testing.TB, backend string) Store {
	t.Helper()
	return sqltest.Store(t, backend, "webhooks", PostgresSchema, 8, OpenSQLite, OpenPostgres)
}

func delivery(endpoint, event, lane string, at time.Time) Delivery {
	return Delivery{ID: "d-" + endpoint + "-" + event, EndpointID: endpoint, EventID: event, EventType: "message.sent", Lane: lane,
		Body: []byte(`{"id":"` + event + `"}`), NextAt: at, CreatedAt: at}
}

func ids(ds []Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.EventID
	}
	slices.Sort(out)
	return out
}

// TestStoreConformance runs every Store method on each backend.
func TestStoreConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		ep := Endpoint{ID: "e1", SiteID: "s1", URL: "https://crm.example/hook", Events: []string{"message.sent"}, Description: "CRM",
			Enabled: true, CreatedBy: "u1", CreatedAt: t0, UpdatedAt: t0, Secret: "whsec_1"}
		if err := s.InsertEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertEndpoint(ctx, Endpoint{ID: "e2", SiteID: "s2", URL: "https://x.example", Events: []string{"*"}, Enabled: true, CreatedAt: t0.Add(time.Second), UpdatedAt: t0, Secret: "whsec_2"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Endpoint(ctx, "e1")
		if err != nil || got.URL != ep.URL || !slices.Equal(got.Events, ep.Events) || !got.Enabled || got.Secret != "whsec_1" || !got.CreatedAt.Equal(t0) {
			t.Fatalf("Endpoint = %+v %v", got, err)
		}
		if list, err := s.Endpoints(ctx, "s2"); err != nil || len(list) != 1 || list[0].ID != "e2" {
			t.Fatalf("Endpoints(s2) = %+v %v", list, err)
		}
		if list, err := s.Endpoints(ctx, ""); err != nil || len(list) != 2 || list[0].ID != "e1" {
			t.Fatalf("Endpoints() = %+v %v", list, err)
		}
		ep.URL, ep.Events, ep.Enabled, ep.UpdatedAt = "https://crm.example/v2", []string{"*"}, false, t0.Add(time.Hour)
		if err := s.UpdateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := s.SetEndpointSecret(ctx, "e1", "whsec_new", t0); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Endpoint(ctx, "e1")
		if got.URL != "https://crm.example/v2" || got.Enabled || got.Secret != "whsec_new" || !slices.Equal(got.Events, []string{"*"}) {
			t.Fatalf("after update: %+v", got)
		}
		for _, err := range []error{s.UpdateEndpoint(ctx, Endpoint{ID: "nope"}), s.SetEndpointSecret(ctx, "nope", "x", t0), s.DeleteEndpoint(ctx, "nope")} {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing endpoint: %v", err)
			}
		}
		if _, err := s.Endpoint(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Endpoint(nope) = %v", err)
		}

		// Deliveries: stored once per endpoint and event, claimed one per lane in order.
		batch := []Delivery{delivery("e1", "a1", "conv-a", t0), delivery("e1", "b1", "conv-b", t0), delivery("e1", "a2", "conv-a", t0), delivery("e2", "a1", "conv-a", t0)}
		if n, err := s.EnqueueDeliveries(ctx, batch); err != nil || n != 4 {
			t.Fatalf("EnqueueDeliveries = %d, %v", n, err)
		}
		if n, err := s.EnqueueDeliveries(ctx, batch[:2]); err != nil || n != 0 {
			t.Fatalf("enqueue again = %d, %v; want 0", n, err)
		}
		now := t0.Add(time.Minute)
		claimed, err := s.ClaimDue(ctx, now, time.Minute, 10)
		if err != nil || !slices.Equal(ids(claimed), []string{"a1", "a1", "b1"}) {
			t.Fatalf("first claim = %v %v; want the head of each lane", ids(claimed), err)
		}
		if again, err := s.ClaimDue(ctx, now, time.Minute, 10); err != nil || len(again) != 0 {
			t.Fatalf("leased deliveries claimed again: %v %v", ids(again), err)
		}
		var a1 Delivery
		for _, d := range claimed {
			if d.EndpointID == "e1" && d.EventID == "a1" {
				a1 = d
			}
		}
		if string(a1.Body) != `{"id":"a1"}` || a1.Lane != "conv-a" || a1.Status != StatusPending {
			t.Fatalf("claimed %+v", a1)
		}
		// A failed head holds its lane until it is retried.
		if err := s.RecordAttempt(ctx, a1.ID, Attempt{At: now, Code: 503, Error: "HTTP 503", Status: StatusPending, Next: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		// Leases run out: the other lanes' heads come back, a2 stays behind a1.
		c, err := s.ClaimDue(ctx, now.Add(2*time.Minute), time.Minute, 10)
		if err != nil || !slices.Equal(ids(c), []string{"a1", "b1"}) {
			t.Fatalf("after the leases ran out: %v %v", ids(c), err)
		}
		for _, d := range c {
			if d.EventID == "a1" && d.EndpointID == "e1" {
				t.Fatal("a failed head was claimed before its retry time")
			}
			if err := s.RecordAttempt(ctx, d.ID, Attempt{At: now.Add(2 * time.Minute), Code: 204, Status: StatusDelivered}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordAttempt(ctx, a1.ID, Attempt{At: now.Add(time.Hour), Code: 200, Status: StatusDelivered}); err != nil {
			t.Fatal(err)
		}
		c, err = s.ClaimDue(ctx, now.Add(2*time.Hour), time.Minute, 10)
		if err != nil || !slices.Equal(ids(c), []string{"a2"}) {
			t.Fatalf("after the head was delivered: %v %v", ids(c), err)
		}
		if err := s.RecordAttempt(ctx, c[0].ID, Attempt{At: now.Add(2 * time.Hour), Code: 500, Error: "boom", Status: StatusDead}); err != nil {
			t.Fatal(err)
		}
		dead, err := s.Deliveries(ctx, "e1", StatusDead, 10)
		if err != nil || len(dead) != 1 || dead[0].EventID != "a2" || dead[0].LastError != "boom" || dead[0].LastStatus != 500 || dead[0].Attempts != 1 || dead[0].DoneAt.IsZero() {
			t.Fatalf("dead = %+v %v", dead, err)
		}
		counts, err := s.Counts(ctx, "e1")
		if err != nil || counts[StatusDelivered] != 2 || counts[StatusDead] != 1 || counts[StatusPending] != 0 {
			t.Fatalf("Counts = %v %v", counts, err)
		}
		if all, _ := s.Deliveries(ctx, "e1", "", 10); len(all) != 3 || all[2].EventID != "a1" {
			t.Fatalf("Deliveries newest first: %v", ids(all))
		}
		re, err := s.Redeliver(ctx, dead[0].ID, now.Add(3*time.Hour))
		if err != nil || re.Status != StatusPending || re.Attempts != 0 || !re.CreatedAt.Equal(now.Add(3*time.Hour)) {
			t.Fatalf("Redeliver = %+v %v", re, err)
		}
		if _, err := s.Redeliver(ctx, dead[0].ID, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("redeliver a pending delivery: %v", err)
		}
		if c, _ := s.ClaimDue(ctx, now.Add(3*time.Hour), time.Minute, 10); len(c) != 1 || c[0].EventID != "a2" {
			t.Fatalf("redelivered is due: %v", ids(c))
		}
		if n, err := s.PurgeDone(ctx, now.Add(24*time.Hour), now); err != nil || n != 3 {
			t.Fatalf("PurgeDone = %d, %v", n, err)
		}
		// Deleting an endpoint takes its deliveries.
		if err := s.DeleteEndpoint(ctx, "e2"); err != nil {
			t.Fatal(err)
		}
		if left, _ := s.Deliveries(ctx, "e2", "", 10); len(left) != 0 {
			t.Fatalf("deliveries of a deleted endpoint: %v", ids(left))
		}
	})
}

// TestConcurrentClaimsNeverShareALane: dispatchers of several nodes claim
// at once; no delivery is claimed twice and a lane never has two
// deliveries out at once.
func TestConcurrentClaimsNeverShareALane(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		t0 := time.Now().Add(-time.Minute)
		if err := s.InsertEndpoint(ctx, Endpoint{ID: "e", SiteID: "s", URL: "https://x.example", Events: []string{"*"}, Enabled: true, CreatedAt: t0, UpdatedAt: t0, Secret: "k"}); err != nil {
			t.Fatal(err)
		}
		var ds []Delivery
		for i := range 200 {
			ds = append(ds, delivery("e", fmt.Sprintf("ev%03d", i), fmt.Sprintf("lane%d", i%10), t0))
		}
		if _, err := s.EnqueueDeliveries(ctx, ds); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string]bool{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100 {
					c, err := s.ClaimDue(ctx, time.Now(), time.Minute, 5)
					if err != nil {
						t.Errorf("worker %d: %v", w, err)
						return
					}
					mu.Lock()
					for _, d := range c {
						if seen[d.ID] {
							t.Errorf("%s claimed twice", d.ID)
						}
						seen[d.ID] = true
					}
					mu.Unlock()
					if len(c) == 0 {
						return
					}
				}
			}()
		}
		wg.Wait()
		if len(seen) != 10 {
			t.Fatalf("%d deliveries out at once, want one per lane (10)", len(seen))
		}
	})
}
