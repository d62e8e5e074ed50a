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

// postgresTokenMigrations is the history of the token tables in the access
// schema, recorded as "access.tokens"; append steps, never edit applied ones.
var postgresTokenMigrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE api_tokens (
	id TEXT PRIMARY KEY,
	secret_hash TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	scopes TEXT[] NOT NULL,
	sites TEXT[] NOT NULL,
	hint TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	last_used_at TIMESTAMPTZ,
	revoked_at TIMESTAMPTZ
);
CREATE TABLE api_token_uses (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	token_id TEXT NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
	at TIMESTAMPTZ NOT NULL,
	method TEXT NOT NULL,
	path TEXT NOT NULL,
	status INTEGER NOT NULL,
	ip TEXT NOT NULL
);
CREATE INDEX api_token_uses_token ON api_token_uses(token_id, at);
CREATE INDEX api_token_uses_at ON api_token_uses(at);`},
}

// postgresTokens keeps API tokens in PostgreSQL, schema "access".
type postgresTokens struct{ db *pgxpool.Pool }

// OpenTokensPostgres migrates the token tables in the access schema on pool
// (opened with search_path "access") and returns the store.
func OpenTokensPostgres(ctx context.Context, pool *pgxpool.Pool) (TokenStore, error) {
	if err := sqlstore.MigratePostgresTrack(ctx, pool, PostgresSchema, "access.tokens", postgresTokenMigrations); err != nil {
		return nil, err
	}
	return &postgresTokens{db: pool}, nil
}

func (s *postgresTokens) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

func scopesText(scopes []Scope) []string {
	out := make([]string, len(scopes))
	for i, sc := range scopes {
		out[i] = string(sc)
	}
	return out
}

func (s *postgresTokens) InsertToken(ctx context.Context, t Token, hash string) error {
	sites := t.Sites
	if sites == nil {
		sites = []string{}
	}
	_, err := s.db.Exec(ctx, `INSERT INTO api_tokens (id, secret_hash, name, scopes, sites, hint, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, hash, t.Name, scopesText(t.Scopes), sites, t.Hint, t.CreatedBy, t.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

const pgTokenColumns = `id, name, scopes, sites, hint, created_by, created_at, last_used_at, revoked_at`

func scanPgToken(row pgx.Row) (Token, error) {
	var t Token
	var scopes []string
	if err := row.Scan(&t.ID, &t.Name, &scopes, &t.Sites, &t.Hint, &t.CreatedBy, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Token{}, ErrTokenNotFound
		}
		return Token{}, fmt.Errorf("read token: %w", err)
	}
	for _, sc := range scopes {
		t.Scopes = append(t.Scopes, Scope(sc))
	}
	if t.Sites == nil {
		t.Sites = []string{}
	}
	t.CreatedAt = t.CreatedAt.UTC()
	for _, p := range []**time.Time{&t.LastUsedAt, &t.RevokedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return t, nil
}

func (s *postgresTokens) TokenByHash(ctx context.Context, hash string) (Token, error) {
	return scanPgToken(s.db.QueryRow(ctx, `SELECT `+pgTokenColumns+` FROM api_tokens WHERE secret_hash = $1`, hash))
}

func (s *postgresTokens) TokenByID(ctx context.Context, id string) (Token, error) {
	return scanPgToken(s.db.QueryRow(ctx, `SELECT `+pgTokenColumns+` FROM api_tokens WHERE id = $1`, id))
}

func (s *postgresTokens) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.Query(ctx, `SELECT `+pgTokenColumns+` FROM api_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanPgToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *postgresTokens) RevokeToken(ctx context.Context, id string, at time.Time) error {
	tag, err := s.db.Exec(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, at, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrTokenNotFound
	}
	return nil
}

func (s *postgresTokens) RecordTokenUse(ctx context.Context, u TokenUse) error {
	// One statement: the use and the last-used time commit together.
	_, err := s.db.Exec(ctx, `WITH used AS (
		INSERT INTO api_token_uses (token_id, at, method, path, status, ip) VALUES ($1, $2, $3, $4, $5, $6) RETURNING token_id, at)
		UPDATE api_tokens t SET last_used_at = GREATEST(COALESCE(t.last_used_at, used.at), used.at) FROM used WHERE t.id = used.token_id`,
		u.TokenID, u.At, u.Method, u.Path, u.Status, u.IP)
	if err != nil {
		return fmt.Errorf("record token use: %w", err)
	}
	return nil
}

func (s *postgresTokens) TokenUses(ctx context.Context, id string, limit int) ([]TokenUse, error) {
	rows, err := s.db.Query(ctx, `SELECT token_id, at, method, path, status, ip FROM api_token_uses WHERE token_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list uses of token %s: %w", id, err)
	}
	defer rows.Close()
	var out []TokenUse
	for rows.Next() {
		var u TokenUse
		if err := rows.Scan(&u.TokenID, &u.At, &u.Method, &u.Path, &u.Status, &u.IP); err != nil {
			return nil, fmt.Errorf("read use of token %s: %w", id, err)
		}
		u.At = u.At.UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *postgresTokens) DeleteTokenUsesBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM api_token_uses WHERE at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune token uses: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CopyTokensFromSQLite lists how `parley migrate` moves access.db's token
// tables into this schema (run after OpenTokensPostgres migrated it).
func CopyTokensFromSQLite() []sqlstore.TableCopy {
	return []sqlstore.TableCopy{
		{Table: "api_tokens", Columns: []string{"id", "secret_hash", "name", "scopes", "sites", "hint", "created_by", "created_at", "last_used_at", "revoked_at"}, Key: []string{"id"},
			Convert: func(r []any) ([]any, error) {
				for _, i := range []int{3, 4} {
					var list []string
					if err := jsonList(r[i], &list); err != nil {
						return nil, fmt.Errorf("token %v: %w", r[0], err)
					}
					r[i] = list
				}
				r[7] = sqlstore.MillisTime(r[7], false)
				r[8], r[9] = sqlstore.MillisTime(r[8], true), sqlstore.MillisTime(r[9], true)
				return r, nil
			}},
		{Table: "api_token_uses", Columns: []string{"id", "token_id", "at", "method", "path", "status", "ip"}, Key: []string{"id"},
			Serial: "id", Identity: true,
			Convert: func(r []any) ([]any, error) {
				r[2] = sqlstore.MillisTime(r[2], false)
				return r, nil
			}},
	}
}

// jsonList decodes a JSON array of strings stored as SQLite text.
func jsonList(v any, into *[]string) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%v is not JSON text", v)
	}
	if err := json.Unmarshal([]byte(s), into); err != nil {
		return err
	}
	if *into == nil {
		*into = []string{}
	}
	return nil
}
