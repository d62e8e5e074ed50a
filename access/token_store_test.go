package access

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// openTokenStore opens a fresh token store of the given backend for t.
func openTokenStore(t testing.TB, backend string) TokenStore {
	t.Helper()
	ctx := context.Background()
	switch backend {
	case "sqlite":
		db := sqltest.SQLite(t, "access")
		// The token tables live beside the staff tables in access.db.
		if _, err := OpenSQLite(ctx, db); err != nil {
			t.Fatal(err)
		}
		s, err := OpenTokensSQLite(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		return s
	case "postgres":
		pool := sqltest.Postgres(t, PostgresSchema, 4)
		if _, err := OpenPostgres(ctx, pool); err != nil {
			t.Fatal(err)
		}
		s, err := OpenTokensPostgres(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		// Opening again finds the token track applied.
		if _, err := OpenTokensPostgres(ctx, pool); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}

// TestTokenStoreConformance runs every TokenStore method on each backend.
func TestTokenStoreConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openTokenStore(t, backend)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		created := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
		crm := Token{ID: "t1", Name: "CRM", Scopes: []Scope{ScopeConversationsRead, ScopeMessagesWrite}, Sites: []string{"s1", "s2"}, Hint: "pat_abcdef", CreatedBy: "u1", CreatedAt: created}
		bi := Token{ID: "t2", Name: "BI", Scopes: []Scope{ScopeAnalyticsRead}, Sites: []string{}, Hint: "pat_zzzzzz", CreatedBy: "u1", CreatedAt: created.Add(time.Hour)}
		for _, tk := range []Token{crm, bi} {
			if err := s.InsertToken(ctx, tk, "hash-"+tk.ID); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.TokenByHash(ctx, "hash-t1")
		if err != nil || got.ID != "t1" || got.Name != "CRM" || !slices.Equal(got.Scopes, crm.Scopes) || !slices.Equal(got.Sites, crm.Sites) ||
			!got.CreatedAt.Equal(created) || got.LastUsedAt != nil || got.RevokedAt != nil || got.Hint != "pat_abcdef" {
			t.Fatalf("TokenByHash = %+v %v", got, err)
		}
		if _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, ErrTokenNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}
		if _, err := s.TokenByID(ctx, "nope"); !errors.Is(err, ErrTokenNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		list, err := s.Tokens(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "t2" || len(list[0].Sites) != 0 {
			t.Fatalf("Tokens not newest first: %+v %v", list, err)
		}

		// Uses are audited, newest first, and move last_used_at forward only.
		at := created.Add(2 * time.Hour)
		for i, status := range []int{200, 403, 201} {
			u := TokenUse{TokenID: "t1", At: at.Add(time.Duration(i) * time.Minute), Method: "GET", Path: "/api/chat/conversations", Status: status, IP: "192.0.2.1"}
			if err := s.RecordTokenUse(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordTokenUse(ctx, TokenUse{TokenID: "t1", At: at.Add(-time.Hour), Method: "GET", Path: "/late", Status: 200, IP: "x"}); err != nil {
			t.Fatal(err)
		}
		uses, err := s.TokenUses(ctx, "t1", 2)
		if err != nil || len(uses) != 2 || uses[0].Status != 201 || !uses[0].At.Equal(at.Add(2*time.Minute)) || uses[1].Status != 403 || uses[0].IP != "192.0.2.1" {
			t.Fatalf("TokenUses = %+v %v", uses, err)
		}
		got, _ = s.TokenByID(ctx, "t1")
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(at.Add(2*time.Minute)) {
			t.Fatalf("last used = %v, want %v", got.LastUsedAt, at.Add(2*time.Minute))
		}
		if n, err := s.DeleteTokenUsesBefore(ctx, at); err != nil || n != 1 {
			t.Fatalf("DeleteTokenUsesBefore = %d, %v", n, err)
		}

		// Revocation keeps its first time.
		if err := s.RevokeToken(ctx, "t1", at); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "t1", at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "nope", at); !errors.Is(err, ErrTokenNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		got, _ = s.TokenByHash(ctx, "hash-t1")
		if got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
			t.Fatalf("revoked at %v, want %v", got.RevokedAt, at)
		}
	})
}

// TestTokensRules: secrets are shown once and stored hashed, bad input is
// refused with a precise error, and revoked tokens stop authenticating.
func TestTokensRules(t *testing.T) {
	ctx := context.Background()
	store := openTokenStore(t, "sqlite")
	ts := NewTokens(store)
	nt, err := ts.Create(ctx, " Zapier ", []string{"conversations:read", "conversations:read"}, []string{"s1"}, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if nt.Name != "Zapier" || len(nt.Scopes) != 1 || len(nt.Secret) < 40 || nt.Secret[:4] != TokenPrefix || nt.Hint != nt.Secret[:10] {
		t.Fatalf("created %+v", nt)
	}
	if _, err := store.TokenByHash(ctx, nt.Secret); !errors.Is(err, ErrTokenNotFound) {
		t.Fatal("the secret is stored in clear")
	}
	got, err := ts.Authenticate(ctx, nt.Secret)
	if err != nil || got.ID != nt.ID {
		t.Fatalf("Authenticate = %+v %v", got, err)
	}
	for _, bad := range []string{"", "pat_wrong", nt.Secret + "x", "v1.visitor"} {
		if _, err := ts.Authenticate(ctx, bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Authenticate(%q) = %v, want ErrBadToken", bad, err)
		}
	}
	for _, c := range []struct {
		name   string
		scopes []string
		want   string
	}{
		{"", []string{"conversations:read"}, "token name is empty"},
		{"X", nil, "at least one scope"},
		{"X", []string{"admin"}, `unknown scope "admin"`},
	} {
		_, err := ts.Create(ctx, c.name, c.scopes, nil, "u1")
		if !errors.As(err, new(ValidationError)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Create(%q, %v) = %v, want a validation error naming %q", c.name, c.scopes, err, c.want)
		}
	}
	if err := ts.Revoke(ctx, nt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Authenticate(ctx, nt.Secret); !errors.Is(err, ErrBadToken) {
		t.Fatalf("a revoked token authenticates: %v", err)
	}
}
