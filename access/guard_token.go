package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

const localsToken = "parley.access.token"

// TokenRoute admits API tokens on one REST operation. Operations without a
// TokenRoute refuse tokens: admitting one is a decision made per operation
// (cmd/parley's token policy, documented as x-parley-scopes in
// docs/openapi.yaml).
type TokenRoute struct {
	Method string
	// Path is the route as mounted, with :name parameters; a trailing
	// "/*" also matches every path below it.
	Path  string
	Scope Scope
	// Site names the one site a call acts on, so that tokens limited to
	// sites are checked; it gets the path's parameters. nil means the
	// operation is not about one site: tokens limited to sites may not call it.
	Site func(c *fiber.Ctx, params map[string]string) (string, error)
}

// match reports whether method and path are this route's, with the path's parameters.
func (r TokenRoute) match(method, path string) (map[string]string, bool) {
	if r.Method != method {
		return nil, false
	}
	want := strings.Split(strings.Trim(r.Path, "/"), "/")
	got := strings.Split(strings.Trim(path, "/"), "/")
	prefix := len(want) > 0 && want[len(want)-1] == "*"
	if prefix {
		want = want[:len(want)-1]
		if len(got) < len(want) {
			return nil, false
		}
	} else if len(got) != len(want) {
		return nil, false
	}
	params := map[string]string{}
	for i, w := range want {
		switch {
		case strings.HasPrefix(w, ":"):
			if got[i] == "" {
				return nil, false
			}
			params[w[1:]] = got[i]
		case w != got[i]:
			return nil, false
		}
	}
	return params, true
}

// ErrSiteRequired is what a TokenRoute's Site answers when the call names
// no site and the token is limited to sites.
var ErrSiteRequired = errors.New("name the site of this call")

// UseTokens lets the guard admit API tokens (Authorization: Bearer pat_...)
// on the operations that AdmitTokens lists.
func (g *Guard) UseTokens(t *Tokens) { g.tokens = t }

// Tokens returns the token registry, or nil when tokens are not in use.
func (g *Guard) Tokens() *Tokens { return g.tokens }

// AdmitTokens adds operations API tokens may call.
func (g *Guard) AdmitTokens(routes ...TokenRoute) {
	g.tokenMu.Lock()
	defer g.tokenMu.Unlock()
	g.tokenRoutes = append(g.tokenRoutes, routes...)
}

func (g *Guard) tokenRoute(method, path string) (TokenRoute, map[string]string, bool) {
	g.tokenMu.RLock()
	defer g.tokenMu.RUnlock()
	for _, r := range g.tokenRoutes {
		if params, ok := r.match(method, path); ok {
			return r, params, true
		}
	}
	return TokenRoute{}, nil, false
}

// bearer returns the credentials of an Authorization: Bearer header.
func bearer(c *fiber.Ctx) (string, bool) {
	h := c.Get(fiber.HeaderAuthorization)
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(h[7:]), true
}

// TokenOf returns the API token Require admitted, if the caller used one.
func TokenOf(c *fiber.Ctx) (Token, bool) {
	t, ok := c.Locals(localsToken).(Token)
	return t, ok
}

// TokenUserID is the user id a token's calls are made as (authors of its
// messages, actors of its events).
func TokenUserID(tokenID string) string { return "token:" + tokenID }

// admitToken checks an API token against the operation's scope and site,
// runs the handler and audits the call. Tokens need no CSRF token: they
// are not ambient credentials a browser attaches by itself.
func (g *Guard) admitToken(c *fiber.Ctx, secret string) error {
	if g.tokens == nil {
		return fiber.NewError(fiber.StatusUnauthorized, "API tokens are not accepted here; sign in")
	}
	ctx := c.UserContext()
	t, err := g.tokens.Authenticate(ctx, secret)
	if errors.Is(err, ErrBadToken) {
		return fiber.NewError(fiber.StatusUnauthorized, "invalid or revoked API token")
	}
	if err != nil {
		g.log.Error("token lookup failed", "err", err)
		return fiber.NewError(fiber.StatusServiceUnavailable, "token store unavailable")
	}
	status, err := g.tokenCall(c, t)
	g.audit(ctx, c, t, status)
	return err
}

// tokenCall checks scope and site, then runs the handler; it returns the
// status the call ends with.
func (g *Guard) tokenCall(c *fiber.Ctx, t Token) (int, error) {
	refuse := func(code int, msg string) (int, error) { return code, fiber.NewError(code, msg) }
	route, params, ok := g.tokenRoute(c.Method(), c.Path())
	if !ok {
		return refuse(fiber.StatusForbidden, fmt.Sprintf("API tokens may not call %s %s; sign in as staff", c.Method(), c.Path()))
	}
	if !t.Has(route.Scope) {
		return refuse(fiber.StatusForbidden, fmt.Sprintf("this token lacks the scope %s", route.Scope))
	}
	if len(t.Sites) > 0 {
		if route.Site == nil {
			return refuse(fiber.StatusForbidden, "this token is limited to sites and this call is not about one site")
		}
		site, err := route.Site(c, params)
		switch {
		case errors.Is(err, ErrSiteRequired):
			return refuse(fiber.StatusBadRequest, "this token is limited to sites "+strings.Join(t.Sites, ", ")+": "+err.Error())
		case err != nil:
			var fe *fiber.Error
			if errors.As(err, &fe) {
				return fe.Code, fe
			}
			return fiber.StatusInternalServerError, err
		case !t.AllowsSite(site):
			return refuse(fiber.StatusForbidden, "this token is not allowed on site "+site)
		}
	}
	// The token's sites scope the call like a staff member's (sites.go);
	// a token without a site limit acts on every site.
	c.Locals(localsUser, User{ID: TokenUserID(t.ID), Name: t.Name, Sites: t.Sites, everySite: len(t.Sites) == 0})
	c.Locals(localsToken, t)
	err := c.Next()
	status := c.Response().StatusCode()
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		status = fe.Code
	case err != nil:
		status = fiber.StatusInternalServerError
	}
	return status, err
}

// audit records a token's call; a failure to audit is logged loudly, the
// call's own answer stands.
func (g *Guard) audit(ctx context.Context, c *fiber.Ctx, t Token, status int) {
	use := TokenUse{TokenID: t.ID, At: time.Now().UTC(), Method: c.Method(), Path: truncatePath(c.Path()), Status: status, IP: c.IP()}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := g.tokens.RecordUse(actx, use); err != nil {
		g.log.Error("API token use not audited", "token", t.ID, "err", err)
	}
	g.log.Info("API token used", "token", t.ID, "name", t.Name, "method", use.Method, "path", use.Path, "status", status, "ip", use.IP)
}

func truncatePath(p string) string {
	if len(p) > 512 {
		return p[:512]
	}
	return p
}
