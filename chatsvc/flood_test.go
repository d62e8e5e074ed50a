package chatsvc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestFrameFloodsAreBudgeted: thousands of leave, delivered and ping
// frames from one visitor become one visitor.left event, a handful of
// receipts at the agent (whose socket stays open) and a few rate_limited
// errors; the connection stays usable.
func TestFrameFloodsAreBudgeted(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		grace := e.staff("Grace Hopper", access.Agent)
		agent := grace.socket()
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "m1", "text": "hello"})
		conv := v.expect("ack", byClient("m1")).str("conversation_id")
		agent.send(map[string]any{"type": "subscribe", "ref": "s", "conversation_id": conv})
		agent.expect("messages", byRef("s"))

		var flood strings.Builder
		for i := 0; i < 3000; i++ {
			v.send(`{"type":"leave","conversation_id":"` + conv + `"}`)
			v.send(`{"type":"delivered","conversation_id":"` + conv + `","up_to_seq":1}`)
			v.send(`{"type":"ping"}`)
		}
		_ = flood
		// The connection still works: a message after the flood is acked.
		v.send(map[string]any{"type": "send", "client_id": "m2", "conversation_id": conv, "text": "still here"})
		v.expect("ack", byClient("m2"))
		evs := chat.waitFor(t, "the message after the flood", hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool {
			var p ingest.MessageSentPayload
			return ev.Into(&p) == nil && p.Text == "still here"
		}))
		left := 0
		for _, ev := range evs {
			if ev.Type == ingest.VisitorLeft && ev.ConversationID == conv {
				left++
			}
		}
		if left != 1 {
			t.Fatalf("9,000 frames with 3,000 leaves wrote %d visitor.left events, want 1", left)
		}
		// The agent's socket stayed open and got at most one delivered receipt (the mark never moved).
		receipts := 0
		deadline := time.After(500 * time.Millisecond)
	drain:
		for {
			select {
			case f := <-agent.frames:
				if f.str("type") == "receipt" && f.str("kind") == "delivered" {
					receipts++
				}
			case <-deadline:
				break drain
			}
		}
		if receipts > 1 {
			t.Fatalf("the agent got %d delivered receipts for one mark", receipts)
		}
		agent.send(map[string]any{"type": "ping", "ref": "alive"})
		agent.expect("pong", byRef("alive"))
		// The visitor was told, but not 9,000 times.
		limited := 0
		for len(v.frames) > 0 {
			if f := <-v.frames; f.str("type") == "error" && f.str("code") == CodeRateLimited {
				limited++
			}
		}
		if limited > 10 {
			t.Fatalf("the flood produced %d rate_limited errors; want at most one per second", limited)
		}
	})
}

// TestLeaveEmitsOnChangeOnly: a second leave in a row writes nothing; a
// leave after the visitor wrote again does.
func TestLeaveEmitsOnChangeOnly(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "a", "text": "hi"})
		conv := v.expect("ack", byClient("a")).str("conversation_id")
		for _, ref := range []string{"l1", "l2"} {
			v.send(map[string]any{"type": "leave", "ref": ref, "conversation_id": conv})
			v.expect("ok", byRef(ref))
		}
		v.send(map[string]any{"type": "send", "client_id": "b", "conversation_id": conv, "text": "back"})
		v.expect("ack", byClient("b"))
		v.send(map[string]any{"type": "leave", "ref": "l3", "conversation_id": conv})
		v.expect("ok", byRef("l3"))
		v.send(map[string]any{"type": "send", "client_id": "c", "conversation_id": conv, "text": "marker"})
		v.expect("ack", byClient("c"))
		evs := chat.waitFor(t, "the marker", hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool {
			var p ingest.MessageSentPayload
			return ev.Into(&p) == nil && p.Text == "marker"
		}))
		var order []string
		for _, ev := range evs {
			if ev.ConversationID != conv {
				continue
			}
			switch ev.Type {
			case ingest.VisitorLeft:
				order = append(order, "left")
			case ingest.MessageSent:
				order = append(order, "msg")
			}
		}
		if got := strings.Join(order, ","); got != "msg,left,msg,left,msg" {
			t.Fatalf("events %s, want msg,left,msg,left,msg", got)
		}
	})
}

