package main

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/chatsvc"
)

// conversationSites resolves the site of a conversation for the token
// policy; chatsvc answers it on nodes that run chat.
type conversationSites interface {
	ConversationSite(ctx context.Context, id string) (string, error)
}

// admitTokens declares which REST operations API tokens may call, with the
// scope each needs and how to find the site a call acts on (for tokens
// limited to sites). Every other operation refuses tokens. The table is
// the source of docs/openapi.yaml's x-parley-scopes, which
// TestOpenAPIMatchesServer checks against it.
func admitTokens(g *access.Guard, chat *chatsvc.Service) {
	var convs conversationSites
	if chat != nil {
		convs = chat
	}
	convSite := func(c *fiber.Ctx, p map[string]string) (string, error) {
		if convs == nil {
			return "", fiber.NewError(fiber.StatusNotFound, "conversations are not served here")
		}
		site, err := convs.ConversationSite(c.UserContext(), p["id"])
		if err != nil {
			return "", fiber.NewError(fiber.StatusNotFound, "conversation "+p["id"]+" not found")
		}
		return site, nil
	}
	queryParam := func(name string) func(c *fiber.Ctx, _ map[string]string) (string, error) {
		return func(c *fiber.Ctx, _ map[string]string) (string, error) {
			if v := c.Query(name); v != "" {
				return v, nil
			}
			return "", fmt.Errorf("%w: pass ?%s=SITE_ID", access.ErrSiteRequired, name)
		}
	}
	pathParam := func(c *fiber.Ctx, p map[string]string) (string, error) { return p["id"], nil }
	read, write, analytics, sites := access.ScopeConversationsRead, access.ScopeMessagesWrite, access.ScopeAnalyticsRead, access.ScopeSitesManage
	g.AdmitTokens(
		access.TokenRoute{Method: "GET", Path: "/api/chat/conversations", Scope: read, Site: queryParam("site_id")},
		access.TokenRoute{Method: "GET", Path: "/api/chat/conversations/:id", Scope: read, Site: convSite},
		access.TokenRoute{Method: "GET", Path: "/api/chat/conversations/:id/messages", Scope: read, Site: convSite},
		access.TokenRoute{Method: "GET", Path: "/api/chat/agents", Scope: read},
		access.TokenRoute{Method: "POST", Path: "/api/chat/conversations/:id/messages", Scope: write, Site: convSite},
		access.TokenRoute{Method: "GET", Path: "/api/analytics/*", Scope: analytics, Site: queryParam("site")},
		access.TokenRoute{Method: "GET", Path: "/api/chat/sites", Scope: sites},
		access.TokenRoute{Method: "POST", Path: "/api/chat/sites", Scope: sites},
		access.TokenRoute{Method: "GET", Path: "/api/chat/sites/:id", Scope: sites, Site: pathParam},
		access.TokenRoute{Method: "PUT", Path: "/api/chat/sites/:id", Scope: sites, Site: pathParam},
		access.TokenRoute{Method: "DELETE", Path: "/api/chat/sites/:id", Scope: sites, Site: pathParam},
		access.TokenRoute{Method: "POST", Path: "/api/chat/sites/:id/secret", Scope: sites, Site: pathParam},
	)
}
