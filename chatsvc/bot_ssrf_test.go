package chatsvc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/egress"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestBotWebhookURLRefusesInternalAddresses: an admin cannot point a bot
// webhook at loopback, the metadata service or a private network; the 400
// names the field. An operator-allowed host is accepted.
func TestBotWebhookURLRefusesInternalAddresses(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		admin := e.staff("Ada Admin", access.Admin)
		put := func(url string, want int) string {
			body := map[string]any{"name": "Shop", "allowed_origins": []string{testOrigin},
				"settings": map[string]any{"bot": map[string]any{"enabled": true, "webhook_url": url}}}
			return string(admin.call("PUT", "/api/chat/sites/"+e.site.ID, body, want, nil))
		}
		for _, u := range []string{"http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/bot",
			"http://[::1]/bot", "http://localhost:8080/bot", "http://100.100.100.200/"} {
			if body := put(u, http.StatusBadRequest); !strings.Contains(body, "bot.webhook_url") || !strings.Contains(body, "internal address") {
				t.Errorf("PUT webhook_url %s: %s; want a 400 naming bot.webhook_url", u, body)
			}
		}
		var created map[string]any
		admin.call("POST", "/api/chat/sites", map[string]any{"name": "New", "settings": map[string]any{"bot": map[string]any{"webhook_url": "http://127.0.0.1/x"}}}, http.StatusBadRequest, &created)
		if site, _ := e.svc.Site(e.site.ID); site.Settings.Bot.WebhookURL != "" {
			t.Fatalf("a refused URL was saved: %q", site.Settings.Bot.WebhookURL)
		}
	})
	t.Run("allowed host", func(t *testing.T) {
		e := newEnv(t, "sqlite", func(c *Config) { c.Egress = &egress.Policy{AllowHosts: []string{"bots.internal", "127.0.0.1"}} })
		in := SiteInput{Name: "Shop", Settings: SiteSettings{Bot: BotSettings{Enabled: true, WebhookURL: "http://127.0.0.1:9/hook"}}}
		if _, err := e.svc.UpdateSite(context.Background(), e.site.ID, in, "admin"); err != nil {
			t.Fatalf("an operator-allowed host was refused: %v", err)
		}
	})
}

// TestBotWebhookRedirectAndSecretRotation: the webhook's redirect is not
// followed (the target never sees the body or its signature; the visitor
// is handed to a human), and a rotated webhook secret signs the next call
// while the identity secret stays.
func TestBotWebhookRedirectAndSecretRotation(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Egress = &egress.Policy{AllowHosts: []string{"127.0.0.1"}} })
		var stolen atomic.Int64
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stolen.Add(1)
			json.NewEncoder(w).Encode(BotReply{Text: "from the redirect target"})
		}))
		defer target.Close()
		var mu sync.Mutex
		redirect := true
		var lastSig string
		var lastBody []byte
		bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			lastSig, lastBody = r.Header.Get("X-Parley-Signature"), body
			if redirect {
				http.Redirect(w, r, target.URL+"/collect", http.StatusTemporaryRedirect)
				return
			}
			json.NewEncoder(w).Encode(BotReply{Text: "signed ok"})
		}))
		defer bot.Close()
		in := SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, Settings: SiteSettings{Bot: BotSettings{Enabled: true, WebhookURL: bot.URL}}}
		if _, err := e.svc.UpdateSite(context.Background(), e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "r1", "text": "hello"})
		v.expect("ack", byClient("r1"))
		v.expect("message", func(f frame) bool {
			m := f.obj("message")
			return m.obj("author").str("role") == "bot" && strings.Contains(m.str("text"), "human")
		})
		if stolen.Load() != 0 {
			t.Fatalf("the redirect target was called %d times", stolen.Load())
		}

		admin := e.staff("Ada Admin", access.Admin)
		before, _ := e.svc.Site(e.site.ID)
		var rotated Site
		admin.call("POST", "/api/chat/sites/"+e.site.ID+"/webhook-secret", nil, http.StatusOK, &rotated)
		if rotated.WebhookSecret == before.WebhookSecret || rotated.Secret != before.Secret {
			t.Fatalf("rotation: webhook %q→%q, identity %q→%q; want a new webhook secret and the same identity secret",
				before.WebhookSecret, rotated.WebhookSecret, before.Secret, rotated.Secret)
		}
		mu.Lock()
		redirect = false
		mu.Unlock()
		// A new visitor starts a new bot conversation.
		tok2, _ := e.visitorSession("")
		v2 := e.visitorSocket(tok2)
		v2.send(map[string]any{"type": "send", "client_id": "r2", "text": "hello again"})
		v2.expect("message", func(f frame) bool { return f.obj("message").str("text") == "signed ok" })
		mu.Lock()
		defer mu.Unlock()
		mac := hmac.New(sha256.New, []byte(rotated.WebhookSecret))
		mac.Write(lastBody)
		if lastSig != hex.EncodeToString(mac.Sum(nil)) {
			t.Fatal("the webhook call after rotation is not signed with the new webhook secret")
		}
	})
}
