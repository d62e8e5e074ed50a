package access

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
)

// CookieName is the staff session cookie.
const CookieName = "parley_session"

// CSRFHeader carries the session's CSRF token on every unsafe request.
const CSRFHeader = "X-CSRF-Token"

const localsUser = "parley.access.user"

// Guard authenticates staff requests and checks roles.
type Guard struct {
	store  *Directory
	secure bool
	log    *slog.Logger
	// origins may post the sign-in form besides the server's own host.
	origins []string

	// API tokens (guard_token.go): nil tokens refuses every Bearer call.
	tokens      *Tokens
	tokenMu     sync.RWMutex
	tokenRoutes []TokenRoute
}

// NewGuard builds a guard; secureCookies sets the Secure flag (behind TLS).
func NewGuard(store *Directory, secureCookies bool, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.Default()
	}
	return &Guard{store: store, secure: secureCookies, log: log}
}

// Directory returns the staff directory behind the guard.
func (g *Guard) Directory() *Directory { return g.store }

// Require admits a request whose session holds any of roles (any staff
// member when roles is empty): 401 without a session, 403 without the role.
// Unsafe methods must also carry the session's CSRF token. A request with
// an API token (Authorization: Bearer) is judged by the token's scopes
// instead (guard_token.go).
func (g *Guard) Require(roles ...Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if secret, ok := bearer(c); ok {
			return g.admitToken(c, secret)
		}
		u, csrf, err := g.store.Session(c.UserContext(), c.Cookies(CookieName))
		if errors.Is(err, ErrNoSession) {
			return fiber.NewError(fiber.StatusUnauthorized, "sign in first")
		}
		if err != nil {
			g.log.Error("session lookup failed", "err", err)
			return fiber.NewError(fiber.StatusServiceUnavailable, "session store unavailable")
		}
		if !safeMethod(c.Method()) && subtle.ConstantTimeCompare([]byte(c.Get(CSRFHeader)), []byte(csrf)) != 1 {
			return fiber.NewError(fiber.StatusForbidden, "missing or wrong "+CSRFHeader+" header")
		}
		if len(roles) > 0 && !hasAny(u, roles) {
			return fiber.NewError(fiber.StatusForbidden, "your role may not do this")
		}
		c.Locals(localsUser, u)
		c.Locals(localsSession, hashToken(c.Cookies(CookieName)))
		return c.Next()
	}
}

// UserOf returns the user Require admitted.
func UserOf(c *fiber.Ctx) (User, bool) {
	u, ok := c.Locals(localsUser).(User)
	return u, ok
}

func hasAny(u User, roles []Role) bool {
	for _, r := range roles {
		if u.Has(r) {
			return true
		}
	}
	return false
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type meResponse struct {
	User User   `json:"user"`
	CSRF string `json:"csrf"`
}

// Mount registers POST /api/auth/login, POST /api/auth/logout and
// GET /api/auth/me on r. Login is rate limited per client IP.
func (g *Guard) Mount(r fiber.Router) {
	loginLimit := limiter.New(limiter.Config{
		Max: 10, Expiration: time.Minute,
		LimitReached: func(c *fiber.Ctx) error {
			return fiber.NewError(fiber.StatusTooManyRequests, "too many sign-in attempts; wait a minute")
		},
	})
	r.Post("/api/auth/login", loginLimit, g.login)
	r.Post("/api/auth/logout", g.Require(), g.logout)
	r.Get("/api/auth/me", g.Require(), g.me)
}

// login accepts only a JSON body from this server's own pages (or an
// allowed origin): a form posted from another site would sign the
// victim's browser into the attacker's account (login CSRF).
func (g *Guard) login(c *fiber.Ctx) error {
	if !g.originOK(c) {
		g.log.Warn("staff sign-in refused: foreign origin", "origin", c.Get(fiber.HeaderOrigin), "ip", c.IP())
		return fiber.NewError(fiber.StatusForbidden, "origin "+c.Get(fiber.HeaderOrigin)+" may not sign in here")
	}
	if ct := strings.ToLower(c.Get(fiber.HeaderContentType)); !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "sign in with a JSON body {email, password} and Content-Type: application/json")
	}
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	defer g.reportAuditFailure()
	u, err := g.store.SignIn(c.UserContext(), req.Email, req.Password, c.IP())
	var locked *LockedError
	switch {
	case errors.As(err, &locked):
		g.log.Warn("staff sign-in refused: account locked", "email", req.Email, "ip", c.IP(), "until", locked.Until)
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(time.Until(locked.Until).Seconds())+1))
		return fiber.NewError(fiber.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrBadCredentials):
		g.log.Warn("staff sign-in failed", "email", req.Email, "ip", c.IP())
		return fiber.NewError(fiber.StatusUnauthorized, err.Error())
	case err != nil:
		return err
	}
	token, csrf, err := g.store.NewSession(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	c.Cookie(&fiber.Cookie{
		Name: CookieName, Value: token, Path: "/", HTTPOnly: true, Secure: g.secure,
		SameSite: fiber.CookieSameSiteLaxMode, Expires: time.Now().Add(g.store.sessionTTL),
	})
	g.log.Info("staff signed in", "user", u.ID)
	return c.JSON(meResponse{User: u, CSRF: csrf})
}

func (g *Guard) logout(c *fiber.Ctx) error {
	if err := g.store.EndSession(c.UserContext(), c.Cookies(CookieName)); err != nil {
		return err
	}
	c.ClearCookie(CookieName)
	return c.SendStatus(fiber.StatusNoContent)
}

func (g *Guard) me(c *fiber.Ctx) error {
	u, csrf, err := g.store.Session(c.UserContext(), c.Cookies(CookieName))
	if err != nil {
		return fiber.NewError(fiber.StatusUnauthorized, "sign in first")
	}
	return c.JSON(meResponse{User: u, CSRF: csrf})
}

// reportAuditFailure logs a sign-in the audit could not record.
func (g *Guard) reportAuditFailure() {
	if e, ok := g.store.auditErr.Swap("").(string); ok && e != "" {
		g.log.Error("sign-in audit not written", "err", e)
	}
}
