package chatsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// wordModerator is a real InlineModerator with two fixed rules.
type wordModerator struct{}

func (wordModerator) CheckInline(ctx context.Context, siteID, visitorID, text string) InlineVerdict {
	if strings.Contains(text, "badword") {
		return InlineVerdict{Action: ingest.ActionBlock, Categories: []string{"abuse"}, Severity: 3, Reason: "This message was not delivered: abusive language."}
	}
	if i := strings.Index(text, "555-1234"); i >= 0 {
		return InlineVerdict{Action: ingest.ActionRedact, Categories: []string{"pii"}, Redacted: text[:i] + "[redacted]" + text[i+8:]}
	}
	return InlineVerdict{Action: ingest.ActionAllow}
}

// TestModerationHooks covers the inline verdicts and the decisions that
// arrive later from Kafka: hide on every screen, restore, ban.
func TestModerationHooks(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Moderator = wordModerator{} })
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		grace := e.staff("Grace", access.Agent)
		agent := grace.socket()
		tok, visitorID := e.visitorSession("")
		vis := e.visitorSocket(tok)

		vis.send(map[string]any{"type": "send", "client_id": "ok", "text": "hello"})
		conv := vis.expect("ack", byClient("ok")).str("conversation_id")
		agent.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == grace.user.ID })
		agent.send(map[string]any{"type": "subscribe", "ref": "s", "conversation_id": conv})
		agent.expect("messages", byRef("s"))

		// block: the sender learns why; the agent never sees it; the event says blocked
		vis.send(map[string]any{"type": "send", "client_id": "bad", "text": "you badword"})
		bl := vis.expect("blocked", byClient("bad"))
		// the reason is the catalog's, in the widget's language (English here)
		if bl.str("reason") != "Your message was not delivered because it was flagged as abuse." || bl.list("categories") == nil {
			t.Fatalf("blocked frame = %v", bl)
		}
		// redact: delivered redacted
		vis.send(map[string]any{"type": "send", "client_id": "pii", "text": "call 555-1234 now"})
		if a := vis.expect("ack", byClient("pii")); a["redacted"] != true || a.str("text") != "call [redacted] now" {
			t.Fatalf("redact ack = %v", a)
		}
		got := agent.expect("message", func(f frame) bool { return f.obj("message").str("client_id") == "pii" })
		if got.obj("message").str("text") != "call [redacted] now" {
			t.Fatalf("agent got %v", got)
		}
		chat.waitFor(t, "a blocked message.sent", hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool {
			var p ingest.MessageSentPayload
			ev.Into(&p)
			return p.Blocked && p.ClientMessageID == "bad"
		}))

		// a moderator's later decision hides a delivered message everywhere, then restores it
		var first Message
		msgs, _ := e.svc.messagesAfter(context.Background(), conv, 0, 10)
		first = msgs[0]
		publish := func(typ ingest.Type, payload any) {
			t.Helper()
			ev, err := ingest.New(typ, e.site.ID, conv, ingest.Actor{Role: ingest.RoleModerator, ID: "mod-1"}, time.Now(), payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.producer.Publish(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
		publish(ingest.ModerationDecision, &ingest.ModerationDecisionPayload{ItemID: "i1", MessageID: first.ID, Decision: ingest.DecisionRemove})
		for _, c := range []*wsClient{vis, agent} {
			if f := c.expect("message_hidden", nil); f.str("message_id") != first.ID || f.num("seq") != 1 {
				t.Fatalf("message_hidden = %v", f)
			}
		}
		var rest struct{ Messages []Message }
		json.Unmarshal(grace.call("GET", "/api/chat/conversations/"+conv+"/messages", nil, 200, nil), &rest)
		if rest.Messages[0].Status != MsgHidden || rest.Messages[0].Text != "" {
			t.Fatalf("hidden message over REST = %+v", rest.Messages[0])
		}
		publish(ingest.ModerationDecision, &ingest.ModerationDecisionPayload{ItemID: "i1", MessageID: first.ID, Decision: ingest.DecisionApprove})
		if f := vis.expect("message_restored", nil); f.obj("message").str("text") != "hello" {
			t.Fatalf("message_restored = %v", f)
		}
		// a worker verdict that blocks hides too
		publish(ingest.ModerationVerdict, &ingest.ModerationVerdictPayload{MessageID: first.ID, Stage: "worker", Action: ingest.ActionBlock, Severity: 3})
		agent.expect("message_hidden", func(f frame) bool { return f.str("message_id") == first.ID })

		// ban: the visitor is told, disconnected, and refused until the ban ends
		until := ingest.At(time.Now().Add(time.Hour))
		publish(ingest.ModerationDecision, &ingest.ModerationDecisionPayload{ItemID: "i2", VisitorID: visitorID, Decision: ingest.DecisionBan, BanUntil: &until, Reason: "spam"})
		if f := vis.expect("banned", nil); f.str("reason") != "spam" {
			t.Fatalf("banned frame = %v", f)
		}
		if err := vis.closeErr(5 * time.Second); err == nil || !strings.Contains(err.Error(), "1008") {
			t.Fatalf("banned socket close = %v, want 1008", err)
		}
		var er apiError
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key, "token": tok}, 403, &er, map[string]string{"Origin": testOrigin})
		if er.Code != CodeBanned || er.Until == "" {
			t.Fatalf("session of a banned visitor: %+v", er)
		}
		status, body := dialFail(t, e.ws+"/ws/visitor?token="+tok, http.Header{"Origin": {testOrigin}})
		if status != 403 || body.Code != CodeBanned {
			t.Fatalf("socket of a banned visitor: %d %+v", status, body)
		}

		// a lifted ban lets the visitor back within 2 s
		publish(ingest.ModerationDecision, &ingest.ModerationDecisionPayload{VisitorID: visitorID, Decision: ingest.DecisionUnban, Reason: "appeal"})
		lifted := time.Now()
		poll(t, "the lifted ban to let the visitor in", 2*time.Second, func() bool {
			res, _ := postJSON(e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key, "token": tok}, map[string]string{"Origin": testOrigin})
			return res == http.StatusOK
		})
		t.Logf("visitor readmitted %s after the unban", time.Since(lifted).Round(time.Millisecond))
		again := e.visitorSocket(tok)
		again.send(map[string]any{"type": "send", "client_id": "after-unban", "text": "thanks"})
		again.expect("ack", byClient("after-unban"))
		if bans, err := e.store.ActiveBans(context.Background(), time.Now()); err != nil || len(bans) != 0 {
			t.Fatalf("stored bans after the unban: %v, %v", bans, err)
		}
	})
}

