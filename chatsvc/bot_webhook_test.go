package chatsvc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/egress"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// lockedBuffer is a log sink the test can read while the service writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWebhookBot: an external bot (an HTTP endpoint) answers a FAQ with a
// signed request; its reply reaches the visitor as role bot and Kafka as a
// bot message. When the endpoint fails, the conversation goes to a human
// with a log line naming the failure.
func TestWebhookBot(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		logs := &lockedBuffer{}
		// The bot runs on this machine: the operator allows 127.0.0.1 (egress).
		e := newEnv(t, backend, func(c *Config) {
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
			c.Egress = &egress.Policy{AllowHosts: []string{"127.0.0.1"}}
		})
		if e.site.WebhookSecret == "" || e.site.WebhookSecret == e.site.Secret {
			t.Fatalf("site has webhook secret %q; want its own, not the identity secret", e.site.WebhookSecret)
		}
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		var mu sync.Mutex
		var failing bool
		var badSignature error
		bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mac := hmac.New(sha256.New, []byte(e.site.WebhookSecret))
			mac.Write(body)
			mu.Lock()
			defer mu.Unlock()
			if got := r.Header.Get("X-Parley-Signature"); got != hex.EncodeToString(mac.Sum(nil)) {
				badSignature = io.ErrUnexpectedEOF
			}
			if failing {
				http.Error(w, "bot is down", http.StatusBadGateway)
				return
			}
			var req BotRequest
			if err := json.Unmarshal(body, &req); err != nil || req.ConversationID == "" || req.SiteID != e.site.ID {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			answer := BotReply{Text: "I only know about shipping.", Handover: true}
			if strings.Contains(strings.ToLower(req.Text), "shipping") {
				answer = BotReply{Text: "Shipping takes 2 days."}
			}
			json.NewEncoder(w).Encode(answer)
		}))
		defer bot.Close()
		in := SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, Settings: SiteSettings{Bot: BotSettings{
			Enabled: true, Name: "Hookbot", WebhookURL: bot.URL}}}
		if _, err := e.svc.UpdateSite(context.Background(), e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		grace := e.staff("Grace Hopper", access.Agent)
		agent := grace.socket()

		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "q1", "text": "How long does shipping take?"})
		conv := v.expect("ack", byClient("q1")).str("conversation_id")
		answer := v.expect("message", func(f frame) bool { return f.obj("message").obj("author").str("role") == "bot" }).obj("message")
		if answer.str("text") != "Shipping takes 2 days." || answer.obj("author").str("name") != "Hookbot" {
			t.Fatalf("bot answered %v", answer)
		}
		chat.waitFor(t, "the webhook bot's message as role bot", hasEvent(ingest.MessageSent, conv, func(ev ingest.Event) bool {
			var p ingest.MessageSentPayload
			return ev.Actor.Role == ingest.RoleBot && ev.Into(&p) == nil && p.Text == "Shipping takes 2 days."
		}))

		// The endpoint fails: the visitor is told a human is coming, the
		// conversation leaves the bot for a human, and the log says why.
		mu.Lock()
		failing = true
		mu.Unlock()
		v.send(map[string]any{"type": "send", "client_id": "q2", "text": "And returns?"})
		v.expect("ack", byClient("q2"))
		v.expect("message", func(f frame) bool {
			m := f.obj("message")
			return m.obj("author").str("role") == "bot" && strings.Contains(m.str("text"), "human")
		})
		agent.expect("conversation", func(f frame) bool {
			c := f.obj("conversation")
			return c.str("id") == conv && c.str("routing") != RoutingBot
		})
		chat.waitFor(t, "the handover", hasEvent(ingest.ConversationQueued, conv, func(ev ingest.Event) bool {
			var p ingest.ConversationQueuedPayload
			return ev.Into(&p) == nil && p.Reason == "handover"
		}))
		poll(t, "a log line naming the failed webhook", 5*time.Second, func() bool {
			l := logs.String()
			return strings.Contains(l, "bot failed; handing over") && strings.Contains(l, "status 502") && strings.Contains(l, conv)
		})
		mu.Lock()
		defer mu.Unlock()
		if badSignature != nil {
			t.Fatal("a webhook request carried a wrong X-Parley-Signature")
		}
	})
}
