package dashboard

import (
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

//go:embed web/*.html
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "web/*.html"))

// Page is one screen of the app. The server checks Roles when the page is
// requested; the client builds its navigation from the pages a user may
// open (the server sends that list), so both use this one table.
type Page struct {
	Path    string        `json:"path"`
	Title   string        `json:"title"`
	Section string        `json:"section"`
	Module  string        `json:"module"`
	Roles   []access.Role `json:"roles"`
	// Hidden pages (detail views) are reachable but not in the menu.
	Hidden bool `json:"hidden,omitempty"`
}

// Pages lists every page of the app in menu order.
var Pages = []Page{
	{Path: "/app/console", Title: "Inbox", Section: "Chat", Module: "console.js", Roles: []access.Role{access.Agent}},
	{Path: "/app/overview", Title: "Live overview", Section: "Insights", Module: "overview.js", Roles: []access.Role{access.Supervisor}},
	{Path: "/app/reports", Title: "Reports", Section: "Insights", Module: "reports.js", Roles: []access.Role{access.Supervisor}},
	{Path: "/app/conversations", Title: "Transcript", Section: "Insights", Module: "transcript.js", Roles: []access.Role{access.Supervisor, access.Agent}, Hidden: true},
	{Path: "/app/moderation", Title: "Review queue", Section: "Moderation", Module: "moderation.js", Roles: []access.Role{access.Moderator}},
	{Path: "/app/moderation/audit", Title: "Audit log", Section: "Moderation", Module: "audit.js", Roles: []access.Role{access.Moderator}},
	{Path: "/app/moderation/policy", Title: "Policy", Section: "Moderation", Module: "policy.js", Roles: []access.Role{access.Moderator}},
	{Path: "/app/moderation/report", Title: "Moderation report", Section: "Moderation", Module: "modreport.js", Roles: []access.Role{access.Moderator, access.Supervisor}},
	{Path: "/app/admin/canned", Title: "Canned replies", Section: "Admin", Module: "canned.js", Roles: []access.Role{access.Supervisor}},
	{Path: "/app/admin/sites", Title: "Sites", Section: "Admin", Module: "sites.js", Roles: []access.Role{access.Admin}},
	{Path: "/app/admin/users", Title: "Staff", Section: "Admin", Module: "users.js", Roles: []access.Role{access.Admin}},
	{Path: "/app/admin/teams", Title: "Teams", Section: "Admin", Module: "teams.js", Roles: []access.Role{access.Admin}},
	{Path: "/app/admin/tokens", Title: "API tokens", Section: "Admin", Module: "tokens.js", Roles: []access.Role{access.Admin}},
	{Path: "/app/admin/webhooks", Title: "Webhooks", Section: "Admin", Module: "webhooks.js", Roles: []access.Role{access.Admin}},
}

// pageFor returns the page whose path is the longest prefix (by whole
// segments) of p.
func pageFor(p string) (Page, bool) {
	var best Page
	found := false
	for _, pg := range Pages {
		if (p == pg.Path || strings.HasPrefix(p, pg.Path+"/")) && len(pg.Path) > len(best.Path) {
			best, found = pg, true
		}
	}
	return best, found
}

func allowed(u access.User, pg Page) bool {
	for _, r := range pg.Roles {
		if u.Has(r) {
			return true
		}
	}
	return false
}

// home is the first page the user may open.
func home(u access.User) (Page, bool) {
	for _, pg := range Pages {
		if !pg.Hidden && allowed(u, pg) {
			return pg, true
		}
	}
	return Page{}, false
}

type shellData struct {
	Product  string
	Assets   string
	Title    string
	User     string
	CSRF     string
	Pages    string
	Status   int
	Next     string
	LoginErr string
}

// setPageHeaders applies the security headers every HTML page carries.
func setPageHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "same-origin")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'self'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; "+
		"frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
}

func (d *Dashboard) render(c *fiber.Ctx, status int, name string, data shellData) error {
	data.Product = d.product
	data.Assets = d.assets.prefix()
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		d.log.Error("render page", "template", name, "err", err)
		return fiber.NewError(fiber.StatusInternalServerError, "render page failed")
	}
	setPageHeaders(c)
	return c.Status(status).SendString(b.String())
}

// session resolves the request's staff session; ok is false without one.
func (d *Dashboard) session(c *fiber.Ctx) (u access.User, csrf string, ok bool, err error) {
	u, csrf, err = d.guard.Directory().Session(c.UserContext(), c.Cookies(access.CookieName))
	if errors.Is(err, access.ErrNoSession) {
		return access.User{}, "", false, nil
	}
	if err != nil {
		d.log.Error("session lookup failed", "err", err)
		return access.User{}, "", false, fiber.NewError(fiber.StatusServiceUnavailable, "session store unavailable")
	}
	return u, csrf, true, nil
}

// safeNext keeps a post-login target only when it is a page of this app,
// so the login page cannot be used as an open redirect.
func safeNext(next string) string {
	if next == "/app" || (strings.HasPrefix(next, "/app/") && !strings.ContainsAny(next, "\\\r\n") && !strings.Contains(next, "//")) {
		return next
	}
	return "/app"
}

func (d *Dashboard) loginPage(c *fiber.Ctx) error {
	_, _, ok, err := d.session(c)
	if err != nil {
		return err
	}
	next := safeNext(c.Query("next"))
	if ok {
		return c.Redirect(next, fiber.StatusFound)
	}
	return d.render(c, fiber.StatusOK, "login.html", shellData{Title: "Sign in", Next: next})
}

func (d *Dashboard) appPage(c *fiber.Ctx) error {
	u, csrf, ok, err := d.session(c)
	if err != nil {
		return err
	}
	p := strings.TrimSuffix(c.Path(), "/")
	if !ok {
		return c.Redirect("/login?next="+url.QueryEscape(safeNext(p)), fiber.StatusFound)
	}
	if p == "/app" {
		pg, ok := home(u)
		if !ok {
			return d.renderShell(c, u, csrf, fiber.StatusForbidden, "No access")
		}
		return c.Redirect(pg.Path, fiber.StatusFound)
	}
	pg, found := pageFor(p)
	switch {
	case !found:
		return d.renderShell(c, u, csrf, fiber.StatusNotFound, "Not found")
	case !allowed(u, pg):
		return d.renderShell(c, u, csrf, fiber.StatusForbidden, "No access")
	}
	return d.renderShell(c, u, csrf, fiber.StatusOK, pg.Title)
}

func (d *Dashboard) renderShell(c *fiber.Ctx, u access.User, csrf string, status int, title string) error {
	var mine []Page
	for _, pg := range Pages {
		if allowed(u, pg) {
			mine = append(mine, pg)
		}
	}
	userJSON, err := json.Marshal(u)
	if err != nil {
		return err
	}
	pagesJSON, err := json.Marshal(mine)
	if err != nil {
		return err
	}
	return d.render(c, status, "app.html", shellData{
		Title: title, User: string(userJSON), CSRF: csrf, Pages: string(pagesJSON), Status: status,
	})
}
