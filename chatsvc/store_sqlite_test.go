package chatsvc

import (
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// SQLite's own upkeep: while the service runs, the writer's connection
// leaves checkpoints to the background checkpointer, which copies committed pages into chat.db;
// when the service stops, SQLite's automatic checkpoints come back.
func TestCheckpointsRunBesideTheWriter(t *testing.T) {
	e := newEnv(t, "sqlite")
	sq := e.store.(*sqliteChat)
	autoCheckpoint := func() int {
		var n int
		if err := sq.db.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	poll(t, "the writer's automatic checkpoints off", 10*time.Second, func() bool { return autoCheckpoint() == 0 })

	tok, _ := e.visitorSession("")
	vis := e.visitorSocket(tok)
	for i := range 10 {
		vis.send(map[string]any{"type": "send", "ref": fmt.Sprint(i), "client_id": fmt.Sprintf("ck-%d", i), "text": "hello"})
		vis.expect("ack", byRef(fmt.Sprint(i)))
	}
	gauge := func(g interface{ Write(*dto.Metric) error }) float64 {
		var m dto.Metric
		if err := g.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	poll(t, "the WAL checkpointed in the background", 10*time.Second, func() bool {
		return gauge(sq.walBackfilled) > 0 && gauge(sq.walBackfilled) == gauge(sq.walPages)
	})

	e.shutdown()
	if n := autoCheckpoint(); n != walAutoCheckpoint {
		t.Fatalf("wal_autocheckpoint after stop = %d, want %d", n, walAutoCheckpoint)
	}
}
