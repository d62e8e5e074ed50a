package chatsvc

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestOneAssignmentRule: in a conversation assigned to Ann, another agent
// can neither resolve it (REST), write in it (socket), take it nor
// transfer it; they may leave a private note. A supervisor may step in,
// and the events of that action say so (actor.step_in); Ann's own
// actions carry no step_in.
func TestOneAssignmentRule(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		ann := e.staff("Ann", access.Agent)
		annSock := ann.socket()
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "v1", "text": "help"})
		conv := v.expect("ack", byClient("v1")).str("conversation_id")
		annSock.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == ann.user.ID })

		bob := e.staff("Bob", access.Agent)
		bobSock := bob.socket()
		base := "/api/chat/conversations/" + conv
		for _, call := range []struct {
			path string
			body any
		}{
			{base + "/status", map[string]string{"status": "resolved"}},
			{base + "/assign", map[string]string{"agent_id": bob.user.ID}},
			{base + "/transfer", map[string]string{"to_agent_id": bob.user.ID}},
		} {
			if body := string(bob.call("POST", call.path, call.body, http.StatusForbidden, nil)); !strings.Contains(body, "forbidden") {
				t.Errorf("POST %s as another agent: %s", call.path, body)
			}
		}
		bobSock.send(map[string]any{"type": "send", "ref": "b1", "client_id": "b1", "conversation_id": conv, "text": "I'll take over"})
		if f := bobSock.expect("error", byRef("b1")); f.str("code") != CodeForbidden {
			t.Fatalf("another agent's message: %v", f)
		}
		bobSock.send(map[string]any{"type": "send", "ref": "b2", "client_id": "b2", "conversation_id": conv, "kind": "note", "text": "FYI: VIP"})
		bobSock.expect("ack", byRef("b2"))

		sue := e.staff("Sue", access.Agent, access.Supervisor)
		sueSock := sue.socket()
		sueSock.send(map[string]any{"type": "send", "ref": "s1", "client_id": "s1", "conversation_id": conv, "text": "Supervisor here"})
		sueSock.expect("ack", byRef("s1"))
		annSock.send(map[string]any{"type": "send", "ref": "a1", "client_id": "a1", "conversation_id": conv, "text": "Back to you"})
		annSock.expect("ack", byRef("a1"))
		var out Conversation
		sue.call("POST", base+"/status", map[string]string{"status": "resolved"}, http.StatusOK, &out)
		if out.Status != StatusResolved {
			t.Fatalf("supervisor's resolve: %+v", out)
		}
		evs := chat.waitFor(t, "the supervisor's resolve", hasEvent(ingest.ConversationResolved, conv, nil))
		stepIns := map[string]bool{}
		for _, ev := range evs {
			if ev.ConversationID != conv {
				continue
			}
			switch ev.Type {
			case ingest.MessageSent:
				var p ingest.MessageSentPayload
				ev.Into(&p)
				stepIns[p.ClientMessageID] = ev.Actor.StepIn
			case ingest.ConversationResolved:
				stepIns["resolved"] = ev.Actor.StepIn
			}
		}
		want := map[string]bool{"v1": false, "b2": false, "s1": true, "a1": false, "resolved": true}
		for k, w := range want {
			if got, ok := stepIns[k]; !ok || got != w {
				t.Errorf("event %s: step_in %v (seen %v), want %v", k, got, ok, w)
			}
		}
		if _, ok := stepIns["b1"]; ok {
			t.Error("the refused message was stored")
		}
		msgs, _ := e.svc.messagesAfter(context.Background(), conv, 0, 50)
		for _, m := range msgs {
			if m.ClientID == "b1" {
				t.Fatal("the refused message is in the conversation")
			}
		}
	})
}

// TestBlockedFirstMessageStartsNoConversation: blocked first messages
// (widget or offline form) create no conversation, queue nothing and
// publish nothing; the sender still learns they were blocked.
func TestBlockedFirstMessageStartsNoConversation(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Moderator = wordModerator{} })
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		for i := 0; i < 12; i++ {
			id := "w" + string(rune('a'+i))
			v.send(map[string]any{"type": "send", "client_id": id, "text": "badword " + id})
			if f := v.expect("blocked", byClient(id)); f.str("conversation_id") != "" || f.str("reason") == "" {
				t.Fatalf("blocked first message: %v", f)
			}
		}
		for i := 0; i < 4; i++ { // within the offline form's frame budget
			off := "o" + string(rune('a'+i))
			v.send(map[string]any{"type": "offline_message", "client_id": off, "text": "badword " + off, "email": "a@example.com"})
			v.expect("blocked", byClient(off))
		}
		rows, err := e.store.ConversationRows(context.Background(), ConversationFilter{Status: "all", Limit: 100})
		if err != nil || len(rows) != 0 {
			t.Fatalf("16 blocked first messages left %d conversations (%v)", len(rows), err)
		}
		// A clean message afterwards starts the one conversation.
		v.send(map[string]any{"type": "send", "client_id": "clean", "text": "hello"})
		conv := v.expect("ack", byClient("clean")).str("conversation_id")
		evs := chat.waitFor(t, "the clean message", hasEvent(ingest.MessageSent, conv, nil))
		for _, ev := range evs {
			if ev.ConversationID != conv && ev.Type != ingest.SiteUpdated {
				t.Fatalf("an event of another conversation: %s %s", ev.Type, ev.ConversationID)
			}
		}
	})
}
