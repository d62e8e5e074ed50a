package access

import (
	"context"
	"time"
)

// TokenStore keeps API tokens (by the hash of their secret) and the audit
// of their uses. It lives beside StaffStore in the same database (access.db
// or the PostgreSQL schema "access") with a migration history of its own
// ("access.tokens"). sqliteTokens and postgresTokens implement it; the
// conformance suite in token_store_test.go runs on both.
type TokenStore interface {
	// InsertToken stores a new token with the hash of its secret.
	InsertToken(ctx context.Context, t Token, secretHash string) error
	// TokenByHash returns the token whose secret has that hash (revoked
	// ones too), or ErrTokenNotFound.
	TokenByHash(ctx context.Context, secretHash string) (Token, error)
	// TokenByID returns one token, or ErrTokenNotFound.
	TokenByID(ctx context.Context, id string) (Token, error)
	// Tokens lists every token, newest first.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks a token revoked at at (ErrTokenNotFound); a token
	// revoked before keeps its first revocation time.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// RecordTokenUse stores one audited use and sets the token's last-used
	// time to it, at once.
	RecordTokenUse(ctx context.Context, u TokenUse) error
	// TokenUses returns a token's newest uses, at most limit.
	TokenUses(ctx context.Context, id string, limit int) ([]TokenUse, error)
	// DeleteTokenUsesBefore forgets uses older than cutoff.
	DeleteTokenUsesBefore(ctx context.Context, cutoff time.Time) (int64, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}
