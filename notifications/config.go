package notifications

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// SMTP is the deployment's mail settings (cmd/parley's --smtp-* flags).
type SMTP struct {
	// Addr is the outgoing server, host:port; empty turns email off.
	Addr               string
	Username, Password string
	// From is the sender, "Name <address>" or an address; a site's
	// from_name replaces the name.
	From string
	// TLS is how to talk to Addr: "starttls" (default), "tls" (implicit,
	// port 465) or "none" (a relay on the same host or network only).
	TLS string
	// Listen is where the inbound listener receives visitors' answers
	// (host:port); empty turns answering by email off.
	Listen string
	// ReplyDomain is the domain of the reply+TOKEN@ addresses mail is
	// routed to the listener by; default: From's domain.
	ReplyDomain string
}

// Enabled reports whether mail can be sent.
func (s SMTP) Enabled() bool { return s.Addr != "" }

// Validate checks the settings; errors name the setting.
func (s *SMTP) Validate() error {
	if s.Addr == "" {
		if s.Listen != "" {
			return errors.New("smtp-listen needs smtp-addr: answers by email need outgoing mail to start from")
		}
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		errs = append(errs, fmt.Errorf("smtp-addr %q is not host:port", s.Addr))
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("smtp-from %q is not an address (\"Support <help@example.com>\"): %v", s.From, err))
	}
	switch s.TLS {
	case "":
		s.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		errs = append(errs, fmt.Errorf("smtp-tls %q is not starttls, tls or none", s.TLS))
	}
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			errs = append(errs, fmt.Errorf("smtp-listen %q is not host:port", s.Listen))
		}
	}
	if s.ReplyDomain == "" && from != nil {
		if _, domain, ok := strings.Cut(from.Address, "@"); ok {
			s.ReplyDomain = strings.ToLower(domain)
		}
	}
	return errors.Join(errs...)
}

// Config holds what notifications needs; zero values take the defaults.
type Config struct {
	Store Store
	Chat  Chat
	Guard *access.Guard
	// Brokers is where the consumer reads; empty disables consuming.
	Brokers    []string
	DeadLetter *ingest.Producer
	SMTP       SMTP
	// PublicURL is where people reach Parley (unsubscribe links, the
	// console in digests).
	PublicURL string
	// Secret is this node's candidate key for reply and unsubscribe
	// tokens; the store keeps the first one offered.
	Secret []byte
	// ReplyDelay is how long an agent's reply may stay unread before it is
	// mailed (default 2 min).
	ReplyDelay time.Duration
	// Tick is how often due replies, jobs, digests and mail are looked
	// for (default 1 s).
	Tick time.Duration
	// MailRetry spaces retries of mail an SMTP server did not take.
	MailRetry Backoff
	// DigestEvery is the least time between two digests (default 1 h).
	DigestEvery time.Duration
	// GroupID is the consumer group (default parley-notifications).
	GroupID    string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Backoff is exponential: Initial, doubling up to Max, for GiveUpAfter.
type Backoff struct {
	Initial, Max, GiveUpAfter time.Duration
}

func (b Backoff) after(tries int) time.Duration {
	d := b.Initial
	for i := 1; i < tries && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

func (c *Config) defaults() error {
	if c.Store == nil || c.Chat == nil || c.Guard == nil {
		return errors.New("notifications: Store, Chat and Guard are required")
	}
	if len(c.Brokers) > 0 && c.DeadLetter == nil {
		return errors.New("notifications: a DeadLetter producer is required to consume")
	}
	if len(c.Secret) < 32 {
		return errors.New("notifications: Secret must be at least 32 bytes")
	}
	if err := c.SMTP.Validate(); err != nil {
		return err
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.ReplyDelay <= 0 {
		c.ReplyDelay = 2 * time.Minute
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.MailRetry == (Backoff{}) {
		c.MailRetry = Backoff{Initial: 30 * time.Second, Max: 30 * time.Minute, GiveUpAfter: 48 * time.Hour}
	}
	if c.DigestEvery <= 0 {
		c.DigestEvery = time.Hour
	}
	if c.GroupID == "" {
		c.GroupID = "parley-notifications"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
