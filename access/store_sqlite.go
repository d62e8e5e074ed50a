package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parleychat/parley/sqlstore"
)

// sqliteMigrations is access.db's schema; append steps, never edit applied ones.
var sqliteMigrations = []sqlstore.Migration{
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
	// Sites a staff member works on, sign-in lockout and the sign-in audit
	// (docs/security.md).
	{Version: 3, SQL: `
CREATE TABLE staff_sites (
	user_id TEXT NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
	site_id TEXT NOT NULL,
	PRIMARY KEY (user_id, site_id)
);
CREATE TABLE staff_login_failures (
	email TEXT PRIMARY KEY,
	failures INTEGER NOT NULL,
	first_at INTEGER NOT NULL,
	locked_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE staff_signins (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at INTEGER NOT NULL,
	email TEXT NOT NULL,
	user_id TEXT NOT NULL DEFAULT '',
	ip TEXT NOT NULL DEFAULT '',
	ok INTEGER NOT NULL,
	reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX staff_signins_at ON staff_signins(at);`},
}

// sqliteStaff keeps staff rows in an SQLite file (access.db).
type sqliteStaff struct{ db *sql.DB }

// OpenSQLite migrates access's tables on db and returns the store.
func OpenSQLite(ctx context.Context, db *sql.DB) (StaffStore, error) {
	if err := sqlstore.Migrate(ctx, db, "access", sqliteMigrations); err != nil {
		return nil, err
	}
	return &sqliteStaff{db: db}, nil
}

func isSQLiteUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func (s *sqliteStaff) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *sqliteStaff) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM staff_users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

func (s *sqliteStaff) InsertUser(ctx context.Context, u User, hash string) error {
	roles, _ := json.Marshal(u.Roles)
	_, err := s.db.ExecContext(ctx, `INSERT INTO staff_users (id, email, name, password_hash, roles, team_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, hash, string(roles), u.TeamID, u.CreatedAt.UTC().Format(time.RFC3339))
	if isSQLiteUnique(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

const sqliteUserColumns = `id, email, name, roles, team_id, created_at, password_hash`

func scanSQLiteUser(row interface{ Scan(...any) error }) (User, string, error) {
	var u User
	var roles, created, hash string
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &roles, &u.TeamID, &created, &hash); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return User{}, "", ErrNotFound
		}
		return User{}, "", fmt.Errorf("read user: %w", err)
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return User{}, "", fmt.Errorf("read roles of %s: %w", u.ID, err)
	}
	u.CreatedAt, _ = time.Parse(time.RFC3339, created)
	return u, hash, nil
}

func (s *sqliteStaff) UserByID(ctx context.Context, id string) (User, string, error) {
	return s.withSites(ctx)(scanSQLiteUser(s.db.QueryRowContext(ctx, `SELECT `+sqliteUserColumns+` FROM staff_users WHERE id = ?`, id)))
}

func (s *sqliteStaff) UserByEmail(ctx context.Context, email string) (User, string, error) {
	return s.withSites(ctx)(scanSQLiteUser(s.db.QueryRowContext(ctx, `SELECT `+sqliteUserColumns+` FROM staff_users WHERE email = ?`, email)))
}

// withSites fills a scanned user's sites.
func (s *sqliteStaff) withSites(ctx context.Context) func(User, string, error) (User, string, error) {
	return func(u User, hash string, err error) (User, string, error) {
		if err != nil {
			return u, hash, err
		}
		all, err := s.sitesOf(ctx, u.ID)
		u.Sites = all[u.ID]
		return u, hash, err
	}
}

// sitesOf returns the sites of one user (userID) or of everyone ("").
func (s *sqliteStaff) sitesOf(ctx context.Context, userID string) (map[string][]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, site_id FROM staff_sites WHERE ? = '' OR user_id = ? ORDER BY user_id, site_id`, userID, userID)
	if err != nil {
		return nil, fmt.Errorf("read staff sites: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var u, site string
		if err := rows.Scan(&u, &site); err != nil {
			return nil, fmt.Errorf("read staff sites: %w", err)
		}
		out[u] = append(out[u], site)
	}
	return out, rows.Err()
}

func (s *sqliteStaff) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteUserColumns+` FROM staff_users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, _, err := scanSQLiteUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	sites, err := s.sitesOf(ctx, "")
	for i := range out {
		out[i].Sites = sites[out[i].ID]
	}
	return out, err
}

func (s *sqliteStaff) UpdateUser(ctx context.Context, id, name string, roles []Role, teamID string) error {
	rj, _ := json.Marshal(roles)
	res, err := s.db.ExecContext(ctx, `UPDATE staff_users SET name = ?, roles = ?, team_id = ? WHERE id = ?`, name, string(rj), teamID, id)
	if err != nil {
		return fmt.Errorf("update user %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqliteStaff) SetPassword(ctx context.Context, id, hash string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE staff_users SET password_hash = ? WHERE id = ?`, hash, id)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM staff_sessions WHERE user_id = ?`, id); err != nil {
		return fmt.Errorf("end sessions of %s: %w", id, err)
	}
	return tx.Commit()
}

func (s *sqliteStaff) DeleteUser(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM staff_users WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

func (s *sqliteStaff) InsertSession(ctx context.Context, ss Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO staff_sessions (token_hash, user_id, csrf, expires_at) VALUES (?, ?, ?, ?)`,
		ss.TokenHash, ss.UserID, ss.CSRF, ss.ExpiresAt.Unix())
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

