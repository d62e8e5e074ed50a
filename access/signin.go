package access

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Sign-in protection (docs/security.md): after lockoutFailures failed
// sign-ins to one email within lockoutWindow the account is locked for
// lockoutFor, whatever the password; every attempt, failed or not, is
// logged and kept in the sign-in audit (GET /api/admin/signins). The
// per-address rate limit of the login route stays in front of it.
const (
	lockoutFailures = 5
	lockoutWindow   = 15 * time.Minute
	lockoutFor      = 15 * time.Minute
	// failureMemory is how long failure counts of quiet emails are kept.
	failureMemory = 24 * time.Hour
)

// LockedError refuses a sign-in to a locked account.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed sign-ins for this account; try again after %s UTC", e.Until.UTC().Format("15:04"))
}

// SignIn checks credentials like Authenticate, with the per-account
// lockout, and records the attempt in the audit. ip is the client's
// address, for the audit.
func (d *Directory) SignIn(ctx context.Context, email, password, ip string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	now := time.Now()
	f, err := d.store.LoginFailures(ctx, email)
	if err != nil {
		return User{}, err
	}
	if now.Before(f.LockedUntil) {
		d.audit(ctx, SignIn{At: now, Email: email, IP: ip, Reason: "account locked"})
		return User{}, &LockedError{Until: f.LockedUntil}
	}
	u, err := d.Authenticate(ctx, email, password)
	if errors.Is(err, ErrBadCredentials) {
		if f.FirstAt.IsZero() || now.Sub(f.FirstAt) > lockoutWindow {
			f = LoginFailures{Email: email, FirstAt: now}
		}
		f.Failures++
		reason := "wrong email or password"
		if f.Failures >= lockoutFailures {
			f.Failures, f.FirstAt, f.LockedUntil = 0, now, now.Add(lockoutFor)
			reason += "; account locked"
		}
		if perr := d.store.PutLoginFailures(ctx, f, now.Add(-failureMemory)); perr != nil {
			return User{}, perr
		}
		d.audit(ctx, SignIn{At: now, Email: email, IP: ip, Reason: reason})
		return User{}, err
	}
	if err != nil {
		return User{}, err
	}
	if f.Failures > 0 {
		if err := d.store.ClearLoginFailures(ctx, email); err != nil {
			return User{}, err
		}
	}
	d.audit(ctx, SignIn{At: now, Email: email, UserID: u.ID, IP: ip, OK: true})
	return u, nil
}

// audit records an attempt; a failure to record is logged by the caller's
// log line, never turned into a refused sign-in.
func (d *Directory) audit(ctx context.Context, e SignIn) {
	if err := d.store.AppendSignIn(ctx, e); err != nil {
		d.auditErr.Store(err.Error())
	}
}

// SignIns lists the newest sign-in attempts (failed ones only when asked).
func (d *Directory) SignIns(ctx context.Context, failedOnly bool, limit int) ([]SignIn, error) {
	return d.store.SignIns(ctx, failedOnly, limit)
}

// SetAllowedOrigins names origins besides the server's own that may post
// the sign-in form (a separate front end).
func (g *Guard) SetAllowedOrigins(origins []string) {
	g.origins = append([]string(nil), origins...)
}

// originOK refuses a sign-in posted from another site (login CSRF): a
// browser always sends Origin on a POST; it must name this server's host
// or an allowed origin. Requests without Origin come from non-browser
// clients, which carry no other site's intent.
func (g *Guard) originOK(c *fiber.Ctx) bool {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return true
	}
	for _, o := range g.origins {
		if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, c.Hostname())
}
