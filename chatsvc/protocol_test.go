package chatsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

func pngBytes(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < 8; i++ {
		img.Set(i, i, color.RGBA{200, 0, 0, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// upload posts a file as multipart with the given headers.
func upload(t testing.TB, url, name, claimedType string, data []byte, headers map[string]string) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename=%q`, name)}
	h["Content-Type"] = []string{claimedType}
	part, _ := w.CreatePart(h)
	part.Write(data)
	w.Close()
	req, _ := http.NewRequest("POST", url, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestProtocol walks a whole conversation between a visitor and agents over
// real sockets and checks each event on Kafka.
func TestProtocol(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		grace := e.staff("Grace Hopper", access.Agent)
		agent := grace.socket()

		token, visitorID := e.visitorSession("")
		vis := e.visitorSocket(token)
		vis.send(map[string]any{"type": "context", "ref": "ctx", "page_url": "https://shop.example/cart", "referrer": "https://search.example/", "timezone": "Europe/Paris"})
		vis.expect("ok", byRef("ctx"))

		// send → ack; the conversation starts, is queued and assigned to the only online agent.
		vis.send(map[string]any{"type": "send", "ref": "r1", "client_id": "v-1", "text": "Hello, my order is late"})
		ack := vis.expect("ack", byClient("v-1"))
		conv := ack.str("conversation_id")
		if ack.num("seq") != 1 || ack.str("ref") != "r1" || ack.str("message_id") == "" {
			t.Fatalf("first ack = %v", ack)
		}
		assigned := agent.expect("conversation", func(f frame) bool {
			c := f.obj("conversation")
			return c.str("id") == conv && c.obj("assignee").str("id") == grace.user.ID
		})
		if v := assigned.obj("conversation").obj("visitor"); v.str("id") != visitorID {
			t.Fatalf("conversation visitor = %v", v)
		}
		vis.expect("conversation", func(f frame) bool { return f.obj("conversation").str("routing") == RoutingAssigned })

		// subscribe returns the backlog.
		agent.send(map[string]any{"type": "subscribe", "ref": "s1", "conversation_id": conv, "after_seq": 0})
		backlog := agent.expect("messages", byRef("s1"))
		if msgs := backlog.list("messages"); len(msgs) != 1 || msgs[0].str("text") != "Hello, my order is late" || !backlogComplete(backlog) {
			t.Fatalf("backlog = %v", backlog)
		}

		// typing both ways
		vis.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
		agent.expect("typing", func(f frame) bool { return f.str("role") == "visitor" && f["typing"] == true })
		agent.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
		vis.expect("typing", func(f frame) bool { return f.str("role") == "agent" && f.str("name") == "Grace Hopper" })

		// agent reply → visitor receives it
		agent.send(map[string]any{"type": "send", "client_id": "a-1", "conversation_id": conv, "text": "Sorry! Let me check."})
		if a := agent.expect("ack", byClient("a-1")); a.num("seq") != 2 {
			t.Fatalf("agent ack = %v", a)
		}
		got := vis.expect("message", func(f frame) bool { return f.obj("message").num("seq") == 2 })
		if m := got.obj("message"); m.str("text") != "Sorry! Let me check." || m.obj("author").str("role") != "agent" || m.obj("author").str("name") != "Grace Hopper" {
			t.Fatalf("visitor got %v", m)
		}
		// a private note never reaches the visitor
		agent.send(map[string]any{"type": "send", "client_id": "a-note", "conversation_id": conv, "kind": "note", "text": "VIP, be nice"})
		agent.expect("ack", byClient("a-note"))

		// receipts both ways
		vis.send(map[string]any{"type": "delivered", "conversation_id": conv, "up_to_seq": 2})
		agent.expect("receipt", func(f frame) bool { return f.str("kind") == "delivered" && f.num("up_to_seq") == 2 })
		vis.send(map[string]any{"type": "read", "ref": "rd", "conversation_id": conv, "up_to_seq": 2})
		vis.expect("ok", byRef("rd"))
		agent.expect("receipt", func(f frame) bool {
			return f.str("kind") == "read" && f.str("role") == "visitor" && f.num("up_to_seq") == 2
		})
		agent.send(map[string]any{"type": "read", "conversation_id": conv, "up_to_seq": 1})
		vis.expect("receipt", func(f frame) bool {
			return f.str("kind") == "read" && f.str("role") == "agent" && f.num("up_to_seq") == 1
		})

		// reconnect with resume: the visitor drops, the agent writes twice, the
		// visitor comes back (same token → same visitor) and resumes after seq 2.
		vis.send(map[string]any{"type": "send", "client_id": "v-2", "text": "Order A-1001"})
		v2 := vis.expect("ack", byClient("v-2"))
		vis.conn.Close()
		agent.send(map[string]any{"type": "send", "client_id": "a-2", "conversation_id": conv, "text": "Found it."})
		agent.expect("ack", byClient("a-2"))
		agent.send(map[string]any{"type": "send", "client_id": "a-3", "conversation_id": conv, "text": "It ships today."})
		agent.expect("ack", byClient("a-3"))
		token2, visitor2 := e.visitorSession(token)
		if visitor2 != visitorID {
			t.Fatalf("session with the stored token gave visitor %s, want %s", visitor2, visitorID)
		}
		vis = e.visitorSocket(token2)
		vis.send(map[string]any{"type": "resume", "ref": "res", "conversation_id": conv, "after_seq": 2})
		res := vis.expect("messages", byRef("res"))
		var texts []string
		for _, m := range res.list("messages") {
			if m.str("kind") == "note" {
				t.Fatalf("visitor resume returned a private note: %v", m)
			}
			texts = append(texts, m.str("text"))
		}
		if want := []string{"Order A-1001", "Found it.", "It ships today."}; fmt.Sprint(texts) != fmt.Sprint(want) {
			t.Fatalf("resume texts = %q, want %q", texts, want)
		}
		// the retried send with the same client id is acknowledged, not duplicated
		vis.send(map[string]any{"type": "send", "client_id": "v-2", "text": "Order A-1001"})
		dup := vis.expect("ack", byClient("v-2"))
		if dup["duplicate"] != true || dup.num("seq") != v2.num("seq") || dup.str("message_id") != v2.str("message_id") {
			t.Fatalf("retry ack = %v, first = %v", dup, v2)
		}
		vis.send(map[string]any{"type": "resume", "ref": "all", "conversation_id": conv, "after_seq": 0})
		all := vis.expect("messages", byRef("all"))
		seen := map[int64]bool{}
		for _, m := range all.list("messages") {
			if seen[m.num("seq")] {
				t.Fatalf("seq %d twice in history", m.num("seq"))
			}
			seen[m.num("seq")] = true
		}
		if len(seen) != 5 { // 6 stored messages minus the note
			t.Fatalf("visitor history has %d messages, want 5: %v", len(seen), all)
		}

		// attachment: the type is sniffed, the message carries it, the file is served safely
		status, body := upload(t, e.base+"/api/chat/visitor/attachments", "screenshot.png", "application/x-evil", pngBytes(t),
			map[string]string{"Authorization": "Bearer " + token2, "Origin": testOrigin})
		if status != 201 {
			t.Fatalf("upload: %d %s", status, body)
		}
		var att AttachmentView
		json.Unmarshal(body, &att)
		if att.ContentType != "image/png" {
			t.Fatalf("sniffed type %q, want image/png", att.ContentType)
		}
		vis.send(map[string]any{"type": "send", "client_id": "v-3", "text": "", "attachments": []string{att.ID}})
		vis.expect("ack", byClient("v-3"))
		am := agent.expect("message", func(f frame) bool { return len(f.obj("message").list("attachments")) == 1 })
		url := am.obj("message").list("attachments")[0].str("url")
		resp, err := http.Get(e.base + url)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!bytes.Equal(img, pngBytes(t)) || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("file served with %d %v", resp.StatusCode, resp.Header)
		}

		// transfer to another agent with a note
		alan := e.staff("Alan Turing", access.Agent)
		alanSock := alan.socket()
		var tr Conversation
		grace.call("POST", "/api/chat/conversations/"+conv+"/transfer", map[string]string{"to_agent_id": alan.user.ID, "note": "Shipping question"}, 200, &tr)
		if tr.Assignee == nil || tr.Assignee.ID != alan.user.ID {
			t.Fatalf("transfer result = %+v", tr)
		}
		alanSock.expect("message", func(f frame) bool {
			return f.obj("message").str("kind") == "note" && f.obj("message").str("text") == "Shipping question"
		})
		alanSock.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == alan.user.ID })
		vis.none("message", func(f frame) bool { return f.obj("message").str("kind") == "note" }, 300*1e6)

		// resolve → the visitor sees it and rates
		alan.call("POST", "/api/chat/conversations/"+conv+"/status", map[string]string{"status": "resolved"}, 200, nil)
		vis.expect("conversation", func(f frame) bool { return f.obj("conversation").str("status") == StatusResolved })
		vis.send(map[string]any{"type": "csat", "ref": "cs", "conversation_id": conv, "rating": 5, "comment": "Quick <3"})
		vis.expect("ok", byRef("cs"))
		vis.send(map[string]any{"type": "csat", "ref": "cs2", "conversation_id": conv, "rating": 1})
		if f := vis.expect("error", byRef("cs2")); f.str("code") != CodeConflict {
			t.Fatalf("second rating: %v", f)
		}
		// a later visitor message reopens it; then the visitor leaves
		vis.send(map[string]any{"type": "send", "client_id": "v-4", "text": "One more thing"})
		if a := vis.expect("ack", byClient("v-4")); a.str("conversation_id") != conv {
			t.Fatalf("message after resolve went to %s, want reopened %s", a.str("conversation_id"), conv)
		}
		vis.send(map[string]any{"type": "leave", "ref": "bye", "conversation_id": conv})
		vis.expect("ok", byRef("bye"))

		// every step is on Kafka
		chat.waitFor(t, "the whole conversation", func(evs []ingest.Event) bool {
			for _, c := range []func([]ingest.Event) bool{
				hasEvent(ingest.ConversationStarted, conv, func(ev ingest.Event) bool {
					var p ingest.ConversationStartedPayload
					ev.Into(&p)
					return p.VisitorID == visitorID && p.PageURL == "https://shop.example/cart" && p.Channel == ingest.ChannelWidget
				}),
				hasEvent(ingest.ConversationQueued, conv, nil),
				hasEvent(ingest.ConversationAssigned, conv, func(ev ingest.Event) bool {
					var p ingest.ConversationAssignedPayload
					ev.Into(&p)
					return p.AgentID == grace.user.ID && p.Reason == "auto"
				}),
				hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool {
					var p ingest.MessageSentPayload
					ev.Into(&p)
					return p.ClientMessageID == "v-1" && p.Seq == 1 && ev.Actor.Role == ingest.RoleVisitor
				}),
				hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool {
					var p ingest.MessageSentPayload
					ev.Into(&p)
					return p.Kind == ingest.KindNote && ev.Actor.ID == grace.user.ID
				}),
				hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool {
					var p ingest.MessageSentPayload
					ev.Into(&p)
					return len(p.Attachments) == 1 && p.Attachments[0].ContentType == "image/png"
				}),
				hasEvent(ingest.MessageRead, conv, func(ev ingest.Event) bool { return ev.Actor.Role == ingest.RoleVisitor }),
				hasEvent(ingest.MessageRead, conv, func(ev ingest.Event) bool { return ev.Actor.Role == ingest.RoleAgent }),
				hasEvent(ingest.ConversationTransferred, conv, func(ev ingest.Event) bool {
					var p ingest.ConversationTransferredPayload
					ev.Into(&p)
					return p.FromAgentID == grace.user.ID && p.ToAgentID == alan.user.ID && p.Note == "Shipping question"
				}),
				hasEvent(ingest.ConversationResolved, conv, nil),
				hasEvent(ingest.CSATSubmitted, conv, func(ev ingest.Event) bool {
					var p ingest.CSATSubmittedPayload
					ev.Into(&p)
					return p.Rating == 5 && p.Comment == "Quick <3"
				}),
				hasEvent(ingest.ConversationReopened, conv, nil),
				hasEvent(ingest.VisitorLeft, conv, nil),
			} {
				if !c(evs) {
					return false
				}
			}
			return true
		})
		// the retried v-2 produced exactly one message.sent
		evs := chat.waitFor(t, "messages", func([]ingest.Event) bool { return true })
		n := 0
		for _, ev := range evs {
			var p ingest.MessageSentPayload
			if ev.Type == ingest.MessageSent && ev.Into(&p) == nil && p.ClientMessageID == "v-2" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("client id v-2 produced %d message.sent events, want 1", n)
		}
	})
}

func backlogComplete(f frame) bool { return f["complete"] == true }
