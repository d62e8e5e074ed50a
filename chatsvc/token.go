package chatsvc

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// visitorClaims is what a visitor token carries.
type visitorClaims struct {
	Site    string `json:"s"`
	Visitor string `json:"v"`
	Expires int64  `json:"x"`
	// Verified: the site's backend vouched for the visitor (user.hash).
	Verified bool `json:"vf,omitempty"`
}

// ErrBadToken marks a missing, malformed, forged or expired visitor token.
var ErrBadToken = errors.New("invalid visitor token")

const tokenPrefix = "v1."

// signToken returns "v1.<claims>.<mac>", both parts base64url.
func signToken(secret []byte, c visitorClaims) string {
	body, _ := json.Marshal(c)
	b := base64.RawURLEncoding.EncodeToString(body)
	return tokenPrefix + b + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(secret, b))
}

func tokenMAC(secret []byte, body string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tokenPrefix))
	m.Write([]byte(body))
	return m.Sum(nil)
}

// verifyToken checks a token's signature and expiry.
func verifyToken(secret []byte, token string, now time.Time) (visitorClaims, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 512 {
		return visitorClaims{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	body, sig, ok := strings.Cut(token[len(tokenPrefix):], ".")
	if !ok {
		return visitorClaims{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, tokenMAC(secret, body)) {
		return visitorClaims{}, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return visitorClaims{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	var c visitorClaims
	if err := json.Unmarshal(raw, &c); err != nil || c.Site == "" || c.Visitor == "" {
		return visitorClaims{}, fmt.Errorf("%w: malformed claims", ErrBadToken)
	}
	if now.Unix() > c.Expires {
		return visitorClaims{}, fmt.Errorf("%w: expired", ErrBadToken)
	}
	return c, nil
}

// IdentityHash is what a site's backend computes for Parley.boot's
// user.hash: hex(HMAC-SHA256(site secret, user id)).
func IdentityHash(siteSecret, userID string) string {
	m := hmac.New(sha256.New, []byte(siteSecret))
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

func verifyIdentity(siteSecret, userID, hash string) bool {
	want := IdentityHash(siteSecret, userID)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(hash)), []byte(want)) == 1
}
