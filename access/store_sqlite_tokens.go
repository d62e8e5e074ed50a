package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parleychat/parley/sqlstore"
)

// sqliteTokenMigrations is the history of the token tables in access.db,
// recorded as "access.tokens"; append steps, never edit applied ones.
var sqliteTokenMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE api_tokens (
	id TEXT PRIMARY KEY,
	secret_hash TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	scopes TEXT NOT NULL,
	sites TEXT NOT NULL,
	hint TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE api_token_uses (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	token_id TEXT NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
	at INTEGER NOT NULL,
	method TEXT NOT NULL,
	path TEXT NOT NULL,
	status INTEGER NOT NULL,
	ip TEXT NOT NULL
);
CREATE INDEX api_token_uses_token ON api_token_uses(token_id, at);
CREATE INDEX api_token_uses_at ON api_token_uses(at);`},
}

// sqliteTokens keeps API tokens in access.db.
type sqliteTokens struct{ db *sql.DB }

// OpenTokensSQLite migrates the token tables on db (access.db) and returns the store.
func OpenTokensSQLite(ctx context.Context, db *sql.DB) (TokenStore, error) {
	if err := sqlstore.Migrate(ctx, db, "access.tokens", sqliteTokenMigrations); err != nil {
		return nil, err
	}
	return &sqliteTokens{db: db}, nil
}

func (s *sqliteTokens) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *sqliteTokens) InsertToken(ctx context.Context, t Token, hash string) error {
	scopes, _ := json.Marshal(t.Scopes)
	sites, _ := json.Marshal(t.Sites)
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens (id, secret_hash, name, scopes, sites, hint, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, hash, t.Name, string(scopes), string(sites), t.Hint, t.CreatedBy, t.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

const sqliteTokenColumns = `id, name, scopes, sites, hint, created_by, created_at, last_used_at, revoked_at`

func scanSQLiteToken(row interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var scopes, sites string
	var created, used, revoked int64
	if err := row.Scan(&t.ID, &t.Name, &scopes, &sites, &t.Hint, &t.CreatedBy, &created, &used, &revoked); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Token{}, ErrTokenNotFound
		}
		return Token{}, fmt.Errorf("read token: %w", err)
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return Token{}, fmt.Errorf("read scopes of token %s: %w", t.ID, err)
	}
	if err := json.Unmarshal([]byte(sites), &t.Sites); err != nil {
		return Token{}, fmt.Errorf("read sites of token %s: %w", t.ID, err)
	}
	t.CreatedAt = time.UnixMilli(created).UTC()
	t.LastUsedAt, t.RevokedAt = optionalMillis(used), optionalMillis(revoked)
	return t, nil
}

func optionalMillis(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

func (s *sqliteTokens) TokenByHash(ctx context.Context, hash string) (Token, error) {
	return scanSQLiteToken(s.db.QueryRowContext(ctx, `SELECT `+sqliteTokenColumns+` FROM api_tokens WHERE secret_hash = ?`, hash))
}

func (s *sqliteTokens) TokenByID(ctx context.Context, id string) (Token, error) {
	return scanSQLiteToken(s.db.QueryRowContext(ctx, `SELECT `+sqliteTokenColumns+` FROM api_tokens WHERE id = ?`, id))
}

func (s *sqliteTokens) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteTokenColumns+` FROM api_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanSQLiteToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *sqliteTokens) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`, at.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTokenNotFound
	}
	return nil
}

func (s *sqliteTokens) RecordTokenUse(ctx context.Context, u TokenUse) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record token use: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_token_uses (token_id, at, method, path, status, ip) VALUES (?, ?, ?, ?, ?, ?)`,
		u.TokenID, u.At.UnixMilli(), u.Method, u.Path, u.Status, u.IP); err != nil {
		return fmt.Errorf("record token use: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = max(last_used_at, ?) WHERE id = ?`, u.At.UnixMilli(), u.TokenID); err != nil {
		return fmt.Errorf("record token use: %w", err)
	}
	return tx.Commit()
}

func (s *sqliteTokens) TokenUses(ctx context.Context, id string, limit int) ([]TokenUse, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT token_id, at, method, path, status, ip FROM api_token_uses WHERE token_id = ? ORDER BY at DESC, id DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list uses of token %s: %w", id, err)
	}
	defer rows.Close()
	var out []TokenUse
	for rows.Next() {
		var u TokenUse
		var at int64
		if err := rows.Scan(&u.TokenID, &at, &u.Method, &u.Path, &u.Status, &u.IP); err != nil {
			return nil, fmt.Errorf("read use of token %s: %w", id, err)
		}
		u.At = time.UnixMilli(at).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *sqliteTokens) DeleteTokenUsesBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_token_uses WHERE at < ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune token uses: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
