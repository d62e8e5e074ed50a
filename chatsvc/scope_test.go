package chatsvc

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestStaffSeeOnlyTheirSites: with two sites, an agent of the first sees
// and acts on its conversations only (REST, socket frames, fan-out,
// canned replies, agent list), routing never gives them the second
// site's conversations, and an admin sees both.
func TestStaffSeeOnlyTheirSites(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		other, err := e.svc.CreateSite(ctx, SiteInput{Name: "Other", AllowedOrigins: []string{testOrigin}}, "admin")
		if err != nil {
			t.Fatal(err)
		}
		ann := e.staff("Ann", access.Agent)
		if err := e.users.SetSites(ctx, ann.user.ID, []string{e.site.ID}); err != nil {
			t.Fatal(err)
		}
		annSock := ann.socket()
		annSock.send(map[string]any{"type": "inbox", "ref": "i", "scope": "all"})
		annSock.expect("ok", byRef("i"))
		otto := e.staff("Otto", access.Agent)
		if err := e.users.SetSites(ctx, otto.user.ID, []string{other.ID}); err != nil {
			t.Fatal(err)
		}
		admin := e.staff("Ada", access.Admin)

		// A visitor of the other site: nobody online there yet (Ann works
		// on the first site), so the widget says so and the message waits.
		var sess sessionResponse
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": other.Key}, 200, &sess, map[string]string{"Origin": testOrigin})
		h := http.Header{}
		h.Set("Origin", testOrigin)
		v := dial(t, e.ws+"/ws/visitor?token="+sess.Token, h)
		if hello := v.expect("hello", nil); hello["online"] != false {
			t.Fatalf("the other site's widget says someone is online: %v", hello)
		}
		v.send(map[string]any{"type": "send", "client_id": "o1", "text": "order 77 is late"})
		conv := v.expect("ack", byClient("o1")).str("conversation_id")
		time.Sleep(300 * time.Millisecond) // routing had its chance
		meta, _ := e.svc.convMeta(ctx, conv)
		if meta.Assignee != "" {
			t.Fatalf("routing gave the other site's conversation to %s", meta.Assignee)
		}
		annSock.none("conversation", func(f frame) bool { return f.obj("conversation").str("id") == conv }, 300*time.Millisecond)

		// REST: listing, reading, acting.
		var list struct{ Conversations []Conversation }
		ann.call("GET", "/api/chat/conversations?status=all", nil, 200, &list)
		if len(list.Conversations) != 0 {
			t.Fatalf("Ann lists %d conversations of another site", len(list.Conversations))
		}
		ann.call("GET", "/api/chat/conversations?site_id="+other.ID, nil, http.StatusForbidden, nil)
		base := "/api/chat/conversations/" + conv
		ann.call("GET", base, nil, http.StatusForbidden, nil)
		ann.call("GET", base+"/messages", nil, http.StatusForbidden, nil)
		ann.call("POST", base+"/assign", map[string]string{"agent_id": ann.user.ID}, http.StatusForbidden, nil)
		ann.call("POST", base+"/status", map[string]string{"status": "resolved"}, http.StatusForbidden, nil)
		ann.call("POST", base+"/transfer", map[string]string{"to_team_id": "t"}, http.StatusForbidden, nil)
		// Socket frames.
		for _, typ := range []string{"subscribe", "resume", "send", "typing", "delivered", "read"} {
			annSock.send(map[string]any{"type": typ, "ref": typ, "conversation_id": conv, "client_id": "x-" + typ, "text": "hi", "up_to_seq": 1})
			if f := annSock.expect("error", byRef(typ)); f.str("code") != CodeForbidden {
				t.Errorf("%s on another site's conversation: %v", typ, f)
			}
		}
		// An admin may not hand it to an agent of another site, but sees it.
		admin.call("POST", base+"/assign", map[string]string{"agent_id": ann.user.ID}, http.StatusBadRequest, nil)
		admin.call("GET", base, nil, 200, nil)

		// Otto comes online: routing gives him the conversation.
		ottoSock := otto.socket()
		ottoSock.expect("conversation", func(f frame) bool {
			c := f.obj("conversation")
			return c.str("id") == conv && c.obj("assignee").str("id") == otto.user.ID
		})
		// Presence is scoped too: Otto's changes reach the admin, not Ann,
		// and a new socket's list of agents holds only those Ann may see.
		adminSock := admin.socket()
		ottoSock.send(map[string]any{"type": "presence", "ref": "aw", "status": "away"})
		ottoSock.expect("ok", byRef("aw"))
		adminSock.expect("presence", func(f frame) bool {
			return f.obj("agent").str("id") == otto.user.ID && f.obj("agent").str("status") == "away"
		})
		annSock.none("presence", func(f frame) bool { return f.obj("agent").str("id") == otto.user.ID }, 300*time.Millisecond)
		_, annHello := ann.socketHello()
		for _, a := range annHello["agents"].([]any) {
			if a.(map[string]any)["id"] == otto.user.ID {
				t.Fatal("Ann's socket lists an agent of another site")
			}
		}
		if _, adminHello := admin.socketHello(); !strings.Contains(fmt.Sprint(adminHello["agents"]), otto.user.ID) {
			t.Fatal("the admin's socket does not list Otto")
		}
		// Agents and canned replies are scoped too.
		var agents struct{ Agents []AgentInfo }
		ann.call("GET", "/api/chat/agents", nil, 200, &agents)
		for _, a := range agents.Agents {
			if a.ID == otto.user.ID {
				t.Fatal("Ann sees an agent of another site")
			}
		}
		sup := e.staff("Sue", access.Supervisor)
		if err := e.users.SetSites(ctx, sup.user.ID, []string{e.site.ID}); err != nil {
			t.Fatal(err)
		}
		sup.call("POST", "/api/chat/canned", map[string]string{"site_id": other.ID, "shortcut": "x", "text": "y"}, http.StatusForbidden, nil)
		sup.call("POST", "/api/chat/canned", map[string]string{"shortcut": "global", "text": "y"}, http.StatusForbidden, nil)
		var hello Canned
		sup.call("POST", "/api/chat/canned", map[string]string{"site_id": e.site.ID, "shortcut": "hello", "text": "Hello!"}, http.StatusCreated, &hello)
		var theirs Canned
		admin.call("POST", "/api/chat/canned", map[string]string{"site_id": other.ID, "shortcut": "bye", "text": "Bye"}, http.StatusCreated, &theirs)
		sup.call("DELETE", "/api/chat/canned/"+theirs.ID, nil, http.StatusForbidden, nil)
		var canned struct{ Canned []Canned }
		ann.call("GET", "/api/chat/canned", nil, 200, &canned)
		if len(canned.Canned) != 1 || canned.Canned[0].ID != hello.ID {
			t.Fatalf("Ann's canned replies: %+v", canned.Canned)
		}
		var mine struct{ Sites []siteName }
		ann.call("GET", "/api/chat/my-sites", nil, 200, &mine)
		if len(mine.Sites) != 1 || mine.Sites[0].ID != e.site.ID {
			t.Fatalf("Ann's sites: %+v", mine.Sites)
		}
		admin.call("GET", "/api/chat/my-sites", nil, 200, &mine)
		if len(mine.Sites) != 2 {
			t.Fatalf("the admin's sites: %+v", mine.Sites)
		}
		// A staff member on no site sees nothing.
		none := e.staff("Nobody", access.Agent)
		if err := e.users.SetSites(ctx, none.user.ID, nil); err != nil {
			t.Fatal(err)
		}
		none.call("GET", "/api/chat/conversations?status=all", nil, 200, &list)
		if len(list.Conversations) != 0 {
			t.Fatalf("a staff member on no site lists %d conversations", len(list.Conversations))
		}
	})
}
