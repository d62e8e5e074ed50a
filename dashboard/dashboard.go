// Package dashboard serves the staff side of Parley: one single-page web
// app (plain HTML, CSS and ES modules embedded with go:embed, no build
// step) with the login page, role-based navigation, the agent console, the
// supervisors' live overview and reports, the moderators' review queue and
// the admin pages. The server checks the staff session on every page
// request and the role of every page; the data behind the pages comes from
// the APIs of access, chatsvc, moderation and analytics, which enforce
// roles themselves.
//
// It imports access only (and browsertest in tests); it never imports
// chatsvc, moderation or analytics.
package dashboard

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// Config holds the dashboard's dependencies.
type Config struct {
	// Guard resolves staff sessions; required.
	Guard *access.Guard
	// Logger receives request errors; slog.Default() when nil.
	Logger *slog.Logger
	// ProductName is shown in titles and the header; "Parley" when empty.
	ProductName string
}

// Dashboard serves the staff web app.
type Dashboard struct {
	guard   *access.Guard
	log     *slog.Logger
	product string
	assets  *assetSet
}

// New builds the dashboard. It panics when Guard is nil, a wiring bug.
func New(cfg Config) *Dashboard {
	if cfg.Guard == nil {
		panic("dashboard.New: Config.Guard is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProductName == "" {
		cfg.ProductName = "Parley"
	}
	return &Dashboard{
		guard:   cfg.Guard,
		log:     cfg.Logger,
		product: cfg.ProductName,
		assets:  mustLoadAssets(),
	}
}

// Mount registers the dashboard routes on r:
//
//	GET /          redirect to /app
//	GET /login     the sign-in page (redirects to /app when signed in)
//	GET /app, /app/*  the app shell; no session → redirect to /login,
//	               a page the user's roles do not allow → 403 page
//	GET /assets/*  embedded CSS/JS; /assets/<hash>/... is immutable,
//	               unhashed paths revalidate with an ETag
func (d *Dashboard) Mount(r fiber.Router) {
	r.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/app", fiber.StatusFound) })
	r.Get("/login", d.loginPage)
	r.Get("/app", d.appPage)
	r.Get("/app/*", d.appPage)
	r.Get("/assets/*", d.serveAsset)
}

// Ready reports whether the dashboard can serve; its assets are embedded,
// so it is ready once built.
func (d *Dashboard) Ready(ctx context.Context) error {
	if d.assets == nil || len(d.assets.files) == 0 {
		return errors.New("dashboard assets missing")
	}
	return ctx.Err()
}

// Run has no background work to do: it waits for ctx and returns nil, so
// the dashboard fits cmd/parley's component lifecycle.
func (d *Dashboard) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
