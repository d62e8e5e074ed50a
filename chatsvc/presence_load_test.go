package chatsvc

import (
	"fmt"
	"testing"

	"github.com/parleychat/parley/access"
)

// Messages in an assigned conversation leave its agent's load as it was,
// so other agents get no presence frame for them: before, every message
// told every agent on the site about the assignee's unchanged load.
func TestMessagesSendNoPresenceFrames(t *testing.T) {
	e := newEnv(t, "sqlite")
	grace := e.staff("Grace", access.Agent)
	g := grace.socket()
	tok, _ := e.visitorSession("")
	v := e.visitorSocket(tok)
	v.send(map[string]any{"type": "send", "client_id": "m0", "text": "hello"})
	conv := v.expect("ack", byClient("m0")).str("conversation_id")
	g.expect("conversation", func(f frame) bool {
		return f.obj("conversation").str("id") == conv && f.obj("conversation").obj("assignee").str("id") == grace.user.ID
	})
	alan := e.staff("Alan", access.Agent)
	a := alan.socket()
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("m%d", i)
		v.send(map[string]any{"type": "send", "client_id": id, "text": "message " + id})
		g.expect("message", func(f frame) bool { return f.obj("message").str("client_id") == id })
	}
	// Grace going away is news: Alan's frames up to it show what the
	// messages sent him.
	g.send(map[string]any{"type": "presence", "ref": "aw", "status": "away"})
	g.expect("ok", byRef("aw"))
	unchanged := 0
	a.expect("presence", func(f frame) bool {
		if f.obj("agent").str("id") != grace.user.ID {
			return false
		}
		if f.obj("agent").str("status") == StatusAway {
			return true
		}
		unchanged++
		return false
	})
	if unchanged > 0 {
		t.Fatalf("Alan got %d presence frames about Grace while only messages moved in her conversation", unchanged)
	}
}
