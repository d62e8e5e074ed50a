package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Every node gets what the others publish, in order per key, and never
// its own messages.
func TestLiveBusBroadcastsToOtherNodes(t *testing.T) {
	broker := startBroker(t, t.TempDir())
	defer broker.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := EnsureTopics(ctx, broker.Addrs(), DefaultTopics(3, time.Hour)); err != nil {
		t.Fatal(err)
	}
	type inbox struct {
		mu  sync.Mutex
		got []string
	}
	nodes := map[string]*LiveBus{}
	inboxes := map[string]*inbox{}
	var dones []<-chan struct{}
	for _, name := range []string{"a", "b", "c"} {
		bus, err := NewLiveBus(LiveBusConfig{Brokers: broker.Addrs(), Node: name})
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		in := &inbox{}
		done, err := bus.Subscribe(ctx, func(v []byte) { in.mu.Lock(); in.got = append(in.got, string(v)); in.mu.Unlock() })
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
		nodes[name], inboxes[name] = bus, in
	}
	for i := 0; i < 50; i++ {
		if err := nodes["a"].Publish(ctx, "conv-1", []byte(fmt.Sprint("a", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes["b"].Publish(ctx, "conv-2", []byte("b0")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b and c to get a's 50 messages", func() bool {
		for _, n := range []string{"b", "c"} {
			in := inboxes[n]
			in.mu.Lock()
			count := 0
			for _, m := range in.got {
				if m[0] == 'a' {
					count++
				}
			}
			in.mu.Unlock()
			if count < 50 {
				return false
			}
		}
		return true
	})
	waitFor(t, 10*time.Second, "a and c to get b's message", func() bool {
		for _, n := range []string{"a", "c"} {
			in := inboxes[n]
			in.mu.Lock()
			found := false
			for _, m := range in.got {
				found = found || m == "b0"
			}
			in.mu.Unlock()
			if !found {
				return false
			}
		}
		return true
	})
	for name, in := range inboxes {
		in.mu.Lock()
		next := 0
		for _, m := range in.got {
			if m[0] == name[0] {
				t.Errorf("node %s received its own message %q", name, m)
			}
			if m[0] == 'a' {
				if m != fmt.Sprint("a", next) {
					t.Errorf("node %s got %q, want a%d (order per key)", name, m, next)
				}
				next++
			}
		}
		in.mu.Unlock()
	}
	cancel()
	for _, d := range dones {
		select {
		case <-d:
		case <-time.After(10 * time.Second):
			t.Fatal("a subscription did not stop after its context ended")
		}
	}
}
