package chatsvc

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"errors"
	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestRetention: a site's retention_days deletes its resolved
// conversations (messages, attachment rows and files) once they are older;
// open conversations and sites without retention keep theirs, and the
// visitor can start afresh afterwards.
func TestRetention(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		in := SiteInput{Name: e.site.Name, AllowedOrigins: e.site.AllowedOrigins, Settings: e.site.Settings}
		in.Settings.RetentionDays = 30
		if _, err := e.svc.UpdateSite(ctx, e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		other, err := e.svc.CreateSite(ctx, SiteInput{Name: "Forever", AllowedOrigins: []string{testOrigin}}, "admin")
		if err != nil {
			t.Fatal(err)
		}
		grace := e.staff("Grace Hopper", access.Agent)
		agent := grace.socket()

		// A: resolved, with an attachment — expires. B: open — kept.
		tokA, _ := e.visitorSession("")
		status, body := upload(t, e.base+"/api/chat/visitor/attachments", "receipt.png", "image/png", pngBytes(t),
			map[string]string{"Authorization": "Bearer " + tokA, "Origin": testOrigin})
		if status != 201 {
			t.Fatalf("upload: %d %s", status, body)
		}
		var att AttachmentView
		if err := json.Unmarshal(body, &att); err != nil {
			t.Fatal(err)
		}
		a := e.visitorSocket(tokA)
		a.send(map[string]any{"type": "send", "client_id": "a1", "text": "here is my receipt", "attachments": []string{att.ID}})
		convA := a.expect("ack", byClient("a1")).str("conversation_id")
		grace.call("POST", "/api/chat/conversations/"+convA+"/status", map[string]string{"status": "resolved"}, 200, nil)

		tokB, _ := e.visitorSession("")
		b := e.visitorSocket(tokB)
		b.send(map[string]any{"type": "send", "client_id": "b1", "text": "still talking"})
		convB := b.expect("ack", byClient("b1")).str("conversation_id")

		// C: resolved on a site without retention — kept.
		var sess sessionResponse
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": other.Key}, 200, &sess, map[string]string{"Origin": testOrigin})
		c := e.visitorSocket(sess.Token)
		c.send(map[string]any{"type": "send", "client_id": "c1", "text": "hello forever"})
		convC := c.expect("ack", byClient("c1")).str("conversation_id")
		grace.call("POST", "/api/chat/conversations/"+convC+"/status", map[string]string{"status": "resolved"}, 200, nil)
		agent.expect("conversation", func(f frame) bool {
			return f.obj("conversation").str("id") == convC && f.obj("conversation").str("status") == StatusResolved
		})

		messages := func(id string) int {
			msgs, err := e.store.MessagesAfter(ctx, id, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			return len(msgs)
		}
		fileExists := func() bool {
			r, err := e.svc.files.Open(ctx, att.ID)
			if err == nil {
				r.Close()
			}
			return err == nil
		}
		if !fileExists() {
			t.Fatalf("attachment %s not stored before retention", att.ID)
		}

		// 29 days on nothing has expired; 31 days on only A has.
		if n, err := e.svc.enforceRetention(ctx, time.Now().Add(29*24*time.Hour)); err != nil || n != 0 {
			t.Fatalf("retention at 29 days deleted %d (%v), want 0", n, err)
		}
		n, err := e.svc.enforceRetention(ctx, time.Now().Add(31*24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("retention at 31 days deleted %d (%v), want 1", n, err)
		}
		if _, err := e.store.Conversation(ctx, convA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired conversation still stored: %v", err)
		}
		if n := messages(convA); n != 0 {
			t.Fatalf("%d messages of the expired conversation remain", n)
		}
		if _, err := e.store.Attachment(ctx, att.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired conversation's attachment still recorded: %v", err)
		}
		if fileExists() {
			t.Fatal("the expired conversation's attachment file remains")
		}
		resp, err := http.Get(e.base + att.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("expired attachment served with %d", resp.StatusCode)
		}
		grace.call("GET", "/api/chat/conversations/"+convA, nil, 404, nil)
		for _, id := range []string{convB, convC} {
			if messages(id) != 1 {
				t.Fatalf("conversation %s lost its message", id)
			}
		}

		// The visitor of the deleted conversation starts a new one.
		a.send(map[string]any{"type": "send", "client_id": "a2", "text": "back again"})
		if again := a.expect("ack", byClient("a2")).str("conversation_id"); again == "" || again == convA {
			t.Fatalf("new message went to conversation %q", again)
		}
	})
}
