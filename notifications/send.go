package notifications

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sendLoop sends queued mail until ctx ends: woken when mail is queued,
// and every tick for retries.
func (s *Service) sendLoop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
		for ctx.Err() == nil {
			n, err := s.sendDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("mail outbox", "err", err)
			}
			if n < 20 || err != nil {
				break
			}
		}
	}
}

// sendDue sends one batch of due mail over one connection; a mail the
// server does not take stays queued and is retried with backoff.
func (s *Service) sendDue(ctx context.Context) (int, error) {
	mails, err := s.store.ClaimMail(ctx, time.Now(), 2*time.Minute, 20)
	if err != nil || len(mails) == 0 {
		return 0, err
	}
	var c *smtp.Client
	defer func() {
		if c != nil {
			c.Quit()
		}
	}()
	for _, m := range mails {
		if c == nil {
			if c, err = s.dial(ctx); err != nil {
				c = nil
				s.failed(ctx, m, err)
				continue
			}
		}
		err := c.SendMail(s.from.Address, []string{m.To}, bytes.NewReader(m.Message))
		if err != nil {
			s.failed(ctx, m, err)
			if c.Reset() != nil { // the connection is broken: the next mail dials again
				c.Close()
				c = nil
			}
			continue
		}
		if err := s.store.MailSent(ctx, m.ID, time.Now()); err != nil {
			// The lease runs out and the mail is sent again: at least once.
			s.log.Error("mail sent but not marked", "mail", m.ID, "err", err)
		}
		s.mails.WithLabelValues(m.Kind, "sent").Inc()
	}
	return len(mails), nil
}

// failed records a failed try: a permanent refusal (5xx) or an old mail
// fails for good, anything else is retried later.
func (s *Service) failed(ctx context.Context, m Mail, err error) {
	now := time.Now()
	var se *smtp.SMTPError
	permanent := errors.As(err, &se) && se.Code >= 500
	giveUp := permanent || now.Sub(m.Created) >= s.cfg.MailRetry.GiveUpAfter
	outcome := "retry"
	if giveUp {
		outcome = "failed"
		s.log.Warn("mail failed for good", "mail", m.ID, "kind", m.Kind, "err", err)
	}
	s.mails.WithLabelValues(m.Kind, outcome).Inc()
	if err := s.store.MailFailed(ctx, m.ID, now, err.Error(), now.Add(s.cfg.MailRetry.after(m.Tries+1)), giveUp); err != nil {
		s.log.Error("record mail failure", "mail", m.ID, "err", err)
	}
}

// dial connects to the SMTP server as configured and authenticates.
func (s *Service) dial(ctx context.Context) (*smtp.Client, error) {
	cfg := s.cfg.SMTP
	host, _, _ := net.SplitHostPort(cfg.Addr)
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial smtp %s: %w", cfg.Addr, err)
	}
	var c *smtp.Client
	tlsCfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	switch cfg.TLS {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tlsCfg))
	case "none":
		c = smtp.NewClient(conn)
	default:
		if c, err = smtp.NewClientStartTLS(conn, tlsCfg); err != nil {
			conn.Close()
			return nil, fmt.Errorf("smtp %s: STARTTLS: %w", cfg.Addr, err)
		}
	}
	c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, time.Minute
	if err := c.Hello(s.cfg.SMTP.ReplyDomain); err != nil {
		c.Close()
		return nil, fmt.Errorf("smtp %s: hello: %w", cfg.Addr, err)
	}
	if cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", cfg.Username, cfg.Password)); err != nil {
			c.Close()
			return nil, fmt.Errorf("smtp %s: auth as %s: %w", cfg.Addr, cfg.Username, err)
		}
	}
	return c, nil
}
