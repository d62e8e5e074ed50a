package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Scope is what an API token may do. Each REST operation that admits
// tokens names the one scope it needs (docs/openapi.yaml, x-parley-scopes;
// the table is cmd/parley's token policy).
type Scope string

// API token scopes.
const (
	// ScopeConversationsRead reads conversations, their messages and visitors.
	ScopeConversationsRead Scope = "conversations:read"
	// ScopeMessagesWrite sends messages into conversations as an agent or as a bot.
	ScopeMessagesWrite Scope = "messages:write"
	// ScopeAnalyticsRead reads reports, the overview and exports.
	ScopeAnalyticsRead Scope = "analytics:read"
	// ScopeSitesManage creates, changes and deletes sites.
	ScopeSitesManage Scope = "sites:manage"
)

// Scopes lists every scope, in the order the admin UI shows them.
var Scopes = []Scope{ScopeConversationsRead, ScopeMessagesWrite, ScopeAnalyticsRead, ScopeSitesManage}

// TokenPrefix starts every API token, so a leaked one is recognisable
// (secret scanners, logs) and never mistaken for a visitor token.
const TokenPrefix = "pat_"

// Token is an API token as admins see it: never its secret, which is shown
// once at creation and stored only as a hash.
type Token struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
	// Sites limits the token to these sites; empty means every site.
	Sites []string `json:"sites"`
	// Hint is the start of the secret, to tell tokens apart in lists.
	Hint       string     `json:"hint"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Has reports whether the token holds scope s.
func (t Token) Has(s Scope) bool { return slices.Contains(t.Scopes, s) }

// AllowsSite reports whether the token may act on site id.
func (t Token) AllowsSite(id string) bool { return len(t.Sites) == 0 || slices.Contains(t.Sites, id) }

// TokenUse is one audited call made with a token.
type TokenUse struct {
	TokenID string    `json:"token_id"`
	At      time.Time `json:"at"`
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Status  int       `json:"status"`
	IP      string    `json:"ip"`
}

// Token errors callers branch on.
var (
	ErrTokenNotFound = errors.New("API token not found")
	ErrBadToken      = errors.New("invalid or revoked API token")
)

// ParseScope checks a scope name.
func ParseScope(s string) (Scope, error) {
	for _, sc := range Scopes {
		if string(sc) == s {
			return sc, nil
		}
	}
	names := make([]string, len(Scopes))
	for i, sc := range Scopes {
		names[i] = string(sc)
	}
	return "", ValidationError(fmt.Sprintf("unknown scope %q (want one of %s)", s, strings.Join(names, ", ")))
}

// Tokens issues, checks and revokes API tokens, with their rules, over a
// TokenStore.
type Tokens struct {
	store TokenStore
	// keepUses is how long the audit of token uses is kept.
	keepUses time.Duration
}

// NewTokens builds the token registry over a migrated store.
func NewTokens(store TokenStore) *Tokens {
	return &Tokens{store: store, keepUses: 90 * 24 * time.Hour}
}

// NewToken is a token as created: Secret is shown once and never again.
type NewToken struct {
	Token
	Secret string `json:"secret"`
}

// Create issues a token named name with scopes, limited to sites when
// sites is not empty. by is the admin who creates it.
func (ts *Tokens) Create(ctx context.Context, name string, scopes []string, sites []string, by string) (NewToken, error) {
	name, err := cleanName("token", name)
	if err != nil {
		return NewToken{}, err
	}
	if len(scopes) == 0 {
		return NewToken{}, ValidationError("a token needs at least one scope")
	}
	var parsed []Scope
	for _, s := range scopes {
		sc, err := ParseScope(s)
		if err != nil {
			return NewToken{}, err
		}
		if !slices.Contains(parsed, sc) {
			parsed = append(parsed, sc)
		}
	}
	cleanSites := []string{}
	for _, s := range sites {
		s = strings.TrimSpace(s)
		if s == "" || len(s) > 64 {
			return NewToken{}, ValidationError(fmt.Sprintf("site id %q is not a site id", s))
		}
		if !slices.Contains(cleanSites, s) {
			cleanSites = append(cleanSites, s)
		}
	}
	secret := TokenPrefix + randomToken()
	t := Token{
		ID: uuid.NewString(), Name: name, Scopes: parsed, Sites: cleanSites,
		Hint: secret[:len(TokenPrefix)+6], CreatedBy: by, CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	if err := ts.store.InsertToken(ctx, t, hashToken(secret)); err != nil {
		return NewToken{}, fmt.Errorf("create token %q: %w", name, err)
	}
	return NewToken{Token: t, Secret: secret}, nil
}

// Authenticate resolves a token's secret; a wrong, unknown or revoked
// token gives ErrBadToken.
func (ts *Tokens) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 128 {
		return Token{}, ErrBadToken
	}
	t, err := ts.store.TokenByHash(ctx, hashToken(secret))
	if errors.Is(err, ErrTokenNotFound) || (err == nil && t.RevokedAt != nil) {
		return Token{}, ErrBadToken
	}
	if err != nil {
		return Token{}, fmt.Errorf("read API token: %w", err)
	}
	return t, nil
}

// List returns every token, newest first.
func (ts *Tokens) List(ctx context.Context) ([]Token, error) {
	list, err := ts.store.Tokens(ctx)
	if list == nil && err == nil {
		list = []Token{}
	}
	return list, err
}

// Get returns one token.
func (ts *Tokens) Get(ctx context.Context, id string) (Token, error) {
	return ts.store.TokenByID(ctx, id)
}

// Revoke ends a token at once; revoking twice is no error.
func (ts *Tokens) Revoke(ctx context.Context, id string) error {
	return ts.store.RevokeToken(ctx, id, time.Now().UTC())
}

// RecordUse audits one call and moves the token's last-used time; it also
// forgets uses older than the audit window now and then.
func (ts *Tokens) RecordUse(ctx context.Context, u TokenUse) error {
	if err := ts.store.RecordTokenUse(ctx, u); err != nil {
		return fmt.Errorf("audit use of token %s: %w", u.TokenID, err)
	}
	// A cheap probabilistic sweep keeps the audit bounded without a loop of its own.
	if u.At.UnixNano()%512 == 0 {
		if _, err := ts.store.DeleteTokenUsesBefore(ctx, u.At.Add(-ts.keepUses)); err != nil {
			return fmt.Errorf("prune token audit: %w", err)
		}
	}
	return nil
}

// Uses returns a token's most recent audited calls, newest first.
func (ts *Tokens) Uses(ctx context.Context, id string, limit int) ([]TokenUse, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	uses, err := ts.store.TokenUses(ctx, id, limit)
	if uses == nil && err == nil {
		uses = []TokenUse{}
	}
	return uses, err
}

// Ping reports whether the store answers.
func (ts *Tokens) Ping(ctx context.Context) error { return ts.store.Ping(ctx) }