// TestSocketCaps: concurrent visitor sockets are capped per visitor and
// per address, with a 429 naming which.
func TestSocketCaps(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Limits.MaxSocketsPerVisitor, c.Limits.MaxSocketsPerIP = 2, 3 })
		tok, _ := e.visitorSession("")
		a := e.visitorSocket(tok)
		e.visitorSocket(tok)
		h := http.Header{}
		h.Set("Origin", testOrigin)
		code, body := dialFail(t, e.ws+"/ws/visitor?token="+tok, h)
		if code != http.StatusTooManyRequests || !strings.Contains(body.Message, "for this visitor") {
			t.Fatalf("third socket of a visitor: %d %+v, want 429", code, body)
		}
		tok2, _ := e.visitorSession("")
		e.visitorSocket(tok2)
		tok3, _ := e.visitorSession("")
		code, body = dialFail(t, e.ws+"/ws/visitor?token="+tok3, h)
		if code != http.StatusTooManyRequests || !strings.Contains(body.Message, "from your address") {
			t.Fatalf("fourth socket of an address: %d %+v, want 429", code, body)
		}
		// A closed socket frees its place.
		a.conn.Close()
		poll(t, "the place to be freed", 5*time.Second, func() bool {
			return e.svc.sockets.full(e.svc.cfg.Limits, "127.0.0.1", "x") == ""
		})
		e.visitorSocket(tok3)
	})
}

// TestUploadQuotasAndSweep: per-visitor and per-site byte quotas refuse
// uploads with 413; uploads spend the address budget; an upload never
// sent expires, is refused in a message, and is swept with its file.
func TestUploadQuotasAndSweep(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) {
			c.Limits.VisitorAttachmentBytes = 3 * 1024
			c.Limits.SiteAttachmentBytes = 4 * 1024
			c.Limits.UnboundUploadTTL = 600 * time.Millisecond
		})
		png := func(n int) []byte { return append(pngBytes(t), make([]byte, n)...) }
		up := func(tok string, n int) (int, AttachmentView, string) {
			status, body := upload(t, e.base+"/api/chat/visitor/attachments", "f.png", "image/png", png(n),
				map[string]string{"Authorization": "Bearer " + tok, "Origin": testOrigin})
			var a AttachmentView
			_ = json.Unmarshal(body, &a)
			return status, a, string(body)
		}
		tokA, _ := e.visitorSession("")
		tokB, _ := e.visitorSession("")
		if code, _, body := up(tokA, 1000); code != http.StatusCreated {
			t.Fatalf("first upload: %d %s", code, body)
		}
		if code, _, body := up(tokA, 1000); code != http.StatusCreated {
			t.Fatalf("second upload: %d %s", code, body)
		}
		if code, _, body := up(tokA, 1200); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, CodeQuotaExceeded) {
			t.Fatalf("upload past the visitor quota: %d %s, want 413 %s", code, body, CodeQuotaExceeded)
		}
		if code, _, body := up(tokB, 1500); code != http.StatusCreated {
			t.Fatalf("another visitor's upload: %d %s", code, body)
		}
		if code, _, body := up(tokB, 1000); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "site") {
			t.Fatalf("upload past the site quota: %d %s, want 413 naming the site", code, body)
		}

		// An upload never sent expires: refused in a message, then swept with its file.
		tokC, _ := e.visitorSession("")
		// The quota is spent by A and B; C's upload goes to a fresh site budget once the sweep ran.
		poll(t, "the sweep to free the site's quota", 10*time.Second, func() bool {
			mine, site, err := e.store.AttachmentBytes(context.Background(), "x", e.site.ID)
			return err == nil && mine == 0 && site == 0
		})
		code, att, body := up(tokC, 100)
		if code != http.StatusCreated {
			t.Fatalf("upload after the sweep: %d %s", code, body)
		}
		time.Sleep(700 * time.Millisecond) // past UnboundUploadTTL: the upload must now be refused
		v := e.visitorSocket(tokC)
		v.send(map[string]any{"type": "send", "ref": "late", "client_id": "late", "text": "see file", "attachments": []string{att.ID}})
		// Refused either as expired or, when the sweep came first, as gone.
		if f := v.expect("error", byRef("late")); !strings.Contains(f.str("message"), "upload it again") && f.str("code") != CodeNotFound {
			t.Fatalf("sending an expired upload: %v", f)
		}
		poll(t, "the expired upload and its file to be swept", 10*time.Second, func() bool {
			_, err := e.store.Attachment(context.Background(), att.ID)
			r, ferr := e.svc.files.Open(context.Background(), att.ID)
			if ferr == nil {
				r.Close()
			}
			return errors.Is(err, ErrNotFound) && errors.Is(ferr, ErrNotFound)
		})
	})
}

// TestUploadsSpendTheAddressBudget: uploads count against the address's
// request budget like sessions and sockets.
func TestUploadsSpendTheAddressBudget(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Limits.IPConnectRate, c.Limits.IPConnectBurst = 0.01, 4 })
		tok, _ := e.visitorSession("") // 1 of 4
		codes := []int{}
		for i := 0; i < 4; i++ {
			status, _ := upload(t, e.base+"/api/chat/visitor/attachments", "f.png", "image/png", pngBytes(t),
				map[string]string{"Authorization": "Bearer " + tok, "Origin": testOrigin})
			codes = append(codes, status)
		}
		if codes[2] != http.StatusCreated || codes[3] != http.StatusTooManyRequests {
			t.Fatalf("upload statuses %v; want the fourth request from the address refused with 429", codes)
		}
	})
}