// TestQueueAndPresence: per-agent limit, waiting queue with positions,
// round robin, and an agent going offline returning conversations.
func TestQueueAndPresence(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.AgentLimit = 1 })
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		grace := e.staff("Grace", access.Agent)
		g := grace.socket()

		start := func(id string) (*wsClient, string) {
			tok, _ := e.visitorSession("")
			v := e.visitorSocket(tok)
			v.send(map[string]any{"type": "send", "client_id": id, "text": "help " + id})
			return v, v.expect("ack", byClient(id)).str("conversation_id")
		}
		_, c1 := start("one")
		g.expect("conversation", func(f frame) bool {
			return f.obj("conversation").str("id") == c1 && f.obj("conversation").obj("assignee").str("id") == grace.user.ID
		})
		v2, c2 := start("two")
		if f := v2.expect("queue", nil); f.num("position") != 1 || f.str("conversation_id") != c2 {
			t.Fatalf("second visitor queue frame = %v", f)
		}
		v3, c3 := start("three")
		if f := v3.expect("queue", nil); f.num("position") != 2 {
			t.Fatalf("third visitor queue frame = %v", f)
		}
		// Grace resolves the first: the second is hers, the third moves up.
		grace.call("POST", "/api/chat/conversations/"+c1+"/status", map[string]string{"status": "resolved"}, 200, nil)
		g.expect("conversation", func(f frame) bool {
			return f.obj("conversation").str("id") == c2 && f.obj("conversation").obj("assignee").str("id") == grace.user.ID
		})
		if f := v3.expect("queue", nil); f.num("position") != 1 || f.str("conversation_id") != c3 {
			t.Fatalf("third visitor after one left the queue = %v", f)
		}
		// A second agent comes online and takes the third (round robin with room).
		alan := e.staff("Alan", access.Agent)
		a := alan.socket()
		a.expect("conversation", func(f frame) bool {
			return f.obj("conversation").str("id") == c3 && f.obj("conversation").obj("assignee").str("id") == alan.user.ID
		})
		// Away keeps conversations; offline returns them to the queue.
		a.send(map[string]any{"type": "presence", "ref": "aw", "status": "away"})
		a.expect("ok", byRef("aw"))
		g.expect("presence", func(f frame) bool {
			return f.obj("agent").str("id") == alan.user.ID && f.obj("agent").str("status") == "away"
		})
		a.send(map[string]any{"type": "presence", "ref": "off", "status": "offline"})
		a.expect("ok", byRef("off"))
		v3.expect("queue", func(f frame) bool { return f.num("position") == 1 })
		chat.waitFor(t, "conversation.queued with reason agent_offline", hasEvent(ingest.ConversationQueued, c3, func(ev ingest.Event) bool {
			var p ingest.ConversationQueuedPayload
			ev.Into(&p)
			return p.Reason == "agent_offline"
		}))
		var agents struct{ Agents []AgentInfo }
		json.Unmarshal(grace.call("GET", "/api/chat/agents", nil, 200, nil), &agents)
		byID := map[string]AgentInfo{}
		for _, ag := range agents.Agents {
			byID[ag.ID] = ag
		}
		if byID[alan.user.ID].Status != StatusOffline || byID[grace.user.ID].Status != StatusOnline || byID[grace.user.ID].Load != 1 {
			t.Fatalf("agents = %+v", agents.Agents)
		}
		// A disconnected agent goes offline after the grace period.
		g.conn.Close()
		poll(t, "Grace to go offline after her socket closed", 5*time.Second, func() bool { return e.svc.hub.agentStatus(grace.user.ID) == StatusOffline })
		chat.waitFor(t, "Grace's conversation back in the queue", hasEvent(ingest.ConversationQueued, c2, func(ev ingest.Event) bool {
			var p ingest.ConversationQueuedPayload
			ev.Into(&p)
			return p.Reason == "agent_offline"
		}))
		// Every change of effective presence is an agent.presence event, in order per agent.
		presence := func(agent string, want ...string) {
			t.Helper()
			var got []string
			chat.waitFor(t, fmt.Sprintf("%d agent.presence events of %s", len(want), agent), func(evs []ingest.Event) bool {
				got = got[:0]
				for _, ev := range evs {
					if ev.Type != ingest.AgentPresence || ev.ConversationID != ingest.AgentKey(agent) {
						continue
					}
					var p ingest.AgentPresencePayload
					if err := ev.Into(&p); err != nil {
						t.Errorf("agent.presence payload: %v", err)
					}
					if ev.SiteID != "*" || ev.Actor.Role != ingest.RoleAgent || ev.Actor.ID != agent {
						t.Errorf("agent.presence envelope = site %q actor %+v", ev.SiteID, ev.Actor)
					}
					got = append(got, p.Previous+">"+p.Status)
				}
				return len(got) >= len(want)
			})
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("agent.presence of %s = %v, want %v", agent, got, want)
			}
		}
		presence(alan.user.ID, "offline>online", "online>away", "away>offline")
		presence(grace.user.ID, "offline>online", "online>offline")
	})
}

