package moderation

import (
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// Moderators are scoped to sites (access.User.Sites): admins see every
// site; a moderator sees and decides the review items, audit entries,
// bans and policies of their own sites only.

// siteForbidden answers a moderator acting on another site.
func siteForbidden(c *fiber.Ctx) error {
	return fail(c, fiber.StatusForbidden, "you do not moderate this site")
}

// offSite reports whether a site filter or path names a site the user
// does not work on ("" is no filter); the caller answers siteForbidden.
func offSite(c *fiber.Ctx, site string) bool {
	u, _ := access.UserOf(c)
	return site != "" && !u.OnSite(site)
}

// scoped wraps an item handler (/items/:id/...) with the site check:
// 404 for a missing item, 403 for another site's.
func (s *Service) scoped(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		it, err := s.store.Item(c.UserContext(), c.Params("id"))
		if err != nil {
			return s.answer(c, err)
		}
		if offSite(c, it.SiteID) {
			return siteForbidden(c)
		}
		return h(c)
	}
}

// siteScoped wraps a /:site handler with the site check.
func siteScoped(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if offSite(c, c.Params("site")) {
			return siteForbidden(c)
		}
		return h(c)
	}
}
