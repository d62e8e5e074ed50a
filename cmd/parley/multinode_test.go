package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
)

// visitorToken opens a visitor session through base and returns its token.
func visitorToken(t *testing.T, base, siteKey, origin string) (token, visitorID string) {
	t.Helper()
	return visitorSession(t, base, origin, map[string]any{"site_key": siteKey})
}

// visitorOn opens the visitor's socket on one node.
func visitorOn(t *testing.T, node *proc, token, origin string) *socket {
	t.Helper()
	s := dialSocket(t, wsURL(node.url(), "/ws/visitor?token="+url.QueryEscape(token)), http.Header{"Origin": {origin}})
	s.expect("visitor hello on "+node.name, ofType("hello"))
	return s
}

// staffOn opens a staff member's /ws/agent on one node.
func staffOn(t *testing.T, node *proc, c *staffClient, origin string) *socket {
	t.Helper()
	s := dialSocket(t, wsURL(node.url(), "/ws/agent"), http.Header{"Origin": {origin}, "Cookie": {c.cookieHeader()}})
	s.expect("agent hello on "+node.name, ofType("hello"))
	return s
}

func frameMessage(f map[string]any) map[string]any {
	m, _ := f["message"].(map[string]any)
	return m
}

func convAssignee(f map[string]any) (conv, assignee string) {
	c, _ := f["conversation"].(map[string]any)
	if c == nil {
		return "", ""
	}
	conv, _ = c["id"].(string)
	if a, _ := c["assignee"].(map[string]any); a != nil {
		assignee, _ = a["id"].(string)
	}
	return conv, assignee
}