// TestBot answers from the FAQ as role bot and hands over on request.
func TestBot(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		in := SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, Settings: SiteSettings{Bot: BotSettings{
			Enabled: true, Name: "Robo", Greeting: "Hi, I am Robo.",
			FAQ: []FAQ{{Keywords: []string{"opening hours", "open"}, Answer: "We are open 9 to 5."}},
		}}}
		if _, err := e.svc.UpdateSite(context.Background(), e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "q1", "text": "What are your opening hours?"})
		conv := v.expect("ack", byClient("q1")).str("conversation_id")
		greet := v.expect("message", nil).obj("message")
		answer := v.expect("message", nil).obj("message")
		if greet.str("text") != "Hi, I am Robo." || answer.str("text") != "We are open 9 to 5." || answer.obj("author").str("role") != "bot" || answer.obj("author").str("name") != "Robo" {
			t.Fatalf("bot said %v then %v", greet, answer)
		}
		v.send(map[string]any{"type": "send", "client_id": "q2", "text": "I want to talk to a human please"})
		v.expect("ack", byClient("q2"))
		v.expect("conversation", func(f frame) bool { return f.obj("conversation").str("routing") == RoutingQueued })
		chat.waitFor(t, "the bot's events", func(evs []ingest.Event) bool {
			return hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool { return ev.Actor.Role == ingest.RoleBot })(evs) &&
				hasEvent(ingest.ConversationQueued, conv, func(ev ingest.Event) bool {
					var p ingest.ConversationQueuedPayload
					ev.Into(&p)
					return p.Reason == "handover"
				})(evs)
		})
	})
}

