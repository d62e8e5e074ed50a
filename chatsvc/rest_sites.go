package chatsvc

import (
	"errors"

	"github.com/gofiber/fiber/v2"
)

// withSnippet fills the install snippet for the server the admin uses.
func withSnippet(c *fiber.Ctx, site Site) Site {
	site.Snippet = Snippet(c.BaseURL(), site.Key)
	return site
}

// siteName is what any staff member may know of a site they work on.
type siteName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// mySites lists the sites the signed-in staff member works on (every
// site for admins), by name: the site pickers of the staff app.
func (s *Service) mySites(c *fiber.Ctx) error {
	_, u := staffAuthor(c)
	out := []siteName{}
	for _, site := range s.Sites() {
		if u.OnSite(site.ID) {
			out = append(out, siteName{ID: site.ID, Name: site.Name})
		}
	}
	return c.JSON(fiber.Map{"sites": out})
}

func (s *Service) listSites(c *fiber.Ctx) error {
	sites := s.Sites()
	for i := range sites {
		sites[i] = withSnippet(c, sites[i])
	}
	return c.JSON(fiber.Map{"sites": sites})
}

func (s *Service) getSite(c *fiber.Ctx) error {
	site, ok := s.Site(c.Params("id"))
	if !ok {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "site "+c.Params("id")+" not found")
	}
	return c.JSON(withSnippet(c, site))
}

func (s *Service) createSite(c *fiber.Ctx) error {
	var in SiteInput
	if err := c.BodyParser(&in); err != nil {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "body must be a JSON site: "+err.Error())
	}
	_, u := staffAuthor(c)
	site, err := s.CreateSite(c.UserContext(), in, u.ID)
	if err != nil {
		return s.siteErr(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(withSnippet(c, site))
}

func (s *Service) updateSite(c *fiber.Ctx) error {
	var in SiteInput
	if err := c.BodyParser(&in); err != nil {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "body must be a JSON site: "+err.Error())
	}
	_, u := staffAuthor(c)
	site, err := s.UpdateSite(c.UserContext(), c.Params("id"), in, u.ID)
	if err != nil {
		return s.siteErr(c, err)
	}
	return c.JSON(withSnippet(c, site))
}

func (s *Service) rotateSecret(c *fiber.Ctx) error {
	site, err := s.RotateSiteSecret(c.UserContext(), c.Params("id"))
	if err != nil {
		return s.siteErr(c, err)
	}
	return c.JSON(withSnippet(c, site))
}

func (s *Service) rotateWebhookSecret(c *fiber.Ctx) error {
	site, err := s.RotateWebhookSecret(c.UserContext(), c.Params("id"))
	if err != nil {
		return s.siteErr(c, err)
	}
	return c.JSON(withSnippet(c, site))
}

func (s *Service) deleteSite(c *fiber.Ctx) error {
	_, u := staffAuthor(c)
	if err := s.DeleteSite(c.UserContext(), c.Params("id"), u.ID); err != nil {
		return s.siteErr(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// siteErr maps validation failures (plain errors from SiteInput.validate) to 400.
func (s *Service) siteErr(c *fiber.Ctx, err error) error {
	var fe *frameError
	switch {
	case errors.Is(err, ErrNotFound):
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "site "+c.Params("id")+" not found")
	case errors.As(err, &fe):
		return s.replyErr(c, err)
	case isValidation(err):
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, err.Error())
	}
	return s.replyErr(c, err)
}
