package access

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// openStaffStore opens a fresh store of the given backend for t.
func openStaffStore(t testing.TB, backend string) StaffStore {
	t.Helper()
	return sqltest.Store(t, backend, "access", PostgresSchema, 4, OpenSQLite, OpenPostgres)
}

// TestStaffStoreConformance runs every StaffStore method on each backend
// and expects the same answers.
func TestStaffStoreConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStaffStore(t, backend)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		created := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
		ann := User{ID: "u1", Email: "ann@example.test", Name: "Ann", Roles: []Role{Agent, Supervisor}, CreatedAt: created}
		bob := User{ID: "u2", Email: "bob@example.test", Name: "Bob", Roles: []Role{Admin}, CreatedAt: created}
		for _, u := range []User{bob, ann} {
			if err := s.InsertUser(ctx, u, "hash-"+u.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.InsertUser(ctx, User{ID: "u3", Email: ann.Email, Name: "x", Roles: []Role{Agent}, CreatedAt: created}, "h"); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate email: %v, want ErrExists", err)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != 2 {
			t.Fatalf("CountUsers = %d, %v", n, err)
		}
		got, hash, err := s.UserByEmail(ctx, ann.Email)
		if err != nil || hash != "hash-u1" || got.ID != "u1" || !slices.Equal(got.Roles, ann.Roles) || !got.CreatedAt.Equal(created) {
			t.Fatalf("UserByEmail = %+v %q %v", got, hash, err)
		}
		if _, _, err := s.UserByID(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
		users, err := s.Users(ctx)
		if err != nil || len(users) != 2 || users[0].Email != ann.Email || users[1].Email != bob.Email {
			t.Fatalf("Users not ordered by email: %+v %v", users, err)
		}
		if err := s.UpdateUser(ctx, "u1", "Ann B", []Role{Moderator}, "t1"); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateUser(ctx, "nope", "x", []Role{Agent}, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		got, _, _ = s.UserByID(ctx, "u1")
		if got.Name != "Ann B" || !slices.Equal(got.Roles, []Role{Moderator}) || got.TeamID != "t1" {
			t.Fatalf("after update: %+v", got)
		}

		// Sessions: a new password ends them all, at once.
		exp := time.Now().Add(time.Hour).Truncate(time.Second)
		for _, h := range []string{"s1", "s2"} {
			if err := s.InsertSession(ctx, Session{TokenHash: h, UserID: "u1", CSRF: "c-" + h, ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.InsertSession(ctx, Session{TokenHash: "old", UserID: "u2", CSRF: "c", ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		ss, err := s.SessionByToken(ctx, "s1")
		if err != nil || ss.UserID != "u1" || ss.CSRF != "c-s1" || !ss.ExpiresAt.Equal(exp) {
			t.Fatalf("SessionByToken = %+v %v", ss, err)
		}
		if n, err := s.DeleteExpiredSessions(ctx, time.Now()); err != nil || n != 1 {
			t.Fatalf("DeleteExpiredSessions = %d, %v", n, err)
		}
		if err := s.DeleteSession(ctx, "s2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionByToken(ctx, "s2"); !errors.Is(err, ErrNoSession) {
			t.Fatalf("deleted session: %v", err)
		}
		if err := s.SetPassword(ctx, "u1", "new-hash"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionByToken(ctx, "s1"); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session after password change: %v", err)
		}
		if _, h, _ := s.UserByID(ctx, "u1"); h != "new-hash" {
			t.Fatalf("hash = %q", h)
		}
		if err := s.SetPassword(ctx, "nope", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("password of missing user: %v", err)
		}

		// Teams.
		tm := Team{ID: "t1", Name: "Billing", CreatedAt: created}
		if err := s.InsertTeam(ctx, tm); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertTeam(ctx, Team{ID: "t2", Name: "Billing", CreatedAt: created}); !errors.Is(err, ErrTeamExists) {
			t.Fatalf("duplicate team: %v", err)
		}
		if err := s.InsertTeam(ctx, Team{ID: "t2", Name: "Returns", CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
		teams, err := s.Teams(ctx)
		if err != nil || len(teams) != 2 || teams[0].Name != "Billing" || teams[0].Members != 1 || teams[1].Members != 0 {
			t.Fatalf("Teams = %+v %v", teams, err)
		}
		if err := s.RenameTeam(ctx, "t2", "Billing"); !errors.Is(err, ErrTeamExists) {
			t.Fatalf("rename onto taken name: %v", err)
		}
		if err := s.RenameTeam(ctx, "zz", "X"); !errors.Is(err, ErrTeamNotFound) {
			t.Fatalf("rename missing: %v", err)
		}
		if err := s.RenameTeam(ctx, "t1", "Accounts"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TeamByID(ctx, "t1"); err != nil || got.Name != "Accounts" || !got.CreatedAt.Equal(created) {
			t.Fatalf("TeamByID = %+v %v", got, err)
		}
		if err := s.DeleteTeam(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTeam(ctx, "t1"); !errors.Is(err, ErrTeamNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if got, _, _ := s.UserByID(ctx, "u1"); got.TeamID != "" {
			t.Fatalf("member kept a deleted team: %q", got.TeamID)
		}

		// Deleting a user takes their sessions with them.
		if err := s.InsertSession(ctx, Session{TokenHash: "s3", UserID: "u2", CSRF: "c", ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, "u2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionByToken(ctx, "s3"); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session of deleted user: %v", err)
		}
		if n, _ := s.CountUsers(ctx); n != 1 {
			t.Fatalf("CountUsers after delete = %d", n)
		}
	})
}
