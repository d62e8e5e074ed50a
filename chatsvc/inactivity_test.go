package chatsvc

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestInactivityCloses: a site's inactivity_timeout_s resolves its
// conversations nobody touched for that long with reason "inactive"
// (conversation.resolved on Kafka, the agent's console told); a
// conversation with recent activity, and one on a site with the default
// 24 h, stay open; the targets are validated and published in
// site.updated.
func TestInactivityCloses(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		chat := readTopic(t, e.brokers, ingest.TopicChat, 2)
		admin := e.staff("Ada Admin", access.Admin)

		// Bad targets are refused with a message naming the field.
		for field, v := range map[string]int{"first_response_target_s": 5, "reply_target_s": 100000, "inactivity_timeout_s": 60} {
			body := map[string]any{"name": "Shop", "allowed_origins": []string{testOrigin}, "settings": map[string]any{field: v}}
			got := string(admin.call("PUT", "/api/chat/sites/"+e.site.ID, body, http.StatusBadRequest, nil))
			if !strings.Contains(got, field) || !strings.Contains(got, "0 uses the default") {
				t.Errorf("%s = %d: %s", field, v, got)
			}
		}
		in := SiteInput{Name: e.site.Name, AllowedOrigins: e.site.AllowedOrigins, Settings: e.site.Settings}
		in.Settings.InactivityTimeoutSeconds, in.Settings.FirstResponseTargetSeconds, in.Settings.ReplyTargetSeconds = 600, 120, 90
		if _, err := e.svc.UpdateSite(ctx, e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		chat.waitFor(t, "site.updated with the targets", hasEvent(ingest.SiteUpdated, ingest.SiteKey(e.site.ID), func(ev ingest.Event) bool {
			var p ingest.SiteUpdatedPayload
			ev.Into(&p)
			return p.InactivityTimeoutSeconds == 600 && p.FirstResponseTargetSeconds == 120 && p.ReplyTargetSeconds == 90
		}))
		other, err := e.svc.CreateSite(ctx, SiteInput{Name: "Patient", AllowedOrigins: []string{testOrigin}}, "admin")
		if err != nil {
			t.Fatal(err)
		}
		grace := e.staff("Grace Hopper", access.Agent)
		agent := grace.socket()

		tokA, _ := e.visitorSession("")
		a := e.visitorSocket(tokA)
		a.send(map[string]any{"type": "send", "client_id": "a1", "text": "anyone?"})
		convA := a.expect("ack", byClient("a1")).str("conversation_id")

		var sess sessionResponse
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": other.Key}, 200, &sess, map[string]string{"Origin": testOrigin})
		b := e.visitorSocket(sess.Token)
		b.send(map[string]any{"type": "send", "client_id": "b1", "text": "no hurry"})
		convB := b.expect("ack", byClient("b1")).str("conversation_id")

		// Nine minutes on nothing is idle long enough; eleven minutes on A is.
		if n, err := e.svc.closeInactive(ctx, time.Now().Add(9*time.Minute)); err != nil || n != 0 {
			t.Fatalf("after 9 minutes closed %d (%v), want 0", n, err)
		}
		n, err := e.svc.closeInactive(ctx, time.Now().Add(11*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("after 11 minutes closed %d (%v), want 1", n, err)
		}
		agent.expect("conversation", func(f frame) bool {
			return f.obj("conversation").str("id") == convA && f.obj("conversation").str("status") == StatusResolved
		})
		chat.waitFor(t, "conversation.resolved with reason inactive", hasEvent(ingest.ConversationResolved, convA, func(ev ingest.Event) bool {
			var p ingest.ConversationResolvedPayload
			ev.Into(&p)
			return p.Reason == "inactive" && ev.Actor.Role == ingest.RoleSystem
		}))
		for id, want := range map[string]string{convA: StatusResolved, convB: StatusOpen} {
			c, err := e.store.Conversation(ctx, id)
			if err != nil || c.Status != want {
				t.Fatalf("conversation %s: %+v %v, want %s", id, c, err, want)
			}
		}
		// The default 24 h applies to the other site.
		if n, err := e.svc.closeInactive(ctx, time.Now().Add(23*time.Hour)); err != nil || n != 0 {
			t.Fatalf("after 23 hours closed %d (%v), want 0", n, err)
		}
		if n, err := e.svc.closeInactive(ctx, time.Now().Add(25*time.Hour)); err != nil || n != 1 {
			t.Fatalf("after 25 hours closed %d (%v), want 1 (the default timeout)", n, err)
		}
		// The visitor of the closed conversation writes again: it reopens as usual.
		a.send(map[string]any{"type": "send", "client_id": "a2", "text": "still there?"})
		if got := a.expect("ack", byClient("a2")).str("conversation_id"); got != convA {
			t.Fatalf("a message after the inactivity close went to %s, want the reopened %s", got, convA)
		}
	})
}
