package access

import (
	"context"
	"time"
)

// StaffStore keeps staff accounts, their sessions and their teams. Every
// method is one domain operation; implementations hold no rules of their
// own (hashing, validation and lock-out protection live in Directory).
// sqliteStaff and postgresStaff implement it, and the conformance suite in
// store_test.go runs on both.
type StaffStore interface {
	// CountUsers returns how many accounts exist.
	CountUsers(ctx context.Context) (int, error)
	// InsertUser adds an account; a taken email gives ErrExists.
	InsertUser(ctx context.Context, u User, passwordHash string) error
	// UserByID and UserByEmail return an account and its password hash,
	// or ErrNotFound.
	UserByID(ctx context.Context, id string) (User, string, error)
	UserByEmail(ctx context.Context, email string) (User, string, error)
	// Users lists every account ordered by email.
	Users(ctx context.Context) ([]User, error)
	// UpdateUser changes name, roles and team (ErrNotFound when missing).
	UpdateUser(ctx context.Context, id, name string, roles []Role, teamID string) error
	// SetPassword stores a new hash and ends every session of the user, at once.
	SetPassword(ctx context.Context, id, passwordHash string) error
	// DeleteUser removes an account and its sessions.
	DeleteUser(ctx context.Context, id string) error

	// InsertSession stores a session by the hash of its token.
	InsertSession(ctx context.Context, s Session) error
	// SessionByToken returns the session with that token hash, or ErrNoSession.
	SessionByToken(ctx context.Context, tokenHash string) (Session, error)
	// DeleteSession ends one session.
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteExpiredSessions removes sessions that ended before now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)

	// Teams lists every team by name with its member count.
	Teams(ctx context.Context) ([]Team, error)
	// TeamByID returns one team with its member count, or ErrTeamNotFound.
	TeamByID(ctx context.Context, id string) (Team, error)
	// InsertTeam adds a team; a taken name gives ErrTeamExists.
	InsertTeam(ctx context.Context, t Team) error
	// RenameTeam renames a team (ErrTeamNotFound, ErrTeamExists).
	RenameTeam(ctx context.Context, id, name string) error
	// DeleteTeam removes a team and detaches its members, at once.
	DeleteTeam(ctx context.Context, id string) error

	// SetUserSites replaces the sites a user works on (ErrNotFound).
	SetUserSites(ctx context.Context, userID string, sites []string) error

	// LoginFailures returns an email's failed sign-ins (zero when none).
	LoginFailures(ctx context.Context, email string) (LoginFailures, error)
	// PutLoginFailures stores an email's failed sign-ins and drops the
	// records of every email whose window and lock ended before purgeBefore.
	PutLoginFailures(ctx context.Context, f LoginFailures, purgeBefore time.Time) error
	// ClearLoginFailures forgets an email's failed sign-ins.
	ClearLoginFailures(ctx context.Context, email string) error
	// AppendSignIn records a sign-in attempt in the audit.
	AppendSignIn(ctx context.Context, e SignIn) error
	// SignIns lists the newest attempts first, failed ones only when asked.
	SignIns(ctx context.Context, failedOnly bool, limit int) ([]SignIn, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// LoginFailures counts an email's failed sign-ins since FirstAt and says
// until when the account is locked.
type LoginFailures struct {
	Email       string
	Failures    int
	FirstAt     time.Time
	LockedUntil time.Time
}

// SignIn is one sign-in attempt in the audit.
type SignIn struct {
	At     time.Time `json:"at"`
	Email  string    `json:"email"`
	UserID string    `json:"user_id,omitempty"`
	IP     string    `json:"ip"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"`
}

// Session is a signed-in staff member's session as stored: only the hash
// of its token is kept.
type Session struct {
	TokenHash string
	UserID    string
	CSRF      string
	ExpiresAt time.Time
}
