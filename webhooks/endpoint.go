package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley/ingest"
)

// Endpoint is a URL subscribed to some event types of one site.
type Endpoint struct {
	ID     string `json:"id"`
	SiteID string `json:"site_id"`
	URL    string `json:"url"`
	// Events are the subscribed event types; "*" subscribes to all.
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Secret signs deliveries; API answers show it only when created or rotated.
	Secret string `json:"secret,omitempty"`
	// SecretHint is the start of the secret, to tell secrets apart.
	SecretHint string `json:"secret_hint"`
}

// wants reports whether the endpoint takes an event of type typ from site.
// Events of every site (agent.presence, site "*") go to each endpoint
// subscribed to their type.
func (e Endpoint) wants(site string, typ ingest.Type) bool {
	if !e.Enabled || (site != e.SiteID && site != "*") {
		return false
	}
	return slices.Contains(e.Events, "*") || slices.Contains(e.Events, string(typ))
}

// TestEventType is the type of the envelope "send test event" delivers; it
// is not an event of the pipeline.
const TestEventType = "webhook.test"

// EndpointInput is what an admin sets on an endpoint.
type EndpointInput struct {
	SiteID      string   `json:"site_id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Enabled     *bool    `json:"enabled"`
}

// validationError marks input an admin must fix (400).
type validationError struct{ msg string }

func (e validationError) Error() string { return e.msg }

func invalid(format string, args ...any) error { return validationError{fmt.Sprintf(format, args...)} }

func isValidation(err error) bool { return errors.As(err, new(validationError)) }

// clean checks the input's form (the URL's reachability is the egress
// policy's to judge).
func (in *EndpointInput) clean() error {
	in.SiteID, in.URL, in.Description = strings.TrimSpace(in.SiteID), strings.TrimSpace(in.URL), strings.TrimSpace(in.Description)
	if in.SiteID == "" {
		return invalid("site_id is required")
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(in.URL) > 2048 {
		return invalid("url %q is not an http(s) URL of at most 2048 bytes", in.URL)
	}
	if u.User != nil {
		return invalid("url must not carry credentials; receivers authenticate deliveries by their signature")
	}
	if utf8.RuneCountInString(in.Description) > 200 {
		return invalid("description is longer than 200 characters")
	}
	if len(in.Events) == 0 {
		return invalid("events is empty; name event types or \"*\" for all")
	}
	var events []string
	for _, ev := range in.Events {
		ev = strings.TrimSpace(ev)
		if ev != "*" && !slices.Contains(ingest.Types, ingest.Type(ev)) {
			return invalid("event type %q is unknown (see docs/events.md)", ev)
		}
		if !slices.Contains(events, ev) {
			events = append(events, ev)
		}
	}
	slices.Sort(events)
	in.Events = events
	return nil
}

// newSecret returns a fresh signing secret.
func newSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}

func secretHint(secret string) string {
	if len(secret) < 12 {
		return secret
	}
	return secret[:12]
}
