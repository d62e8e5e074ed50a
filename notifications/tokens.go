package notifications

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// Reply addresses are reply+<conversation uuid, 32 hex><mac, 10 base32>@domain:
// 48 characters of lower-case letters and digits, safe in any mail system's
// local part. The MAC makes them unguessable, so only someone who got a
// mail can answer into its conversation.
const replyPrefix = "reply+"

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// tokens signs and checks reply addresses and unsubscribe links.
type tokens struct{ key []byte }

func (t tokens) mac(kind string, parts ...string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(kind))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// replyLocal returns the local part of a conversation's reply address.
func (t tokens) replyLocal(convID string) (string, bool) {
	u, err := uuid.Parse(convID)
	if err != nil {
		return "", false
	}
	hexID := strings.ReplaceAll(u.String(), "-", "")
	return replyPrefix + hexID + lowerBase32.EncodeToString(t.mac("reply", u.String())[:6]), true
}

// replyConversation checks a reply address's local part and returns its conversation.
func (t tokens) replyConversation(local string) (string, bool) {
	local = strings.ToLower(local)
	rest, ok := strings.CutPrefix(local, replyPrefix)
	if !ok || len(rest) != 42 {
		return "", false
	}
	u, err := uuid.Parse(rest[:32])
	if err != nil {
		return "", false
	}
	want, ok := t.replyLocal(u.String())
	if !ok || !hmac.Equal([]byte(want), []byte(local)) {
		return "", false
	}
	return u.String(), true
}

// unsubscribe is what an unsubscribe link stands for: a visitor's address
// on a site (Kind "v"), or an agent's digest (Kind "a").
type unsubscribe struct {
	Kind  string `json:"k"`
	Site  string `json:"s,omitempty"`
	Email string `json:"e,omitempty"`
	Lang  string `json:"l,omitempty"`
	User  string `json:"u,omitempty"`
}

func (t tokens) unsubscribeToken(u unsubscribe) string {
	body, _ := json.Marshal(u)
	b := base64.RawURLEncoding.EncodeToString(body)
	return b + "." + base64.RawURLEncoding.EncodeToString(t.mac("unsubscribe", b)[:16])
}

var errBadLink = errors.New("this link is not valid; it may have been cut when copied")

func (t tokens) parseUnsubscribe(token string) (unsubscribe, error) {
	b, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return unsubscribe{}, errBadLink
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, t.mac("unsubscribe", b)[:16]) {
		return unsubscribe{}, errBadLink
	}
	raw, err := base64.RawURLEncoding.DecodeString(b)
	var u unsubscribe
	if err != nil || json.Unmarshal(raw, &u) != nil || (u.Kind != "v" && u.Kind != "a") {
		return unsubscribe{}, errBadLink
	}
	return u, nil
}