func (s *sqliteStaff) SessionByToken(ctx context.Context, tokenHash string) (Session, error) {
	ss := Session{TokenHash: tokenHash}
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id, csrf, expires_at FROM staff_sessions WHERE token_hash = ?`, tokenHash).Scan(&ss.UserID, &ss.CSRF, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	ss.ExpiresAt = time.Unix(expires, 0)
	return ss, nil
}

func (s *sqliteStaff) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM staff_sessions WHERE token_hash = ?`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (s *sqliteStaff) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM staff_sessions WHERE expires_at < ?`, now.Unix())
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

const sqliteTeamSelect = `SELECT t.id, t.name, t.created_at, (SELECT count(*) FROM staff_users u WHERE u.team_id = t.id) FROM staff_teams t`

func scanSQLiteTeam(row interface{ Scan(...any) error }) (Team, error) {
	var t Team
	var created string
	if err := row.Scan(&t.ID, &t.Name, &created, &t.Members); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Team{}, ErrTeamNotFound
		}
		return Team{}, fmt.Errorf("read team: %w", err)
	}
	t.CreatedAt, _ = time.Parse(time.RFC3339, created)
	return t, nil
}

func (s *sqliteStaff) Teams(ctx context.Context) ([]Team, error) {
	rows, err := s.db.QueryContext(ctx, sqliteTeamSelect+` ORDER BY t.name`)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	defer rows.Close()
	var out []Team
	for rows.Next() {
		t, err := scanSQLiteTeam(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	return out, nil
}

func (s *sqliteStaff) TeamByID(ctx context.Context, id string) (Team, error) {
	return scanSQLiteTeam(s.db.QueryRowContext(ctx, sqliteTeamSelect+` WHERE t.id = ?`, id))
}

func (s *sqliteStaff) InsertTeam(ctx context.Context, t Team) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO staff_teams (id, name, created_at) VALUES (?, ?, ?)`, t.ID, t.Name, t.CreatedAt.UTC().Format(time.RFC3339))
	if isSQLiteUnique(err) {
		return ErrTeamExists
	}
	if err != nil {
		return fmt.Errorf("create team %q: %w", t.Name, err)
	}
	return nil
}

func (s *sqliteStaff) RenameTeam(ctx context.Context, id, name string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE staff_teams SET name = ? WHERE id = ?`, name, id)
	if isSQLiteUnique(err) {
		return ErrTeamExists
	}
	if err != nil {
		return fmt.Errorf("rename team %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTeamNotFound
	}
	return nil
}

func (s *sqliteStaff) DeleteTeam(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete team %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM staff_teams WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete team %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTeamNotFound
	}
	if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET team_id = '' WHERE team_id = ?`, id); err != nil {
		return fmt.Errorf("detach members of team %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete team %s: commit: %w", id, err)
	}
	return nil
}

func (s *sqliteStaff) SetUserSites(ctx context.Context, userID string, sites []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set sites of %s: %w", userID, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM staff_users WHERE id = ?`, userID).Scan(&n); err != nil {
		return fmt.Errorf("set sites of %s: %w", userID, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM staff_sites WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("set sites of %s: %w", userID, err)
	}
	for _, site := range sites {
		if _, err := tx.ExecContext(ctx, `INSERT INTO staff_sites (user_id, site_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, site); err != nil {
			return fmt.Errorf("set sites of %s: %w", userID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set sites of %s: commit: %w", userID, err)
	}
	return nil
}

func (s *sqliteStaff) LoginFailures(ctx context.Context, email string) (LoginFailures, error) {
	f := LoginFailures{Email: email}
	var first, locked int64
	err := s.db.QueryRowContext(ctx, `SELECT failures, first_at, locked_until FROM staff_login_failures WHERE email = ?`, email).Scan(&f.Failures, &first, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read sign-in failures: %w", err)
	}
	f.FirstAt, f.LockedUntil = time.UnixMilli(first), time.UnixMilli(locked)
	return f, nil
}

func (s *sqliteStaff) PutLoginFailures(ctx context.Context, f LoginFailures, purgeBefore time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO staff_login_failures (email, failures, first_at, locked_until) VALUES (?, ?, ?, ?)
		ON CONFLICT(email) DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, locked_until = excluded.locked_until`,
		f.Email, f.Failures, f.FirstAt.UnixMilli(), f.LockedUntil.UnixMilli()); err != nil {
		return fmt.Errorf("store sign-in failures: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM staff_login_failures WHERE first_at < ? AND locked_until < ?`, purgeBefore.UnixMilli(), purgeBefore.UnixMilli()); err != nil {
		return fmt.Errorf("purge sign-in failures: %w", err)
	}
	return nil
}

func (s *sqliteStaff) ClearLoginFailures(ctx context.Context, email string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM staff_login_failures WHERE email = ?`, email); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}

func (s *sqliteStaff) AppendSignIn(ctx context.Context, e SignIn) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO staff_signins (at, email, user_id, ip, ok, reason) VALUES (?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), e.Email, e.UserID, e.IP, e.OK, e.Reason); err != nil {
		return fmt.Errorf("audit sign-in: %w", err)
	}
	return nil
}

func (s *sqliteStaff) SignIns(ctx context.Context, failedOnly bool, limit int) ([]SignIn, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, email, user_id, ip, ok, reason FROM staff_signins WHERE ok = 0 OR NOT ? ORDER BY id DESC LIMIT ?`, failedOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("list sign-ins: %w", err)
	}
	defer rows.Close()
	out := []SignIn{}
	for rows.Next() {
		var e SignIn
		var at int64
		if err := rows.Scan(&at, &e.Email, &e.UserID, &e.IP, &e.OK, &e.Reason); err != nil {
			return nil, fmt.Errorf("list sign-ins: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
