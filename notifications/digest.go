package notifications

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// recheckDigest is how soon an away agent with nothing new is looked at again.
const recheckDigest = time.Minute

// dueDigests mails away agents who asked for it a digest of the
// conversations waiting meanwhile, at most every DigestEvery, and only
// when something new waits since the last one.
func (s *Service) dueDigests(ctx context.Context) (int, error) {
	due, err := s.store.ClaimDigests(ctx, time.Now(), lease, 20)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, d := range due {
		m, err := s.digestMail(ctx, d)
		if err != nil {
			s.log.Warn("digest not made; retried when the lease ends", "agent", d.AgentID, "err", err)
			continue
		}
		now := time.Now()
		next := now.Add(recheckDigest)
		if m != nil {
			next = now.Add(s.cfg.DigestEvery)
			queued++
		}
		if err := s.store.FinishDigest(ctx, d.AgentID, now, next, m); err != nil {
			return queued, err
		}
	}
	return queued, nil
}

func (s *Service) digestMail(ctx context.Context, d DigestDue) (*Mail, error) {
	if !s.cfg.SMTP.Enabled() {
		return nil, nil
	}
	u, err := s.cfg.Guard.Directory().User(ctx, d.AgentID)
	if errors.Is(err, access.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	waiting, err := s.store.Waiting(ctx, d.AgentID, 50)
	if err != nil {
		return nil, err
	}
	seen := d.AwaySince
	if d.LastDigestAt.After(seen) {
		seen = d.LastDigestAt
	}
	fresh := false
	for _, w := range waiting {
		fresh = fresh || w.Since.After(seen)
	}
	if !fresh {
		return nil, nil
	}
	v := mailView{
		Lang: "en", SiteName: "Parley", Color: "#4f46e5",
		Intro:  fmt.Sprintf("Hi %s, %d conversation(s) are waiting for an answer while you are away:", u.Name, len(waiting)),
		Button: "Open the inbox", Link: s.cfg.PublicURL + "/app/console",
		Unsubscribe: "Stop these digests", UnsubLink: s.unsubscribeURL(unsubscribe{Kind: "a", User: u.ID}),
	}
	for _, w := range waiting {
		who := "Queue"
		if w.Mine {
			who = "Yours"
		}
		siteName := w.SiteID
		if site, ok := s.chat.Site(w.SiteID); ok {
			siteName = site.Name
		}
		v.Lines = append(v.Lines, lineView{Who: who + " · " + siteName, Text: s.cfg.PublicURL + "/app/conversations/" + w.ConversationID,
			When: "waiting since " + w.Since.UTC().Format("15:04 UTC")})
	}
	text, html, err := v.render()
	if err != nil {
		return nil, fmt.Errorf("render digest: %w", err)
	}
	domain := s.cfg.SMTP.ReplyDomain
	now := time.Now()
	m := outgoing{
		From: s.from, To: mail.Address{Name: u.Name, Address: u.Email},
		Subject:   fmt.Sprintf("%d conversation(s) waiting in Parley", len(waiting)),
		MessageID: messageID("digest", domain), Unsubscribe: v.UnsubLink, Text: text, HTML: html, Date: now,
	}
	return &Mail{ID: ingest.NewID(), Key: fmt.Sprintf("digest:%s:%d", u.ID, now.UnixMilli()), Kind: "digest", To: u.Email, Message: m.encode(), NextAt: now, Created: now}, nil
}
