package chatsvc

import (
	"embed"
	"mime"
	"path"

	"github.com/gofiber/fiber/v2"
)

//go:embed widget/widget.js widget/widget.css
var widgetFS embed.FS

func (s *Service) serveWidgetJS(c *fiber.Ctx) error {
	b, err := widgetFS.ReadFile("widget/widget.js")
	if err != nil {
		return s.replyErr(c, err)
	}
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	return c.Send(b)
}

func (s *Service) serveWidgetAsset(c *fiber.Ctx) error {
	name := path.Base(c.Params("file"))
	if name != "widget.css" {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "no widget asset "+name)
	}
	b, err := widgetFS.ReadFile("widget/" + name)
	if err != nil {
		return s.replyErr(c, err)
	}
	c.Set(fiber.HeaderContentType, mime.TypeByExtension(path.Ext(name)))
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	return c.Send(b)
}
