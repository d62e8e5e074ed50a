package main

import (
	"net/http"
	"testing"
)

// TestSessionsEndOnEveryNode runs separate processes on one PostgreSQL: a
// staff member signs out through the dashboard node, and their agent
// sockets on two chat nodes and their live analytics socket on the
// analytics node close at once; an admin's role change does the same to
// another user. Every node runs with a ten-minute --staff-recheck, so
// only the notice over the live bus can close them within waitClosed's
// deadline.
func TestSessionsEndOnEveryNode(t *testing.T) {
	c := startCluster(t)
	slow := []string{"--staff-recheck", "10m"}
	c.start("dashboard-1", "dashboard", "dashboard", slow...)
	n1 := c.start("chat-1", "chat", "chat", slow...)
	n2 := c.start("chat-2", "chat", "chat", slow...)
	c.start("analytics-1", "analytics", "analytics", slow...)
	p := c.asE2E()
	origin := c.gateway

	// openAll opens the user's sockets on every node that holds staff
	// sockets; the analytics socket goes through the gateway (its origin
	// check compares with the host the browser used).
	openAll := func(u *staffClient) []*socket {
		live := dialSocket(t, wsURL(c.gateway, "/ws/analytics?tz=UTC"), http.Header{"Origin": {origin}, "Cookie": {u.cookieHeader()}})
		live.expect("first overview", func(f map[string]any) bool { return f["tz"] == "UTC" })
		return []*socket{staffOn(t, n1, u, origin), staffOn(t, n2, u, origin), live}
	}
	names := []string{"the agent socket on chat-1", "the agent socket on chat-2", "the analytics socket"}

	p.createStaff("kim@sessions.test", "Kim", "agent", "supervisor")
	kim := signIn(t, c.gateway, "kim@sessions.test", e2eStaffPassword)
	sockets := openAll(kim)
	kim.call("POST", "/api/auth/logout", nil, http.StatusNoContent, nil)
	for i, s := range sockets {
		waitClosed(t, s, names[i]+" after sign-out on the dashboard node")
	}

	id := p.createStaff("lee@sessions.test", "Lee", "agent", "supervisor")
	lee := signIn(t, c.gateway, "lee@sessions.test", e2eStaffPassword)
	sockets = openAll(lee)
	p.admin.call("PATCH", "/api/admin/users/"+id, map[string]any{"roles": []string{"moderator"}}, http.StatusOK, nil)
	for i, s := range sockets {
		waitClosed(t, s, names[i]+" after the role change on the dashboard node")
	}
}
