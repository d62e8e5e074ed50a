package notifications

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/parleychat/parley/ingest"
)

// lease is how long a claimed reply, job or digest is this node's.
const lease = time.Minute

// dueReplies mails agents' replies that their visitors did not read in time.
func (s *Service) dueReplies(ctx context.Context) (int, error) {
	due, err := s.store.ClaimDueReplies(ctx, time.Now(), lease, 50)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, r := range due {
		m, err := s.replyMail(ctx, r)
		if err != nil {
			s.log.Warn("reply mail not made; retried when the lease ends", "conversation", r.ConversationID, "err", err)
			continue
		}
		if err := s.store.FinishReply(ctx, r.ConversationID, r.LastReplySeq, time.Now().Add(s.cfg.ReplyDelay), m); err != nil {
			return queued, err
		}
		if m != nil {
			queued++
		}
	}
	return queued, nil
}

// replyMail renders the mail for a conversation's unread replies, or nil
// when none is to be sent (no address, replies off, unsubscribed, nothing
// left unread).
func (s *Service) replyMail(ctx context.Context, r ReplyDue) (*Mail, error) {
	if !s.cfg.SMTP.Enabled() {
		return nil, nil
	}
	site, ok := s.chat.Site(r.SiteID)
	if !ok || site.DisableReplies {
		return nil, nil
	}
	contact, err := s.chat.Contact(ctx, r.ConversationID)
	if s.chat.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ok, err := s.mayMail(ctx, site.ID, contact.Email); err != nil || !ok {
		return nil, err
	}
	lines, err := s.chat.Transcript(ctx, r.ConversationID)
	if err != nil {
		return nil, err
	}
	after := max(r.EmailedSeq, r.VisitorReadSeq)
	var unread []Line
	for _, l := range lines {
		if l.Seq > after && l.Seq <= r.LastReplySeq && l.Role == string(ingest.RoleAgent) {
			unread = append(unread, l)
		}
	}
	if len(unread) == 0 {
		return nil, nil
	}
	lang := contact.Lang
	who := unread[len(unread)-1].Name
	if who == "" {
		who = site.Text(lang, "message.agent")
	}
	v := mailView{
		Lang: lang, SiteName: site.Name, Color: site.Color,
		Intro:  site.Text(lang, "email.reply_intro", "name", who),
		Button: site.Text(lang, "email.open_conversation"),
	}
	for _, l := range unread {
		v.Lines = append(v.Lines, lineView{Who: l.Name, Text: l.Text})
	}
	link, ok, err := s.chat.ResumeLink(ctx, r.ConversationID)
	if err != nil {
		return nil, err
	}
	if ok {
		v.Link = link
	}
	subject := site.Text(lang, "email.reply_subject", "site", site.Name)
	return s.visitorMail(site, contact, r.ConversationID, "reply", fmt.Sprintf("reply:%s:%d", r.ConversationID, r.LastReplySeq), subject, v)
}

// mayMail reports whether a visitor's address may get mail about a site.
func (s *Service) mayMail(ctx context.Context, siteID, email string) (bool, error) {
	if _, err := mail.ParseAddress(email); email == "" || err != nil {
		return false, nil
	}
	unsub, err := s.store.Unsubscribed(ctx, siteID, strings.ToLower(email))
	return !unsub, err
}

// visitorMail finishes a mail to a conversation's visitor: sender, reply
// address, thread, unsubscribe link and the site's footer.
func (s *Service) visitorMail(site Site, contact Contact, convID, kind, key, subject string, v mailView) (*Mail, error) {
	lang := contact.Lang
	domain := s.cfg.SMTP.ReplyDomain
	if s.cfg.SMTP.Listen != "" {
		v.Hint = site.Text(lang, "email.reply_hint")
	}
	v.Footer = site.Footer
	v.Unsubscribe = site.Text(lang, "email.unsubscribe")
	v.UnsubLink = s.unsubscribeURL(unsubscribe{Kind: "v", Site: site.ID, Email: strings.ToLower(contact.Email), Lang: lang})
	text, html, err := v.render()
	if err != nil {
		return nil, fmt.Errorf("render %s mail: %w", kind, err)
	}
	from := s.from
	from.Name = site.FromName
	if from.Name == "" {
		from.Name = site.Name
	}
	m := outgoing{
		From: from, To: mail.Address{Name: contact.Name, Address: contact.Email}, Subject: subject,
		MessageID: messageID(kind, domain), References: []string{threadID(convID, domain)},
		Unsubscribe: v.UnsubLink, Text: text, HTML: html, Date: time.Now(),
		Headers: map[string]string{"X-Parley-Conversation": convID},
	}
	if s.cfg.SMTP.Listen != "" {
		if local, ok := s.tokens.replyLocal(convID); ok {
			m.ReplyTo = (&mail.Address{Name: from.Name, Address: local + "@" + domain}).String()
		}
	}
	now := time.Now()
	return &Mail{ID: ingest.NewID(), Key: key, Kind: kind, To: contact.Email, Message: m.encode(), NextAt: now, Created: now}, nil
}

func (s *Service) unsubscribeURL(u unsubscribe) string {
	return s.cfg.PublicURL + "/email/unsubscribe?t=" + url.QueryEscape(s.tokens.unsubscribeToken(u))
}

// dueJobs runs due jobs: transcripts.
func (s *Service) dueJobs(ctx context.Context) (int, error) {
	jobs, err := s.store.ClaimJobs(ctx, time.Now(), lease, 20)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, j := range jobs {
		m, err := s.transcriptMail(ctx, j)
		if err != nil {
			s.log.Warn("transcript not made; retried when the lease ends", "conversation", j.ConversationID, "err", err)
			continue
		}
		if err := s.store.FinishJob(ctx, j.Key, m); err != nil {
			return queued, err
		}
		if m != nil {
			queued++
		}
	}
	return queued, nil
}

func (s *Service) transcriptMail(ctx context.Context, j Job) (*Mail, error) {
	if !s.cfg.SMTP.Enabled() {
		return nil, nil
	}
	contact, err := s.chat.Contact(ctx, j.ConversationID)
	if s.chat.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	site, ok := s.chat.Site(contact.SiteID)
	if !ok {
		return nil, nil
	}
	if ok, err := s.mayMail(ctx, site.ID, contact.Email); err != nil || !ok {
		return nil, err
	}
	lines, err := s.chat.Transcript(ctx, j.ConversationID)
	if err != nil {
		return nil, err
	}
	lang := contact.Lang
	v := mailView{Lang: lang, SiteName: site.Name, Color: site.Color, Intro: site.Text(lang, "email.transcript_intro")}
	for _, l := range lines {
		who := l.Name
		switch {
		case l.Role == string(ingest.RoleVisitor):
			who = site.Text(lang, "message.you")
		case who == "":
			who = site.Text(lang, "message.agent")
		}
		v.Lines = append(v.Lines, lineView{Who: who, Text: l.Text, When: l.At.UTC().Format("2006-01-02 15:04 UTC")})
	}
	subject := site.Text(lang, "email.transcript_subject", "site", site.Name)
	return s.visitorMail(site, contact, j.ConversationID, "transcript", j.Key, subject, v)
}
