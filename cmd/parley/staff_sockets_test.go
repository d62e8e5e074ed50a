package main

import (
	"net/http"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
)

// waitClosed waits until a socket's reader ends (the server closed it).
func waitClosed(t *testing.T, s *socket, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.frames:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("%s stayed open", what)
		}
	}
}

// TestStaffSocketsCloseOnSignOut runs `parley serve`: signing out closes
// the staff member's /ws/agent and /ws/analytics at once, and an admin
// removing a role closes the sockets of the user it was removed from.
func TestStaffSocketsCloseOnSignOut(t *testing.T) {
	p := startE2E(t)
	p.createStaff("both@sockets.test", "Both Roles", "agent", "supervisor")
	both := signIn(t, p.base, "both@sockets.test", e2eStaffPassword)
	header := http.Header{"Origin": {p.base}, "Cookie": {both.cookieHeader()}}
	agent := agentSocket(t, both)
	live := dialSocket(t, wsURL(p.base, "/ws/analytics?tz=UTC"), header)
	live.expect("first overview", func(f map[string]any) bool { return f["tz"] == "UTC" })
	both.call("POST", "/api/auth/logout", nil, http.StatusNoContent, nil)
	waitClosed(t, agent, "the agent socket after sign-out")
	waitClosed(t, live, "the analytics socket after sign-out")
	if _, res, err := fws.DefaultDialer.Dial(wsURL(p.base, "/ws/agent"), header); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnect after sign-out: %v, want 401", err)
	}

	id := p.createStaff("demoted@sockets.test", "Demoted", "agent", "supervisor")
	demoted := signIn(t, p.base, "demoted@sockets.test", e2eStaffPassword)
	agent = agentSocket(t, demoted)
	live = dialSocket(t, wsURL(p.base, "/ws/analytics?tz=UTC"), http.Header{"Origin": {p.base}, "Cookie": {demoted.cookieHeader()}})
	live.expect("first overview", func(f map[string]any) bool { return f["tz"] == "UTC" })
	p.admin.call("PATCH", "/api/admin/users/"+id, map[string]any{"roles": []string{"moderator"}}, http.StatusOK, nil)
	waitClosed(t, agent, "the agent socket after the role change")
	waitClosed(t, live, "the analytics socket after the role change")
	if code, _ := demoted.request("GET", "/ws/agent", nil, false); code != http.StatusForbidden {
		t.Fatalf("the demoted user's agent socket request = %d, want 403", code)
	}
}
