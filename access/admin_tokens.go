package access

import (
	"errors"

	"github.com/gofiber/fiber/v2"
)

// MountTokens registers the API token administration on r (admins only,
// never with a token: a token cannot mint or revoke tokens):
//
//	GET    /api/admin/tokens           list tokens with last use (never secrets)
//	POST   /api/admin/tokens           create {name, scopes, sites}; the answer
//	                                   holds the secret, shown this once
//	GET    /api/admin/tokens/:id/uses  the token's audited calls, newest first
//	DELETE /api/admin/tokens/:id       revoke at once
func (g *Guard) MountTokens(r fiber.Router) {
	admin := g.Require(Admin)
	r.Get("/api/admin/tokens", admin, g.listTokens)
	r.Post("/api/admin/tokens", admin, g.createToken)
	r.Get("/api/admin/tokens/:id/uses", admin, g.tokenUses)
	r.Delete("/api/admin/tokens/:id", admin, g.revokeToken)
}

type createTokenRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	Sites  []string `json:"sites"`
}

func (g *Guard) tokenRegistry() (*Tokens, error) {
	if g.tokens == nil {
		return nil, fiber.NewError(fiber.StatusServiceUnavailable, "API tokens are not enabled on this server")
	}
	return g.tokens, nil
}

func (g *Guard) listTokens(c *fiber.Ctx) error {
	ts, err := g.tokenRegistry()
	if err != nil {
		return err
	}
	list, err := ts.List(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": list})
}

func (g *Guard) createToken(c *fiber.Ctx) error {
	ts, err := g.tokenRegistry()
	if err != nil {
		return err
	}
	var req createTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	me, _ := UserOf(c)
	t, err := ts.Create(c.UserContext(), req.Name, req.Scopes, req.Sites, me.ID)
	if errors.As(err, new(ValidationError)) {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	if err != nil {
		return err
	}
	g.log.Info("API token created", "token", t.ID, "name", t.Name, "scopes", t.Scopes, "sites", t.Sites, "by", me.ID)
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (g *Guard) tokenUses(c *fiber.Ctx) error {
	ts, err := g.tokenRegistry()
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := ts.Get(ctx, c.Params("id")); errors.Is(err, ErrTokenNotFound) {
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	} else if err != nil {
		return err
	}
	uses, err := ts.Uses(ctx, c.Params("id"), c.QueryInt("limit", 100))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"uses": uses})
}

func (g *Guard) revokeToken(c *fiber.Ctx) error {
	ts, err := g.tokenRegistry()
	if err != nil {
		return err
	}
	err = ts.Revoke(c.UserContext(), c.Params("id"))
	if errors.Is(err, ErrTokenNotFound) {
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	me, _ := UserOf(c)
	g.log.Info("API token revoked", "token", c.Params("id"), "by", me.ID)
	return c.SendStatus(fiber.StatusNoContent)
}
