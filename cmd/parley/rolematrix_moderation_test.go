package main

import (
	"net/http"
	"testing"
)

// moderationRoutes lists the moderation API routes (moderation/api.go)
// for the role matrix: every one needs the moderator role.
func moderationRoutes(t *testing.T, p *parleyE2E) []apiRoute {
	mod := []string{"moderator"}
	site := p.site.ID
	reason := map[string]string{"reason": "matrix"}
	var rs []apiRoute
	for _, path := range []string{"/items", "/audit", "/bans", "/policy/" + site} {
		rs = append(rs, apiRoute{method: "GET", path: "/api/moderation" + path, allow: mod, ok: http.StatusOK})
	}
	rs = append(rs, apiRoute{method: "GET", path: "/api/moderation/items/" + bogusID, allow: mod, ok: http.StatusNotFound})
	for _, action := range []string{"claim", "release"} {
		rs = append(rs, apiRoute{method: "POST", path: "/api/moderation/items/" + bogusID + "/" + action, allow: mod, ok: http.StatusNotFound})
	}
	for _, action := range []string{"approve", "remove", "review"} {
		rs = append(rs, apiRoute{method: "POST", path: "/api/moderation/items/" + bogusID + "/" + action, allow: mod, body: reason, ok: http.StatusNotFound})
	}
	return append(rs,
		apiRoute{method: "POST", path: "/api/moderation/items/" + bogusID + "/ban", allow: mod, body: map[string]string{"reason": "matrix", "duration": "24h"}, ok: http.StatusNotFound},
		apiRoute{method: "POST", path: "/api/moderation/bans/" + site + "/nobody/lift", allow: mod, body: reason},
		apiRoute{method: "PUT", path: "/api/moderation/policy/" + site, allow: mod, body: map[string]any{"version": 0}},
		apiRoute{method: "POST", path: "/api/moderation/policy/test", allow: mod, body: map[string]string{"site_id": site, "text": "hello"}, ok: http.StatusOK},
	)
}
