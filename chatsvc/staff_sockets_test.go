package chatsvc

import (
	"context"
	"net/http"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// accessHook is what cmd/parley registers: access's notifications close
// this node's staff sockets.
type accessHook struct{ s *Service }

func (h accessHook) SessionEnded(id, reason string) { h.s.CloseSessionSockets(id, reason) }
func (h accessHook) UserChanged(id, reason string)  { h.s.CloseUserSockets(id, reason) }

// expectSessionEnd waits for the session_ended frame and the close.
func expectSessionEnd(t *testing.T, c *wsClient, reason string) {
	t.Helper()
	f := c.expect("session_ended", nil)
	if reason != "" && f.str("reason") != reason {
		t.Fatalf("session_ended reason %q, want %q", f.str("reason"), reason)
	}
	err := c.closeErr(5 * time.Second)
	var ce *fws.CloseError
	if !asCloseError(err, &ce) || ce.Code != fws.ClosePolicyViolation {
		t.Fatalf("socket ended with %v, want close 1008", err)
	}
}

func asCloseError(err error, ce **fws.CloseError) bool {
	c, ok := err.(*fws.CloseError)
	if ok {
		*ce = c
	}
	return ok
}

// TestStaffSocketsEndWithTheSession: an agent's socket closes at once
// when the agent signs out, when an admin changes their roles or password
// or deletes them; no visitor message reaches it afterwards; a session
// ended behind this node's back (another node, expiry) is noticed by the
// periodic re-check.
func TestStaffSocketsEndWithTheSession(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		// The re-check runs at its default (15 s) here, so that what closes
		// each socket below is the notice, with its reason.
		e := newEnv(t, backend)
		e.users.Listen(accessHook{e.svc})
		ctx := context.Background()

		// Sign-out: the socket ends and later visitor messages never reach it.
		ann := e.staff("Ann Agent", access.Agent)
		sock := ann.socket()
		other := e.staff("Other Agent", access.Agent).socket()
		ann.call("POST", "/api/auth/logout", nil, http.StatusNoContent, nil)
		expectSessionEnd(t, sock, access.ReasonSignedOut)
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "after-logout", "text": "secret order details"})
		v.expect("ack", byClient("after-logout"))
		other.expect("conversation", nil) // another agent's socket still works
		select {
		case f := <-sock.frames:
			t.Fatalf("a signed-out agent's socket received %v", f)
		default:
		}

		// Role removed, password changed, account deleted: every socket of the user ends.
		for _, change := range []struct {
			name   string
			reason string
			apply  func(u access.User) error
		}{
			{"roles", access.ReasonAccountChanged, func(u access.User) error {
				return e.users.UpdateUser(ctx, u.ID, u.Name, []access.Role{access.Moderator}, "", "")
			}},
			{"password", access.ReasonPasswordChanged, func(u access.User) error {
				return e.users.UpdateUser(ctx, u.ID, u.Name, u.Roles, "", "a new password 1")
			}},
			{"deleted", access.ReasonAccountDeleted, func(u access.User) error { return e.users.DeleteUser(ctx, u.ID) }},
		} {
			st := e.staff("Bob "+change.name, access.Agent)
			a, b := st.socket(), st.socket()
			if err := change.apply(st.user); err != nil {
				t.Fatal(err)
			}
			expectSessionEnd(t, a, change.reason)
			expectSessionEnd(t, b, change.reason)
		}

		// A session that ends without telling this node (another node's
		// sign-out, expiry) is caught by the periodic re-check.
		e = newEnv(t, backend, func(c *Config) { c.StaffRecheck = 200 * time.Millisecond })
		cy := e.staff("Cy Agent", access.Agent)
		s1 := cy.socket()
		token := ""
		for _, c := range cy.jar.Cookies(mustURL(e.base)) {
			if c.Name == access.CookieName {
				token = c.Value
			}
		}
		// EndSession on a directory without listeners, as another node would.
		otherNode := access.NewDirectory(e.staffStore)
		if err := otherNode.EndSession(ctx, token); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		expectSessionEnd(t, s1, "session ended")
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("the re-check took %s", d)
		}
		// Reconnecting with the ended session is refused.
		h := http.Header{}
		h.Set("Origin", e.base)
		h.Set("Cookie", access.CookieName+"="+token)
		if code, _ := dialFail(t, e.ws+"/ws/agent", h); code != http.StatusUnauthorized {
			t.Fatalf("reconnect with an ended session = %d, want 401", code)
		}
	})
}
