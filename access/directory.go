package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
)

// Directory is the staff directory: accounts with hashed passwords,
// sessions and teams, with their rules, over a StaffStore.
type Directory struct {
	store      StaffStore
	sessionTTL time.Duration
	bcryptCost int
	listeners  listeners
	// auditErr keeps the last failure to write the sign-in audit, for the log.
	auditErr atomic.Value
}

// NewDirectory builds a directory over a migrated store.
func NewDirectory(store StaffStore) *Directory {
	return &Directory{store: store, sessionTTL: 12 * time.Hour, bcryptCost: bcrypt.DefaultCost}
}

// SetBcryptCost lowers the hashing cost; tests that create many users use bcrypt.MinCost.
func (d *Directory) SetBcryptCost(cost int) { d.bcryptCost = cost }

// Ping reports whether the store answers.
func (d *Directory) Ping(ctx context.Context) error { return d.store.Ping(ctx) }

func checkPassword(password string) error {
	if len(password) < 8 || len(password) > 72 {
		return errors.New("password must be 8 to 72 bytes long")
	}
	return nil
}

// CreateUser adds a staff account with a hashed password.
func (d *Directory) CreateUser(ctx context.Context, email, name, password string, roles []Role, teamID string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(email, "@") || len(email) > 254 {
		return User{}, fmt.Errorf("email %q is not an address", email)
	}
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	if len(roles) == 0 {
		return User{}, errors.New("a user needs at least one role")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), d.bcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	u := User{ID: uuid.NewString(), Email: email, Name: name, Roles: roles, TeamID: teamID, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := d.store.InsertUser(ctx, u, string(hash)); err != nil {
		if errors.Is(err, ErrExists) {
			return User{}, err
		}
		return User{}, fmt.Errorf("create user %s: %w", email, err)
	}
	return u, nil
}

// Count returns how many staff accounts exist.
func (d *Directory) Count(ctx context.Context) (int, error) { return d.store.CountUsers(ctx) }

// dummyHash is compared against for unknown emails, so a failed sign-in
// costs the same bcrypt time whether or not the email exists.
const dummyHash = "$2a$10$0000000000000000000000000000000000000000000000000000."

// Authenticate checks an email and password; it spends the same bcrypt
// time for an unknown email so timing does not reveal which emails exist.
func (d *Directory) Authenticate(ctx context.Context, email, password string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	u, hash, err := d.store.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
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
func (d *Directory) User(ctx context.Context, id string) (User, error) {
	u, _, err := d.store.UserByID(ctx, id)
	return u, err
}

// Users lists every account by email.
func (d *Directory) Users(ctx context.Context) ([]User, error) { return d.store.Users(ctx) }

// UpdateUser changes name, roles and team; empty password keeps the old
// one, a new one ends every session of the user.
func (d *Directory) UpdateUser(ctx context.Context, id, name string, roles []Role, teamID, password string) error {
	if len(roles) == 0 {
		return errors.New("a user needs at least one role")
	}
	var hash []byte
	if password != "" {
		if err := checkPassword(password); err != nil {
			return err
		}
		var err error
		if hash, err = bcrypt.GenerateFromPassword([]byte(password), d.bcryptCost); err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
	}
	if err := d.store.UpdateUser(ctx, id, name, roles, teamID); err != nil {
		return err
	}
	if hash != nil {
		if err := d.store.SetPassword(ctx, id, string(hash)); err != nil {
			return err
		}
		if u, _, err := d.store.UserByID(ctx, id); err == nil {
			// A new password lifts a lockout.
			if err := d.store.ClearLoginFailures(ctx, u.Email); err != nil {
				return err
			}
		}
		d.userChanged(id, ReasonPasswordChanged)
		return nil
	}
	d.userChanged(id, ReasonAccountChanged)
	return nil
}

// DeleteUser removes an account and its sessions.
func (d *Directory) DeleteUser(ctx context.Context, id string) error {
	if err := d.store.DeleteUser(ctx, id); err != nil {
		return err
	}
	d.userChanged(id, ReasonAccountDeleted)
	return nil
}

// NewSession starts a session; only the token's hash is stored.
func (d *Directory) NewSession(ctx context.Context, userID string) (token, csrf string, err error) {
	token, csrf = randomToken(), randomToken()
	s := Session{TokenHash: hashToken(token), UserID: userID, CSRF: csrf, ExpiresAt: time.Now().Add(d.sessionTTL)}
	if err := d.store.InsertSession(ctx, s); err != nil {
		return "", "", fmt.Errorf("create session: %w", err)
	}
	return token, csrf, nil
}

// Session resolves a session token to its user and CSRF token.
func (d *Directory) Session(ctx context.Context, token string) (User, string, error) {
	if token == "" {
		return User{}, "", ErrNoSession
	}
	s, err := d.store.SessionByToken(ctx, hashToken(token))
	if errors.Is(err, ErrNoSession) || (err == nil && time.Now().After(s.ExpiresAt)) {
		return User{}, "", ErrNoSession
	}
	if err != nil {
		return User{}, "", fmt.Errorf("read session: %w", err)
	}
	u, err := d.User(ctx, s.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, "", ErrNoSession
	}
	return u, s.CSRF, err
}

// EndSession deletes a session.
func (d *Directory) EndSession(ctx context.Context, token string) error {
	id := hashToken(token)
	if err := d.store.DeleteSession(ctx, id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	d.sessionEnded(id, ReasonSignedOut)
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
