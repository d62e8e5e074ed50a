package main

import (
	"net/http"
	"slices"
	"testing"

	"github.com/parleychat/parley/access"
)

// apiRoute is one route of the chat, analytics or moderation API with the
// roles that may call it and the API token scope that admits it. An
// allowed call must not be refused (401/403); when ok is set it must
// answer exactly that status.
type apiRoute struct {
	method, path string
	allow        []string // roles; admin holds every role and is always allowed
	scope        string   // API token scope; "" refuses every token
	body         any
	ok           int
}

const bogusID = "0193a4c0-11aa-7bcd-8e00-111122223333"

func chatRoutes(site string) []apiRoute {
	agent := []string{"agent"}
	agentOrSup := []string{"agent", "supervisor"}
	sup := []string{"supervisor"}
	admin := []string{}
	read, write, sites := string(access.ScopeConversationsRead), string(access.ScopeMessagesWrite), string(access.ScopeSitesManage)
	return []apiRoute{
		{method: "GET", path: "/api/chat/conversations", allow: agent, scope: read, ok: http.StatusOK},
		{method: "GET", path: "/api/chat/conversations/" + bogusID, allow: agentOrSup, scope: read, ok: http.StatusNotFound},
		{method: "GET", path: "/api/chat/conversations/" + bogusID + "/messages", allow: agentOrSup, scope: read, ok: http.StatusNotFound},
		{method: "POST", path: "/api/chat/conversations/" + bogusID + "/messages", allow: agent, scope: write, body: map[string]any{"text": "hi", "client_id": "m1", "as": "bot"}, ok: http.StatusNotFound},
		{method: "POST", path: "/api/chat/conversations/" + bogusID + "/assign", allow: agent, body: map[string]any{"agent_id": ""}},
		{method: "POST", path: "/api/chat/conversations/" + bogusID + "/transfer", allow: agent, body: map[string]any{"to_team_id": "t1"}},
		{method: "POST", path: "/api/chat/conversations/" + bogusID + "/status", allow: agent, body: map[string]any{"status": "resolved"}},
		{method: "POST", path: "/api/chat/attachments", allow: agent, body: map[string]any{}},
		{method: "GET", path: "/api/chat/agents", allow: agentOrSup, scope: read, ok: http.StatusOK},
		{method: "GET", path: "/api/chat/canned", allow: agentOrSup, ok: http.StatusOK},
		{method: "GET", path: "/api/chat/my-sites", allow: []string{"agent", "supervisor", "moderator"}, ok: http.StatusOK},
		{method: "POST", path: "/api/chat/canned", allow: sup, body: map[string]any{"site_id": site, "shortcut": "x", "text": "y"}},
		{method: "PUT", path: "/api/chat/canned/" + bogusID, allow: sup, body: map[string]any{"shortcut": "x2", "text": "y"}, ok: http.StatusNotFound},
		{method: "DELETE", path: "/api/chat/canned/" + bogusID, allow: sup, ok: http.StatusNoContent},
		{method: "GET", path: "/api/chat/sites", allow: admin, scope: sites, ok: http.StatusOK},
		{method: "POST", path: "/api/chat/sites", allow: admin, scope: sites, body: map[string]any{"name": "Matrix", "allowed_origins": []string{"https://matrix.example"}}},
		{method: "GET", path: "/api/chat/sites/" + bogusID, allow: admin, scope: sites, ok: http.StatusNotFound},
		{method: "PUT", path: "/api/chat/sites/" + bogusID, allow: admin, scope: sites, body: map[string]any{"name": "X"}},
		{method: "DELETE", path: "/api/chat/sites/" + bogusID, allow: admin, scope: sites},
		{method: "POST", path: "/api/chat/sites/" + bogusID + "/secret", allow: admin, scope: sites},
		// Sockets: without an upgrade an admitted request gets 426 from the handler.
		{method: "GET", path: "/ws/agent", allow: agent, ok: http.StatusUpgradeRequired},
	}
}

func analyticsRoutes() []apiRoute {
	sup := []string{"supervisor"}
	var rs []apiRoute
	for _, p := range []string{"/report", "/conversations", "/overview", "/agents", "/pipeline"} {
		rs = append(rs, apiRoute{method: "GET", path: "/api/analytics" + p + "?tz=UTC", allow: sup, scope: string(access.ScopeAnalyticsRead), ok: http.StatusOK})
	}
	// Moderators read the moderation report and its drill-down too.
	for _, p := range []string{"/moderation", "/moderation/items", "/sites"} {
		rs = append(rs, apiRoute{method: "GET", path: "/api/analytics" + p + "?tz=UTC", allow: []string{"supervisor", "moderator"}, scope: string(access.ScopeAnalyticsRead), ok: http.StatusOK})
	}
	return append(rs,
		apiRoute{method: "GET", path: "/api/analytics/export.csv?tz=UTC", allow: sup, scope: string(access.ScopeAnalyticsRead), ok: http.StatusOK},
		apiRoute{method: "GET", path: "/ws/analytics", allow: sup, ok: http.StatusUpgradeRequired},
	)
}

