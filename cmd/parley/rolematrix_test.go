package main

import (
	"net/http"
	"slices"
	"testing"
)

// apiRoute is one route of the chat, analytics or moderation API with the
// roles that may call it. An allowed call must not be refused (401/403);
// when ok is set it must answer exactly that status.
type apiRoute struct {
	method, path string
	allow        []string // roles; admin holds every role and is always allowed
	body         any
	ok           int
}

const bogusID = "0193a4c0-11aa-7bcd-8e00-111122223333"

func chatRoutes() []apiRoute {
	agent := []string{"agent"}
	agentOrSup := []string{"agent", "supervisor"}
	sup := []string{"supervisor"}
	admin := []string{}
	return []apiRoute{
		{method: "GET", path: "/api/chat/conversations", allow: agent, ok: http.StatusOK},
		{method: "GET", path: "/api/chat/conversations/" + bogusID, allow: agentOrSup, ok: http.StatusNotFound},
		{method: "GET", path: "/api/chat/conversations/" + bogusID + "/messages", allow: agentOrSup, ok: http.StatusNotFound},
		{method: "POST", path: "/api/chat/conversations/" + bogusID + "/assign", allow: agent, body: map[string]any{"agent_id": ""}},
		{method: "POST", path: "/api/chat/conversations/" + bogusID + "/transfer", allow: agent, body: map[string]any{"to_team_id": "t1"}},
		{method: "POST", path: "/api/chat/conversations/" + bogusID + "/status", allow: agent, body: map[string]any{"status": "resolved"}},
		{method: "POST", path: "/api/chat/attachments", allow: agent, body: map[string]any{}},
		{method: "GET", path: "/api/chat/agents", allow: agentOrSup, ok: http.StatusOK},
		{method: "GET", path: "/api/chat/canned", allow: agentOrSup, ok: http.StatusOK},
		{method: "POST", path: "/api/chat/canned", allow: sup, body: map[string]any{"shortcut": "x", "text": "y"}},
		{method: "PUT", path: "/api/chat/canned/" + bogusID, allow: sup, body: map[string]any{"shortcut": "x2", "text": "y"}, ok: http.StatusNotFound},
		{method: "DELETE", path: "/api/chat/canned/" + bogusID, allow: sup, ok: http.StatusNoContent},
		{method: "GET", path: "/api/chat/sites", allow: admin, ok: http.StatusOK},
		{method: "POST", path: "/api/chat/sites", allow: admin, body: map[string]any{"name": "Matrix", "allowed_origins": []string{"https://matrix.example"}}},
		{method: "GET", path: "/api/chat/sites/" + bogusID, allow: admin, ok: http.StatusNotFound},
		{method: "PUT", path: "/api/chat/sites/" + bogusID, allow: admin, body: map[string]any{"name": "X"}},
		{method: "DELETE", path: "/api/chat/sites/" + bogusID, allow: admin},
		{method: "POST", path: "/api/chat/sites/" + bogusID + "/secret", allow: admin},
		// Sockets: without an upgrade an admitted request gets 426 from the handler.
		{method: "GET", path: "/ws/agent", allow: agent, ok: http.StatusUpgradeRequired},
	}
}

func analyticsRoutes() []apiRoute {
	sup := []string{"supervisor"}
	var rs []apiRoute
	for _, p := range []string{"/report", "/conversations", "/overview", "/moderation", "/agents", "/pipeline"} {
		rs = append(rs, apiRoute{method: "GET", path: "/api/analytics" + p + "?tz=UTC", allow: sup, ok: http.StatusOK})
	}
	return append(rs,
		apiRoute{method: "GET", path: "/api/analytics/export.csv?tz=UTC", allow: sup, ok: http.StatusOK},
		apiRoute{method: "GET", path: "/ws/analytics", allow: sup, ok: http.StatusUpgradeRequired},
	)
}

// TestRoleMatrixAcrossServices calls every chat, analytics and moderation
// API route on a running `parley serve` with no session and as each role,
// and checks allow/deny, plus CSRF on unsafe methods.
func TestRoleMatrixAcrossServices(t *testing.T) {
	p := startE2E(t)
	roles := []string{"agent", "supervisor", "moderator", "admin"}
	clients := map[string]*staffClient{"admin": p.admin}
	for _, r := range roles[:3] {
		email := r + "@matrix.test"
		p.createStaff(email, "Matrix "+r, r)
		clients[r] = signIn(t, p.base, email, e2eStaffPassword)
	}
	anon := &staffClient{t: t, base: p.base, http: http.DefaultClient}

	routes := append(chatRoutes(), analyticsRoutes()...)
	routes = append(routes, moderationRoutes(t, p)...)
	for _, rt := range routes {
		name := rt.method + " " + rt.path
		if code, body := anon.request(rt.method, rt.path, rt.body, false); code != http.StatusUnauthorized {
			t.Errorf("%s without a session = %d, want 401: %s", name, code, body)
		}
		for _, role := range roles {
			allowed := role == "admin" || slices.Contains(rt.allow, role)
			code, body := clients[role].request(rt.method, rt.path, rt.body, true)
			switch {
			case !allowed && code != http.StatusForbidden:
				t.Errorf("%s as %s = %d, want 403: %s", name, role, code, body)
			case allowed && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s as %s = %d, want it allowed: %s", name, role, code, body)
			case allowed && rt.ok != 0 && code != rt.ok:
				t.Errorf("%s as %s = %d, want %d: %s", name, role, code, rt.ok, body)
			}
		}
		if rt.method != "GET" {
			// A cookie session without the CSRF header is refused even for an admin.
			if code, body := p.admin.request(rt.method, rt.path, rt.body, false); code != http.StatusForbidden {
				t.Errorf("%s as admin without %s = %d, want 403: %s", name, "X-CSRF-Token", code, body)
			}
		}
	}
	t.Logf("checked %d routes × %d callers", len(routes), len(roles)+1)
	if len(routes) < 40 {
		t.Fatalf("only %d routes in the matrix", len(routes))
	}
}
