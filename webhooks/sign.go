package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Delivery headers. docs/integrations.md shows how to verify them.
const (
	HeaderSignature = "Parley-Signature" // t=<unix seconds>,v1=<hex HMAC-SHA256>
	HeaderEventID   = "Parley-Event-Id"
	HeaderEventType = "Parley-Event-Type"
	HeaderDelivery  = "Parley-Delivery-Id"
)

// DefaultTolerance is the replay window receivers should allow between
// the signature's timestamp and their clock.
const DefaultTolerance = 5 * time.Minute

// Sign returns the Parley-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex of HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors Verify returns.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp is outside the replay window")
)

// Verify checks a Parley-Signature header against the raw body: the HMAC
// must match and the timestamp must be within tolerance of now. Receivers
// written in Go can call it; docs/integrations.md shows the same in shell.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: header %q lacks t= or v1=", ErrBadSignature, header)
	}
	want := mac(secret, ts, body)
	matched := false
	for _, s := range sigs {
		matched = matched || hmac.Equal(s, want)
	}
	if !matched {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrStale, d.Round(time.Second))
	}
	return nil
}
