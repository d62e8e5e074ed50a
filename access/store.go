// Package access owns staff identity: accounts, roles, password hashing
// (bcrypt), cookie sessions, CSRF tokens, and the Fiber middleware that
// checks a role on every staff endpoint and socket. chatsvc, moderation,
// analytics and dashboard import it to guard their routes; it imports only
// sqlstore.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/sqlstore"
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
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Roles     []Role    `json:"roles"`
	TeamID    string    `json:"team_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
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

// Store keeps users and sessions in SQL.
type Store struct {
	db         *sql.DB
	sessionTTL time.Duration
	bcryptCost int
}

var migrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE staff_users (
	id TEXT PRIMARY KEY,
	email TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	roles TEXT NOT NULL,
	team_id TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
);
CREATE TABLE staff_sessions (
	token_hash TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
	csrf TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX staff_sessions_user ON staff_sessions(user_id);`},
	{Version: 2, SQL: `
CREATE TABLE staff_teams (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL
);`},
}

// Open migrates the schema on db and returns a store.
func Open(ctx context.Context, db *sql.DB) (*Store, error) {
	if err := sqlstore.Migrate(ctx, db, "access", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db, sessionTTL: 12 * time.Hour, bcryptCost: bcrypt.DefaultCost}, nil
}

// SetBcryptCost lowers the hashing cost; tests that create many users use bcrypt.MinCost.
func (s *Store) SetBcryptCost(cost int) { s.bcryptCost = cost }

// CreateUser adds a staff account with a hashed password.
func (s *Store) CreateUser(ctx context.Context, email, name, password string, roles []Role, teamID string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(email, "@") || len(email) > 254 {
		return User{}, fmt.Errorf("email %q is not an address", email)
	}
	if len(password) < 8 || len(password) > 72 {
		return User{}, errors.New("password must be 8 to 72 bytes long")
	}
	if len(roles) == 0 {
		return User{}, errors.New("a user needs at least one role")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	rolesJSON, _ := json.Marshal(roles)
	u := User{ID: uuid.NewString(), Email: email, Name: name, Roles: roles, TeamID: teamID, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	_, err = s.db.ExecContext(ctx, `INSERT INTO staff_users (id, email, name, password_hash, roles, team_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, string(hash), string(rolesJSON), teamID, u.CreatedAt.Format(time.RFC3339))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return User{}, ErrExists
		}
		return User{}, fmt.Errorf("create user %s: %w", email, err)
	}
	return u, nil
}

// Count returns how many staff accounts exist.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM staff_users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// Authenticate checks an email and password; it spends the same bcrypt
// time for an unknown email so timing does not reveal which emails exist.
func (s *Store) Authenticate(ctx context.Context, email, password string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var hash string
	u, err := s.scanUser(s.db.QueryRowContext(ctx, `SELECT id, email, name, roles, team_id, created_at, password_hash FROM staff_users WHERE email = ?`, email), &hash)
	if errors.Is(err, ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword([]byte("$2a$10$0000000000000000000000000000000000000000000000000000."), []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

// User returns one account.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	var hash string
	return s.scanUser(s.db.QueryRowContext(ctx, `SELECT id, email, name, roles, team_id, created_at, password_hash FROM staff_users WHERE id = ?`, id), &hash)
}

// Users lists every account by email.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, email, name, roles, team_id, created_at, password_hash FROM staff_users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var hash string
		u, err := s.scanUser(rows, &hash)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser changes name, roles and team; empty password keeps the old one.
func (s *Store) UpdateUser(ctx context.Context, id, name string, roles []Role, teamID, password string) error {
	if len(roles) == 0 {
		return errors.New("a user needs at least one role")
	}
	rolesJSON, _ := json.Marshal(roles)
	res, err := s.db.ExecContext(ctx, `UPDATE staff_users SET name = ?, roles = ?, team_id = ? WHERE id = ?`, name, string(rolesJSON), teamID, id)
	if err != nil {
		return fmt.Errorf("update user %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if password != "" {
		if len(password) < 8 || len(password) > 72 {
			return errors.New("password must be 8 to 72 bytes long")
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE staff_users SET password_hash = ? WHERE id = ?`, string(hash), id); err != nil {
			return fmt.Errorf("set password of %s: %w", id, err)
		}
		// A new password ends every existing session of the user.
		if _, err := s.db.ExecContext(ctx, `DELETE FROM staff_sessions WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("end sessions of %s: %w", id, err)
		}
	}
	return nil
}

// DeleteUser removes an account and its sessions.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM staff_users WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func (s *Store) scanUser(row scanner, hash *string) (User, error) {
	var u User
	var roles, created string
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &roles, &u.TeamID, &created, hash); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return User{}, ErrNotFound
		}
		return User{}, fmt.Errorf("read user: %w", err)
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return User{}, fmt.Errorf("read roles of %s: %w", u.ID, err)
	}
	u.CreatedAt, _ = time.Parse(time.RFC3339, created)
	return u, nil
}

// NewSession starts a session; only the token's hash is stored.
func (s *Store) NewSession(ctx context.Context, userID string) (token, csrf string, err error) {
	token, csrf = randomToken(), randomToken()
	_, err = s.db.ExecContext(ctx, `INSERT INTO staff_sessions (token_hash, user_id, csrf, expires_at) VALUES (?, ?, ?, ?)`,
		hashToken(token), userID, csrf, time.Now().Add(s.sessionTTL).Unix())
	if err != nil {
		return "", "", fmt.Errorf("create session: %w", err)
	}
	return token, csrf, nil
}

// Session resolves a session token to its user and CSRF token.
func (s *Store) Session(ctx context.Context, token string) (User, string, error) {
	if token == "" {
		return User{}, "", ErrNoSession
	}
	var userID, csrf string
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id, csrf, expires_at FROM staff_sessions WHERE token_hash = ?`, hashToken(token)).Scan(&userID, &csrf, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && time.Now().Unix() > expires) {
		return User{}, "", ErrNoSession
	}
	if err != nil {
		return User{}, "", fmt.Errorf("read session: %w", err)
	}
	u, err := s.User(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return User{}, "", ErrNoSession
	}
	return u, csrf, err
}

// EndSession deletes a session.
func (s *Store) EndSession(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM staff_sessions WHERE token_hash = ?`, hashToken(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}
