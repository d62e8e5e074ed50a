package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// AccessListener hears, on this node, that a session ended or that a
// user's access changed (roles, password, sites, deletion), so whatever
// holds a session open beyond one request (staff WebSockets) can close
// it. cmd/parley registers the chat and analytics services; access never
// imports them. Calls are synchronous and must not block.
type AccessListener interface {
	// SessionEnded: the session with this id (SessionIDOf) is over.
	SessionEnded(sessionID, reason string)
	// UserChanged: every session of the user must be checked again.
	UserChanged(userID, reason string)
}

// Reasons given to listeners.
const (
	ReasonSignedOut       = "signed out"
	ReasonAccountChanged  = "account changed"
	ReasonPasswordChanged = "password changed"
	ReasonAccountDeleted  = "account deleted"
)

type listeners struct {
	mu   sync.RWMutex
	list []AccessListener
}

// Listen registers l for every later session end and access change.
func (d *Directory) Listen(l AccessListener) {
	d.listeners.mu.Lock()
	d.listeners.list = append(d.listeners.list, l)
	d.listeners.mu.Unlock()
}

func (d *Directory) sessionEnded(sessionID, reason string) {
	d.listeners.mu.RLock()
	defer d.listeners.mu.RUnlock()
	for _, l := range d.listeners.list {
		l.SessionEnded(sessionID, reason)
	}
}

func (d *Directory) userChanged(userID, reason string) {
	d.listeners.mu.RLock()
	defer d.listeners.mu.RUnlock()
	for _, l := range d.listeners.list {
		l.UserChanged(userID, reason)
	}
}

const localsSession = "parley.access.session"

// SessionIDOf returns the id of the session Require admitted: the hash of
// its token, never the token itself. Sockets keep it to be closed when the
// session ends and to look it up again (CheckSession).
func SessionIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(localsSession).(string)
	return id
}

// ErrAccountDeleted is a session that ended because its user was
// deleted; it is also ErrNoSession.
var ErrAccountDeleted = fmt.Errorf("%w: %s", ErrNoSession, ReasonAccountDeleted)

// CheckUserSession is CheckSession for a socket that knows its user:
// deleting an account ends its sessions first, so a session gone with its
// user gives ErrAccountDeleted, which says why as the deletion notice
// (that may still be on its way) would.
func (d *Directory) CheckUserSession(ctx context.Context, sessionID, userID string) (User, error) {
	u, err := d.CheckSession(ctx, sessionID)
	if errors.Is(err, ErrNoSession) {
		if _, uerr := d.User(ctx, userID); errors.Is(uerr, ErrNotFound) {
			return User{}, ErrAccountDeleted
		}
	}
	return u, err
}

// CheckSession looks a session up again by its id: the user as stored
// now, or ErrNoSession when the session ended, expired or its user is
// gone. Open sockets call it periodically.
func (d *Directory) CheckSession(ctx context.Context, sessionID string) (User, error) {
	if sessionID == "" {
		return User{}, ErrNoSession
	}
	s, err := d.store.SessionByToken(ctx, sessionID)
	if errors.Is(err, ErrNoSession) || (err == nil && time.Now().After(s.ExpiresAt)) {
		return User{}, ErrNoSession
	}
	if err != nil {
		return User{}, fmt.Errorf("check session: %w", err)
	}
	u, err := d.User(ctx, s.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrNoSession
	}
	return u, err
}