// TestRoleMatrixAcrossServices calls every chat, analytics and moderation
// API route on a running `parley serve` with no session, as each role and
// with an API token of each scope, and checks allow/deny, plus CSRF on
// unsafe methods (which tokens do not need).
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
	tokens := map[string]*staffClient{}
	for _, sc := range access.Scopes {
		secret, _ := p.createToken("matrix "+string(sc), []string{string(sc)}, nil)
		tokens[string(sc)] = tokenClient(t, p.base, secret)
	}

	routes := append(chatRoutes(p.site.ID), analyticsRoutes()...)
	routes = append(routes, moderationRoutes(t, p)...)
	routes = append(routes, webhookRoutes(p)...)
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
		for scope, c := range tokens {
			code, body := c.request(rt.method, rt.path, rt.body, false)
			switch {
			case scope != rt.scope && code != http.StatusForbidden:
				t.Errorf("%s with a %s token = %d, want 403: %s", name, scope, code, body)
			case scope == rt.scope && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s with a %s token = %d, want it allowed: %s", name, scope, code, body)
			case scope == rt.scope && rt.ok != 0 && code != rt.ok:
				t.Errorf("%s with a %s token = %d, want %d: %s", name, scope, code, rt.ok, body)
			}
		}
		if rt.method != "GET" {
			// A cookie session without the CSRF header is refused even for an admin.
			if code, body := p.admin.request(rt.method, rt.path, rt.body, false); code != http.StatusForbidden {
				t.Errorf("%s as admin without %s = %d, want 403: %s", name, "X-CSRF-Token", code, body)
			}
		}
	}
	t.Logf("checked %d routes × %d callers", len(routes), len(roles)+1+len(tokens))
	if len(routes) < 40 {
		t.Fatalf("only %d routes in the matrix", len(routes))
	}

	// A second site: every role works on the first one only, so each is
	// refused everything of the second; an admin is not.
	var other siteInfo
	p.admin.call("POST", "/api/chat/sites", map[string]any{"name": "Second shop", "allowed_origins": []string{p.base}}, http.StatusCreated, &other)
	v := newGoVisitor(t, p.base, other.Key, p.base)
	conv := v.say("m1", "a question on the second site")
	for _, rt := range otherSiteRoutes(other.ID, conv) {
		name := rt.method + " " + rt.path
		for _, role := range roles {
			code, body := clients[role].request(rt.method, rt.path, rt.body, true)
			switch {
			case role != "admin" && code != http.StatusForbidden:
				t.Errorf("%s as %s of the first site = %d, want 403: %s", name, role, code, body)
			case role == "admin" && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s as admin = %d, want it allowed: %s", name, code, body)
			}
		}
	}
}

// otherSiteRoutes are calls on a site the caller does not work on.
func otherSiteRoutes(site, conv string) []apiRoute {
	c := "/api/chat/conversations/" + conv
	reason := map[string]string{"reason": "matrix"}
	return []apiRoute{
		{method: "GET", path: "/api/chat/conversations?site_id=" + site},
		{method: "GET", path: c},
		{method: "GET", path: c + "/messages"},
		{method: "POST", path: c + "/status", body: map[string]any{"status": "resolved"}},
		{method: "POST", path: c + "/transfer", body: map[string]any{"to_team_id": "t1"}},
		{method: "GET", path: "/api/chat/canned?site_id=" + site},
		{method: "POST", path: "/api/chat/canned", body: map[string]any{"site_id": site, "shortcut": "other", "text": "y"}},
		{method: "GET", path: "/api/analytics/report?tz=UTC&site=" + site},
		{method: "GET", path: "/api/analytics/conversations?tz=UTC&site=" + site},
		{method: "GET", path: "/api/analytics/export.csv?tz=UTC&site=" + site},
		{method: "GET", path: "/api/analytics/overview?tz=UTC&site=" + site},
		{method: "GET", path: "/ws/analytics?tz=UTC&site=" + site},
		{method: "GET", path: "/api/moderation/items?site_id=" + site},
		{method: "GET", path: "/api/moderation/audit?site_id=" + site},
		{method: "GET", path: "/api/moderation/bans?site_id=" + site},
		{method: "GET", path: "/api/moderation/policy/" + site},
		{method: "PUT", path: "/api/moderation/policy/" + site, body: map[string]any{"version": 0}},
		{method: "POST", path: "/api/moderation/bans/" + site + "/nobody/lift", body: reason},
		{method: "POST", path: "/api/moderation/policy/test", body: map[string]string{"site_id": site, "text": "hello"}},
	}
}

// webhookRoutes lists the webhook administration API: admins only, never a token.
func webhookRoutes(p *parleyE2E) []apiRoute {
	admin := []string{}
	ep := map[string]any{"site_id": p.site.ID, "url": "https://hooks.example.com/parley", "events": []string{"*"}}
	return []apiRoute{
		{method: "GET", path: "/api/webhooks/endpoints", allow: admin, ok: http.StatusOK},
		{method: "POST", path: "/api/webhooks/endpoints", allow: admin, body: map[string]any{"site_id": p.site.ID, "url": "http://127.0.0.1:1/x", "events": []string{"*"}}, ok: http.StatusBadRequest},
		{method: "GET", path: "/api/webhooks/endpoints/" + bogusID, allow: admin, ok: http.StatusNotFound},
		{method: "PUT", path: "/api/webhooks/endpoints/" + bogusID, allow: admin, body: ep, ok: http.StatusNotFound},
		{method: "DELETE", path: "/api/webhooks/endpoints/" + bogusID, allow: admin, ok: http.StatusNotFound},
		{method: "POST", path: "/api/webhooks/endpoints/" + bogusID + "/secret", allow: admin, ok: http.StatusNotFound},
		{method: "POST", path: "/api/webhooks/endpoints/" + bogusID + "/test", allow: admin, ok: http.StatusNotFound},
		{method: "GET", path: "/api/webhooks/endpoints/" + bogusID + "/deliveries", allow: admin, ok: http.StatusNotFound},
		{method: "POST", path: "/api/webhooks/deliveries/" + bogusID + "/retry", allow: admin, ok: http.StatusNotFound},
	}
}