// TestChatAcrossNodeProcesses runs the scenario on real processes
// of the built binary: one broker, three chat nodes, moderation,
// analytics and the dashboard on one PostgreSQL. A visitor on node 1 and
// an agent on node 2 talk both ways with typing and receipts; a
// supervisor on node 3 watches; a moderator's removal hides a message on
// every node; node 1 dies (SIGKILL) and the visitor resumes on node 3
// while the agent keeps the conversation; node 2 dies and the
// conversation goes to an agent on node 3. Every acked message is in the
// history, on parley.chat.v1 and in analytics exactly once.
func TestChatAcrossNodeProcesses(t *testing.T) {
	c := startCluster(t)
	c.start("dashboard-1", "dashboard", "dashboard")
	n1 := c.start("chat-1", "chat", "chat")
	n2 := c.start("chat-2", "chat", "chat")
	n3 := c.start("chat-3", "chat", "chat")
	c.start("moderate-1", "moderate", "moderation")
	c.start("analytics-1", "analytics", "analytics")
	p := c.asE2E()
	origin := c.gateway

	p.createStaff("grace@multi.test", "Grace", "agent")
	p.createStaff("lin@multi.test", "Lin", "agent")
	p.createStaff("sam@multi.test", "Sam", "agent", "supervisor")
	p.createStaff("mo@multi.test", "Mo", "moderator")
	grace := signIn(t, c.gateway, "grace@multi.test", e2eStaffPassword)
	sam := signIn(t, c.gateway, "sam@multi.test", e2eStaffPassword)
	mo := signIn(t, c.gateway, "mo@multi.test", e2eStaffPassword)

	graceWS := staffOn(t, n2, grace, origin)
	// Sam supervises from node 3: away, so routing leaves him out, and
	// watching the whole inbox.
	samWS := staffOn(t, n3, sam, origin)
	samWS.send(map[string]any{"type": "presence", "status": "away"})
	samWS.send(map[string]any{"type": "inbox", "scope": "all"})
	waitUntil(t, 30*time.Second, "grace online and sam away on every node", func() bool {
		for _, n := range []*proc{n1, n2, n3} {
			var out struct {
				Agents []struct{ Name, Status string }
			}
			res, err := http.Get(n.url() + "/readyz")
			if err == nil {
				res.Body.Close()
			}
			code, body := grace.requestAt(n.url(), "GET", "/api/chat/agents")
			if code != http.StatusOK || json.Unmarshal(body, &out) != nil {
				return false
			}
			online, away := false, false
			for _, a := range out.Agents {
				online = online || a.Name == "Grace" && a.Status == "online"
				away = away || a.Name == "Sam" && a.Status == "away"
			}
			if !online || !away {
				return false
			}
		}
		return true
	})

	acked := map[string]bool{} // message ids the server acknowledged
	ack := func(f map[string]any) string {
		id, _ := f["message_id"].(string)
		if id == "" {
			t.Fatalf("ack without message id: %v", f)
		}
		acked[id] = true
		return id
	}

	// The visitor on node 1 writes; the conversation is routed to Grace on node 2.
	token, _ := visitorToken(t, n1.url(), p.site.Key, origin)
	vis := visitorOn(t, n1, token, origin)
	vis.send(map[string]any{"type": "send", "client_id": "v1", "text": "Hello, is anyone there?"})
	first := vis.expect("ack of v1", func(f map[string]any) bool { return f["type"] == "ack" && f["client_id"] == "v1" })
	ack(first)
	conv, _ := first["conversation_id"].(string)
	graceWS.expect("the conversation assigned to grace", func(f map[string]any) bool {
		id, who := convAssignee(f)
		return f["type"] == "conversation" && id == conv && who != ""
	})
	samWS.expect("the conversation in the supervisor's inbox on node 3", func(f map[string]any) bool {
		id, _ := convAssignee(f)
		return f["type"] == "conversation" && id == conv
	})
	samWS.send(map[string]any{"type": "subscribe", "ref": "s3", "conversation_id": conv})
	samWS.expect("the backlog on node 3", func(f map[string]any) bool { return f["type"] == "messages" && f["ref"] == "s3" })
	graceWS.send(map[string]any{"type": "subscribe", "ref": "s1", "conversation_id": conv})
	graceWS.expect("the backlog", func(f map[string]any) bool { return f["type"] == "messages" && f["ref"] == "s1" })

	// Both ways with typing and receipts.
	graceWS.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
	vis.expect("grace typing", func(f map[string]any) bool { return f["type"] == "typing" && f["role"] == "agent" })
	graceWS.send(map[string]any{"type": "send", "client_id": "g1", "conversation_id": conv, "text": "Yes, Grace here. How can I help?"})
	ga := graceWS.expect("ack of g1", func(f map[string]any) bool { return f["type"] == "ack" && f["client_id"] == "g1" })
	ack(ga)
	seq, _ := ga["seq"].(float64)
	vis.expect("grace's reply on node 1", func(f map[string]any) bool {
		return f["type"] == "message" && frameMessage(f)["text"] == "Yes, Grace here. How can I help?"
	})
	vis.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
	graceWS.expect("visitor typing on node 2", func(f map[string]any) bool { return f["type"] == "typing" && f["role"] == "visitor" })
	vis.send(map[string]any{"type": "read", "ref": "r1", "conversation_id": conv, "up_to_seq": seq})
	graceWS.expect("read receipt on node 2", func(f map[string]any) bool { return f["type"] == "receipt" && f["kind"] == "read" })

	// A rude message is flagged; the moderator removes it and it
	// disappears on every node live.
	vis.send(map[string]any{"type": "send", "client_id": "v2", "conversation_id": conv, "text": "this shitty parcel never came"})
	rude := vis.expect("ack of v2", func(f map[string]any) bool {
		return (f["type"] == "ack" || f["type"] == "blocked") && f["client_id"] == "v2"
	})
	rudeID := ack(rude)
	graceWS.expect("the rude message on node 2", func(f map[string]any) bool { return f["type"] == "message" && frameMessage(f)["id"] == rudeID })
	var itemID string
	waitUntil(t, 30*time.Second, "the rude message in the review queue", func() bool {
		var page struct {
			Items []struct {
				ID        string `json:"id"`
				MessageID string `json:"message_id"`
			}
		}
		code, body := mo.request("GET", "/api/moderation/items", nil, false)
		if code != http.StatusOK || json.Unmarshal(body, &page) != nil {
			return false
		}
		for _, it := range page.Items {
			if it.MessageID == rudeID {
				itemID = it.ID
			}
		}
		return itemID != ""
	})
	mo.call("POST", "/api/moderation/items/"+itemID+"/claim", nil, http.StatusOK, nil)
	mo.call("POST", "/api/moderation/items/"+itemID+"/remove", map[string]string{"reason": "profanity"}, http.StatusOK, nil)
	for name, s := range map[string]*socket{"visitor on node 1": vis, "grace on node 2": graceWS, "sam on node 3": samWS} {
		s.expect("message_hidden for "+name, func(f map[string]any) bool { return f["type"] == "message_hidden" && f["message_id"] == rudeID })
	}

	// Node 1 dies; the visitor resumes on node 3; Grace keeps the conversation.
	n1.kill(t)
	vis3 := visitorOn(t, n3, token, origin)
	vis3.send(map[string]any{"type": "resume", "ref": "res", "conversation_id": conv, "after_seq": 0})
	backlog := vis3.expect("the backlog on node 3", func(f map[string]any) bool { return f["type"] == "messages" && f["ref"] == "res" })
	if msgs, _ := backlog["messages"].([]any); len(msgs) < 3 {
		t.Fatalf("resumed backlog has %d messages, want at least 3: %v", len(msgs), backlog)
	}
	vis3.send(map[string]any{"type": "send", "client_id": "v3", "conversation_id": conv, "text": "Sorry, my browser crashed."})
	ack(vis3.expect("ack of v3", func(f map[string]any) bool { return f["type"] == "ack" && f["client_id"] == "v3" }))
	graceWS.expect("the visitor's message from node 3", func(f map[string]any) bool {
		return f["type"] == "message" && frameMessage(f)["text"] == "Sorry, my browser crashed."
	})
	graceWS.send(map[string]any{"type": "send", "client_id": "g2", "conversation_id": conv, "text": "No problem, I am still here."})
	ack(graceWS.expect("ack of g2", func(f map[string]any) bool { return f["type"] == "ack" && f["client_id"] == "g2" }))
	vis3.expect("grace's reply on node 3", func(f map[string]any) bool {
		return f["type"] == "message" && frameMessage(f)["text"] == "No problem, I am still here."
	})

	// Node 2 dies: Grace is marked offline and the conversation goes to Lin on node 3.
	lin := signIn(t, c.gateway, "lin@multi.test", e2eStaffPassword)
	linWS := staffOn(t, n3, lin, origin)
	n2.kill(t)
	killed := time.Now()
	// Node 2's last presence report counts until it expires; then the
	// leader requeues and routes: 30 s is the promise for a dead node.
	linWS.expectWithin(30*time.Second, "the conversation requeued to lin", func(f map[string]any) bool {
		id, who := convAssignee(f)
		return f["type"] == "conversation" && id == conv && who != ""
	})
	t.Logf("conversation with lin %s after node 2 was killed", time.Since(killed).Round(time.Millisecond))
	linWS.send(map[string]any{"type": "send", "client_id": "l1", "conversation_id": conv, "text": "Lin here, taking over."})
	ack(linWS.expect("ack of l1", func(f map[string]any) bool { return f["type"] == "ack" && f["client_id"] == "l1" }))
	vis3.expect("lin's reply", func(f map[string]any) bool {
		return f["type"] == "message" && frameMessage(f)["text"] == "Lin here, taking over."
	})

	// Every acked message: in the history once, on the topic once, counted once.
	var hist struct {
		Messages []struct {
			ID  string `json:"id"`
			Seq int    `json:"seq"`
		}
	}
	sam.call("GET", "/api/chat/conversations/"+conv+"/messages", nil, http.StatusOK, &hist)
	seen := map[string]int{}
	for i, m := range hist.Messages {
		seen[m.ID]++
		if m.Seq != i+1 {
			t.Errorf("history seq %d at position %d", m.Seq, i)
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acked message %s is %d times in the history", id, seen[id])
		}
	}
	if len(hist.Messages) != len(acked) {
		t.Errorf("history holds %d messages, %d were acked", len(hist.Messages), len(acked))
	}
	onTopic := readMessageEvents(t, c.brokers, conv, len(acked))
	for id := range acked {
		if onTopic[id] != 1 {
			t.Errorf("acked message %s is %d times on %s", id, onTopic[id], ingest.TopicChat)
		}
	}
	waitUntil(t, 30*time.Second, "analytics to count every message once", func() bool {
		n, _, _ := p.reportTotals("")
		var r struct {
			Series []struct {
				Points []struct {
					Messages struct{ Visitor, Agent int }
				}
			}
		}
		now := time.Now().UTC()
		q := url.Values{"tz": {"UTC"}, "from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}
		code, body := p.admin.request("GET", "/api/analytics/report?"+q.Encode(), nil, false)
		if code != http.StatusOK || json.Unmarshal(body, &r) != nil {
			return false
		}
		total := 0
		for _, s := range r.Series {
			for _, pt := range s.Points {
				total += pt.Messages.Visitor + pt.Messages.Agent
			}
		}
		return n == 1 && total == len(acked)
	})
}

// requestAt sends an authenticated request to one node rather than the gateway.
func (c *staffClient) requestAt(base, method, path string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("Cookie", c.cookieHeader())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// readMessageEvents counts the message.sent events of a conversation on
// parley.chat.v1 by message id, once at least want have arrived.
func readMessageEvents(t *testing.T, brokers, conv string, want int) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	parts, err := kafka.LookupPartitions(ctx, "tcp", brokers, ingest.TopicChat)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	total := 0
	deadline := time.Now().Add(45 * time.Second)
	for total < want && time.Now().Before(deadline) {
		counts, total = map[string]int{}, 0
		for _, pt := range parts {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(brokers, ","), Topic: ingest.TopicChat, Partition: pt.ID, MaxWait: 100 * time.Millisecond})
			end, err := r.ReadLag(ctx)
			if err != nil {
				r.Close()
				t.Fatal(err)
			}
			for i := int64(0); i < end; i++ {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					r.Close()
					t.Fatal(err)
				}
				e, err := ingest.Decode(m.Value)
				if err != nil || e.Type != ingest.MessageSent || e.ConversationID != conv {
					continue
				}
				var p ingest.MessageSentPayload
				if err := e.Into(&p); err == nil {
					counts[p.MessageID]++
					total++
				}
			}
			r.Close()
		}
		if total < want {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if total < want {
		t.Fatalf("%d message.sent events of %s on %s, want %d", total, conv, ingest.TopicChat, want)
	}
	return counts
}
