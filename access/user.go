// Package access owns staff identity: accounts, roles, password hashing
// (bcrypt), cookie sessions, CSRF tokens, teams, and the Fiber middleware
// that checks a role on every staff endpoint and socket. chatsvc,
// moderation, analytics and dashboard import it to guard their routes; it
// imports only sqlstore. Its rows live behind StaffStore, on SQLite
// (store_sqlite.go) or PostgreSQL (store_postgres.go).
package access

import (
	"errors"
	"fmt"
	"time"
)

// Role is a staff role.
type Role string

// Staff roles. Admin implies every other role.
const (
	Agent      Role = "agent"
	Supervisor Role = "supervisor"
	Moderator  Role = "moderator"
	Admin      Role = "admin"
)

// Roles lists every staff role.
var Roles = []Role{Agent, Supervisor, Moderator, Admin}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want agent, supervisor, moderator or admin)", s)
}

// User is a staff account.
type User struct {
	ID     string `json:"id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	Roles  []Role `json:"roles"`
	TeamID string `json:"team_id,omitempty"`
	// Sites are the sites a non-admin works on: agents, supervisors and
	// moderators see and act on these only. Admins see every site.
	Sites     []string  `json:"sites"`
	CreatedAt time.Time `json:"created_at"`

	// everySite: an API token without a site limit acts on every site.
	everySite bool
}

// OnSite reports whether the user may see and act on site (admins: every site).
func (u User) OnSite(site string) bool {
	if u.IsAdmin() || u.everySite {
		return true
	}
	for _, s := range u.Sites {
		if s == site {
			return true
		}
	}
	return false
}

// IsAdmin reports whether the user holds the admin role.
func (u User) IsAdmin() bool {
	for _, r := range u.Roles {
		if r == Admin {
			return true
		}
	}
	return false
}

// SiteScope is the sites a user's queries are limited to: nil for admins
// (every site), otherwise their sites (possibly none).
func (u User) SiteScope() []string {
	if u.IsAdmin() || u.everySite {
		return nil
	}
	if u.Sites == nil {
		return []string{}
	}
	return u.Sites
}

// Has reports whether the user holds role r (admins hold all).
func (u User) Has(r Role) bool {
	for _, have := range u.Roles {
		if have == r || have == Admin {
			return true
		}
	}
	return false
}

// Errors callers branch on.
var (
	ErrBadCredentials = errors.New("wrong email or password")
	ErrNoSession      = errors.New("no valid session")
	ErrExists         = errors.New("a user with this email exists")
	ErrNotFound       = errors.New("user not found")
)
