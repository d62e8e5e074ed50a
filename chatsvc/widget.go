package chatsvc

import (
	"embed"
	"fmt"
	"mime"
	"path"
	"strings"

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

// visitorI18n is what the widget loads before it renders: the language it
// speaks on this site, that language's direction and every text it shows.
type visitorI18n struct {
	Lang      string   `json:"lang"`
	Dir       string   `json:"dir"`
	Languages []string `json:"languages"`
	Messages  catalog  `json:"messages"`
}

// maxLanguagePrefs bounds the browser preferences one request may list.
const maxLanguagePrefs = 16

// serveVisitorI18n answers GET /api/chat/visitor/i18n?site_key=K&langs=de-AT,de,en:
// the site's language for a browser with those preferences (the site's
// default when it offers one language) and the catalog with the site's
// overrides. Browsers must come from an allowed origin.
func (s *Service) serveVisitorI18n(c *fiber.Ctx) error {
	key := c.Query("site_key")
	site, ok := s.sites.byKeyGet(key)
	if !ok {
		return replyError(c, fiber.StatusNotFound, CodeUnknownSite, fmt.Sprintf("no site has the key %q", truncate(key, 64)))
	}
	if err := allowSiteOrigin(c, site); err != nil {
		return s.replyErr(c, err)
	}
	prefs := strings.Split(truncate(c.Query("langs"), 512), ",")
	if len(prefs) > maxLanguagePrefs {
		prefs = prefs[:maxLanguagePrefs]
	}
	lang := site.Settings.matchLanguage(prefs)
	c.Set(fiber.HeaderCacheControl, "private, max-age=60")
	return c.JSON(visitorI18n{Lang: lang, Dir: textDirection(lang), Languages: site.Settings.siteLanguages(), Messages: site.Settings.visitorCatalog(lang)})
}

// listLanguages answers GET /api/chat/languages for the admin UI: the
// shipped languages and their catalogs, to override texts per site.
func (s *Service) listLanguages(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"languages": shippedLanguages, "catalogs": catalogs})
}
