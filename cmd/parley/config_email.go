package main

import (
	"fmt"
	"time"

	"github.com/parleychat/parley/notifications"
)

// emailSettings configure mail (chat role: notifications ride with chat).
type emailSettings struct {
	SMTP       notifications.SMTP
	ReplyDelay time.Duration
}

func (e *emailSettings) flags(fs *flagSet) {
	fs.str(&e.SMTP.Addr, "smtp-addr", "PARLEY_SMTP_ADDR", "", "outgoing mail server host:port (empty: no email is sent)")
	fs.str(&e.SMTP.Username, "smtp-user", "PARLEY_SMTP_USER", "", "user to authenticate to the mail server as (empty: no authentication)")
	fs.str(&e.SMTP.Password, "smtp-password", "PARLEY_SMTP_PASSWORD", "", "password of --smtp-user (never logged)")
	fs.str(&e.SMTP.From, "smtp-from", "PARLEY_SMTP_FROM", "", `sender of every mail, "Support <help@example.com>"; a site's email.from_name replaces the name`)
	fs.str(&e.SMTP.TLS, "smtp-tls", "PARLEY_SMTP_TLS", "starttls", "starttls, tls (implicit, port 465) or none (a relay on a trusted network only)")
	fs.str(&e.SMTP.Listen, "smtp-listen", "PARLEY_SMTP_LISTEN", "", "host:port of the inbound SMTP listener that takes visitors' answers by email (empty: answering by email is off)")
	fs.str(&e.SMTP.ReplyDomain, "smtp-reply-domain", "PARLEY_SMTP_REPLY_DOMAIN", "", "domain of the reply+TOKEN@ addresses routed to --smtp-listen (default: the domain of --smtp-from)")
	fs.duration(&e.ReplyDelay, "email-reply-delay", "PARLEY_EMAIL_REPLY_DELAY", 2*time.Minute, "how long an agent's reply may stay unread before it is mailed to the visitor")
}

// validate checks the mail settings; every error names its flag and variable.
func (e *emailSettings) validate() []error {
	var errs []error
	if err := e.SMTP.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--smtp-* / PARLEY_SMTP_*: %w", err))
	}
	if e.ReplyDelay != 0 && (e.ReplyDelay < time.Second || e.ReplyDelay > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("--email-reply-delay / PARLEY_EMAIL_REPLY_DELAY %s is not between 1s and 24h", e.ReplyDelay))
	}
	return errs
}