// TestIdentityVerification: a verified user is the same visitor on any
// device; a wrong hash is refused.
func TestIdentityVerification(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		session := func(body map[string]any, want int) sessionResponse {
			var out sessionResponse
			body["site_key"] = e.site.Key
			doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", body, want, &out, map[string]string{"Origin": testOrigin})
			return out
		}
		hash := IdentityHash(e.site.Secret, "user-42")
		a := session(map[string]any{"user": map[string]any{"id": "user-42", "name": "Ada", "email": "ada@example.com", "hash": hash}}, 200)
		b := session(map[string]any{"user": map[string]any{"id": "user-42", "hash": hash}}, 200)
		if !a.Verified || a.VisitorID != b.VisitorID {
			t.Fatalf("verified sessions: %+v / %+v", a, b)
		}
		var er apiError
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key, "user": map[string]any{"id": "user-42", "hash": strings.Repeat("0", 64)}}, 401, &er, map[string]string{"Origin": testOrigin})
		if er.Code != CodeIdentity {
			t.Fatalf("wrong hash: %+v", er)
		}
		anon := session(map[string]any{}, 200)
		if anon.Verified || anon.VisitorID == a.VisitorID {
			t.Fatalf("anonymous session = %+v", anon)
		}
	})
}

// TestRoutingSurvivesAFailedStaffRead: a staff read that fails (the staff
// store slow or down for a moment) is not remembered as "this agent works
// on no site"; routing tries again and the waiting visitor gets the agent
// within seconds, not after the staff cache's 30 s.
func TestRoutingSurvivesAFailedStaffRead(t *testing.T) {
	e := newEnv(t, "sqlite")
	grace := e.staff("Grace", access.Agent)
	g := grace.socket()
	e.staffFaults.failReads(grace.user.ID, 1)
	tok, _ := e.visitorSession("")
	v := e.visitorSocket(tok)
	v.send(map[string]any{"type": "send", "client_id": "first", "text": "hello?"})
	conv := v.expect("ack", byClient("first")).str("conversation_id")
	g.expectWithin(10*time.Second, "conversation", func(f frame) bool {
		return f.obj("conversation").str("id") == conv && f.obj("conversation").obj("assignee").str("id") == grace.user.ID
	})
	if n := e.staffFaults.pending(grace.user.ID); n != 0 {
		t.Fatalf("the injected failure was not hit (%d left): the test proves nothing", n)
	}
}
