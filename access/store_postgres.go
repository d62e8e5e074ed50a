package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley/sqlstore"
)

// postgresMigrations is the access schema's history on PostgreSQL; append
// steps, never edit applied ones.
var postgresMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE staff_users (
	id TEXT PRIMARY KEY,
	email TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	roles TEXT[] NOT NULL,
	team_id TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE staff_sessions (
	token_hash TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
	csrf TEXT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX staff_sessions_user ON staff_sessions(user_id);
CREATE INDEX staff_sessions_expiry ON staff_sessions(expires_at);
CREATE TABLE staff_teams (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL
);`},
	// As SQLite's step 3: staff sites, sign-in lockout, sign-in audit.
	{Version: 2, SQL: `
CREATE TABLE staff_sites (
	user_id TEXT NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
	site_id TEXT NOT NULL,
	PRIMARY KEY (user_id, site_id)
);
CREATE TABLE staff_login_failures (
	email TEXT PRIMARY KEY,
	failures INTEGER NOT NULL,
	first_at BIGINT NOT NULL,
	locked_until BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE staff_signins (
	id BIGSERIAL PRIMARY KEY,
	at BIGINT NOT NULL,
	email TEXT NOT NULL,
	user_id TEXT NOT NULL DEFAULT '',
	ip TEXT NOT NULL DEFAULT '',
	ok BOOLEAN NOT NULL,
	reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX staff_signins_at ON staff_signins(at);`},
}

// PostgresSchema is the PostgreSQL schema access keeps its tables in.
const PostgresSchema = "access"

// postgresStaff keeps staff rows in PostgreSQL, schema "access".
type postgresStaff struct{ db *pgxpool.Pool }

// OpenPostgres migrates access's schema on pool (opened with search_path
// "access", see sqlstore.OpenPostgres) and returns the store.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool) (StaffStore, error) {
	if err := sqlstore.MigratePostgres(ctx, pool, PostgresSchema, postgresMigrations); err != nil {
		return nil, err
	}
	return &postgresStaff{db: pool}, nil
}

func (s *postgresStaff) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

func (s *postgresStaff) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM staff_users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

func rolesText(roles []Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}

func (s *postgresStaff) InsertUser(ctx context.Context, u User, hash string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO staff_users (id, email, name, password_hash, roles, team_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Email, u.Name, hash, rolesText(u.Roles), u.TeamID, u.CreatedAt)
	if sqlstore.IsUniqueViolation(err, "") {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

const pgUserColumns = `id, email, name, roles, team_id, created_at, password_hash`

func scanPgUser(row pgx.Row) (User, string, error) {
	var u User
	var roles []string
	var hash string
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &roles, &u.TeamID, &u.CreatedAt, &hash); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return User{}, "", ErrNotFound
		}
		return User{}, "", fmt.Errorf("read user: %w", err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	for _, r := range roles {
		u.Roles = append(u.Roles, Role(r))
	}
	return u, hash, nil
}

func (s *postgresStaff) UserByID(ctx context.Context, id string) (User, string, error) {
	return s.withSites(ctx)(scanPgUser(s.db.QueryRow(ctx, `SELECT `+pgUserColumns+` FROM staff_users WHERE id = $1`, id)))
}

func (s *postgresStaff) UserByEmail(ctx context.Context, email string) (User, string, error) {
	return s.withSites(ctx)(scanPgUser(s.db.QueryRow(ctx, `SELECT `+pgUserColumns+` FROM staff_users WHERE email = $1`, email)))
}

// withSites fills a scanned user's sites.
func (s *postgresStaff) withSites(ctx context.Context) func(User, string, error) (User, string, error) {
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
func (s *postgresStaff) sitesOf(ctx context.Context, userID string) (map[string][]string, error) {
	rows, err := s.db.Query(ctx, `SELECT user_id, site_id FROM staff_sites WHERE $1 = '' OR user_id = $1 ORDER BY user_id, site_id`, userID)
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

func (s *postgresStaff) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.Query(ctx, `SELECT `+pgUserColumns+` FROM staff_users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, _, err := scanPgUser(rows)
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

func (s *postgresStaff) UpdateUser(ctx context.Context, id, name string, roles []Role, teamID string) error {
	tag, err := s.db.Exec(ctx, `UPDATE staff_users SET name = $1, roles = $2, team_id = $3 WHERE id = $4`, name, rolesText(roles), teamID, id)
	if err != nil {
		return fmt.Errorf("update user %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *postgresStaff) SetPassword(ctx context.Context, id, hash string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE staff_users SET password_hash = $1 WHERE id = $2`, hash, id)
		if err != nil {
			return fmt.Errorf("set password of %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("end sessions of %s: %w", id, err)
		}
		return nil
	})
}

func (s *postgresStaff) DeleteUser(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM staff_users WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

func (s *postgresStaff) InsertSession(ctx context.Context, ss Session) error {
	_, err := s.db.Exec(ctx, `INSERT INTO staff_sessions (token_hash, user_id, csrf, expires_at) VALUES ($1, $2, $3, $4)`,
		ss.TokenHash, ss.UserID, ss.CSRF, ss.ExpiresAt)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

func (s *postgresStaff) SessionByToken(ctx context.Context, tokenHash string) (Session, error) {
	ss := Session{TokenHash: tokenHash}
	err := s.db.QueryRow(ctx, `SELECT user_id, csrf, expires_at FROM staff_sessions WHERE token_hash = $1`, tokenHash).Scan(&ss.UserID, &ss.CSRF, &ss.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	return ss, nil
}

func (s *postgresStaff) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM staff_sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (s *postgresStaff) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM staff_sessions WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

const pgTeamSelect = `SELECT t.id, t.name, t.created_at, (SELECT count(*) FROM staff_users u WHERE u.team_id = t.id) FROM staff_teams t`

func scanPgTeam(row pgx.Row) (Team, error) {
	var t Team
	if err := row.Scan(&t.ID, &t.Name, &t.CreatedAt, &t.Members); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Team{}, ErrTeamNotFound
		}
		return Team{}, fmt.Errorf("read team: %w", err)
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
}

func (s *postgresStaff) Teams(ctx context.Context) ([]Team, error) {
	rows, err := s.db.Query(ctx, pgTeamSelect+` ORDER BY t.name`)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	defer rows.Close()
	var out []Team
	for rows.Next() {
		t, err := scanPgTeam(rows)
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

func (s *postgresStaff) TeamByID(ctx context.Context, id string) (Team, error) {
	return scanPgTeam(s.db.QueryRow(ctx, pgTeamSelect+` WHERE t.id = $1`, id))
}

func (s *postgresStaff) InsertTeam(ctx context.Context, t Team) error {
	_, err := s.db.Exec(ctx, `INSERT INTO staff_teams (id, name, created_at) VALUES ($1, $2, $3)`, t.ID, t.Name, t.CreatedAt)
	if sqlstore.IsUniqueViolation(err, "") {
		return ErrTeamExists
	}
	if err != nil {
		return fmt.Errorf("create team %q: %w", t.Name, err)
	}
	return nil
}

func (s *postgresStaff) RenameTeam(ctx context.Context, id, name string) error {
	tag, err := s.db.Exec(ctx, `UPDATE staff_teams SET name = $1 WHERE id = $2`, name, id)
	if sqlstore.IsUniqueViolation(err, "") {
		return ErrTeamExists
	}
	if err != nil {
		return fmt.Errorf("rename team %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrTeamNotFound
	}
	return nil
}

func (s *postgresStaff) DeleteTeam(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM staff_teams WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete team %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrTeamNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_users SET team_id = '' WHERE team_id = $1`, id); err != nil {
			return fmt.Errorf("detach members of team %s: %w", id, err)
		}
		return nil
	})
}

// CopyFromSQLite lists how `parley migrate` moves access.db's tables into
// this schema (run after OpenPostgres migrated it).
func CopyFromSQLite() []sqlstore.TableCopy {
	return []sqlstore.TableCopy{
		{Table: "staff_users", Columns: []string{"id", "email", "name", "password_hash", "roles", "team_id", "created_at"}, Key: []string{"id"},
			Convert: func(r []any) ([]any, error) {
				var roles []string
				if err := json.Unmarshal([]byte(fmt.Sprint(r[4])), &roles); err != nil {
					return nil, fmt.Errorf("roles of %v: %w", r[0], err)
				}
				created, err := time.Parse(time.RFC3339, fmt.Sprint(r[6]))
				if err != nil {
					return nil, fmt.Errorf("created_at of %v: %w", r[0], err)
				}
				r[4], r[6] = roles, created
				return r, nil
			}},
		{Table: "staff_teams", Columns: []string{"id", "name", "created_at"}, Key: []string{"id"},
			Convert: func(r []any) ([]any, error) {
				created, err := time.Parse(time.RFC3339, fmt.Sprint(r[2]))
				if err != nil {
					return nil, fmt.Errorf("created_at of team %v: %w", r[0], err)
				}
				r[2] = created
				return r, nil
			}},
		{Table: "staff_sites", Columns: []string{"user_id", "site_id"}, Key: []string{"user_id", "site_id"}},
		{Table: "staff_sessions", Columns: []string{"token_hash", "user_id", "csrf", "expires_at"}, Key: []string{"token_hash"},
			Convert: func(r []any) ([]any, error) {
				secs, ok := r[3].(int64)
				if !ok {
					return nil, fmt.Errorf("expires_at %v is not a number", r[3])
				}
				r[3] = time.Unix(secs, 0)
				return r, nil
			}},
	}
}

func (s *postgresStaff) SetUserSites(ctx context.Context, userID string, sites []string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM staff_users WHERE id = $1 FOR UPDATE`, userID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("set sites of %s: %w", userID, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sites WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("set sites of %s: %w", userID, err)
		}
		if len(sites) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO staff_sites (user_id, site_id) SELECT $1, unnest($2::TEXT[]) ON CONFLICT DO NOTHING`, userID, sites); err != nil {
				return fmt.Errorf("set sites of %s: %w", userID, err)
			}
		}
		return nil
	})
}

func (s *postgresStaff) LoginFailures(ctx context.Context, email string) (LoginFailures, error) {
	f := LoginFailures{Email: email}
	var first, locked int64
	err := s.db.QueryRow(ctx, `SELECT failures, first_at, locked_until FROM staff_login_failures WHERE email = $1`, email).Scan(&f.Failures, &first, &locked)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read sign-in failures: %w", err)
	}
	f.FirstAt, f.LockedUntil = time.UnixMilli(first), time.UnixMilli(locked)
	return f, nil
}

func (s *postgresStaff) PutLoginFailures(ctx context.Context, f LoginFailures, purgeBefore time.Time) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO staff_login_failures (email, failures, first_at, locked_until) VALUES ($1, $2, $3, $4)
		ON CONFLICT (email) DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, locked_until = excluded.locked_until`,
		f.Email, f.Failures, f.FirstAt.UnixMilli(), f.LockedUntil.UnixMilli()); err != nil {
		return fmt.Errorf("store sign-in failures: %w", err)
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM staff_login_failures WHERE first_at < $1 AND locked_until < $1`, purgeBefore.UnixMilli()); err != nil {
		return fmt.Errorf("purge sign-in failures: %w", err)
	}
	return nil
}

func (s *postgresStaff) ClearLoginFailures(ctx context.Context, email string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM staff_login_failures WHERE email = $1`, email); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}

func (s *postgresStaff) AppendSignIn(ctx context.Context, e SignIn) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO staff_signins (at, email, user_id, ip, ok, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.At.UnixMilli(), e.Email, e.UserID, e.IP, e.OK, e.Reason); err != nil {
		return fmt.Errorf("audit sign-in: %w", err)
	}
	return nil
}

func (s *postgresStaff) SignIns(ctx context.Context, failedOnly bool, limit int) ([]SignIn, error) {
	rows, err := s.db.Query(ctx, `SELECT at, email, user_id, ip, ok, reason FROM staff_signins WHERE NOT ok OR NOT $1 ORDER BY id DESC LIMIT $2`, failedOnly, limit)
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
