package chatsvc

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestReadyReportsFailingWrites fills chat.db (max_page_count at its
// current size, as a full disk does): the store still answers a ping,
// but every message now fails with "database or disk is full" and Ready
// says so; once space is back and a write succeeds, chat is ready again.
func TestReadyReportsFailingWrites(t *testing.T) {
	ctx := context.Background()
	var db *sql.DB
	e := newEnv(t, "sqlite", func(c *Config) {
		db = sqltest.SQLite(t, "chat-full")
		s, err := OpenSQLite(ctx, db, SQLiteOptions{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		c.Store, c.Attachments = s, nil
	})
	poll(t, "ready", 10*time.Second, func() bool { return e.svc.Ready(ctx) == nil })
	tok, _ := e.visitorSession("")
	v := e.visitorSocket(tok)
	v.send(map[string]any{"type": "send", "client_id": "ok", "text": "before"})
	conv := v.expect("ack", byClient("ok")).str("conversation_id")

	var pages int64
	if err := db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 3900)
	failed := false
	for i := 0; i < 40 && !failed; i++ {
		id := fmt.Sprintf("full-%d", i)
		v.send(map[string]any{"type": "send", "ref": id, "client_id": id, "conversation_id": conv, "text": long})
		deadline := time.After(10 * time.Second)
	answer:
		for {
			select {
			case f := <-v.frames:
				if f.str("ref") != id {
					continue
				}
				failed = f.str("type") == "error"
				break answer
			case <-deadline:
				t.Fatalf("no answer to %s", id)
			}
		}
	}
	if !failed {
		t.Fatal("writes never failed on a full database")
	}
	if err := e.store.Ping(ctx); err != nil {
		t.Fatalf("the full store does not answer a ping: %v", err)
	}
	err := e.svc.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "database or disk is full") {
		t.Fatalf("Ready with every write failing = %v; want an error naming the failure", err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	v.send(map[string]any{"type": "send", "client_id": "after", "conversation_id": conv, "text": "space is back"})
	v.expect("ack", byClient("after"))
	if err := e.svc.Ready(ctx); err != nil {
		t.Fatalf("Ready after a successful write = %v", err)
	}
}
