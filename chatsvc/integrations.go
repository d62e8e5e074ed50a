package chatsvc

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/parleychat/parley/ingest"
)

// What integrations (API token policy, email continuity) need from chat;
// cmd/parley adapts these methods to the interfaces those packages declare.

// ConversationSite returns the site a conversation belongs to; an unknown
// conversation gives a not_found error.
func (s *Service) ConversationSite(ctx context.Context, id string) (string, error) {
	m, err := s.convMeta(ctx, id)
	if err != nil {
		return "", err
	}
	return m.SiteID, nil
}

// Contact is what a notification needs about a conversation and its visitor.
type Contact struct {
	ConversationID, SiteID, VisitorID string
	Name, Email                       string
	// Lang is the site language that fits the visitor's browser.
	Lang string
	// PageURL is the page the visitor last chatted from.
	PageURL string
	Status  string
}

// ConversationContact returns a conversation's visitor as notifications
// need them: address, name, language and last page.
func (s *Service) ConversationContact(ctx context.Context, convID string) (Contact, error) {
	conv, err := s.store.Conversation(ctx, convID)
	if errors.Is(err, ErrNotFound) {
		return Contact{}, errf(CodeNotFound, "conversation %s not found", convID)
	}
	if err != nil {
		return Contact{}, err
	}
	v, _, err := s.store.Visitor(ctx, conv.VisitorID)
	if err != nil {
		return Contact{}, err
	}
	c := Contact{ConversationID: conv.ID, SiteID: conv.SiteID, VisitorID: conv.VisitorID, Name: v.Name, Email: v.Email, PageURL: v.PageURL, Status: conv.Status}
	if site, ok := s.sites.get(conv.SiteID); ok {
		c.Lang = site.Settings.matchLanguage([]string{v.Locale})
	}
	return c, nil
}

// VisitorTranscript returns what the visitor may see of a conversation, in
// order: no notes, no other people's blocked messages, hidden ones blank.
func (s *Service) VisitorTranscript(ctx context.Context, convID string) ([]Message, error) {
	meta, err := s.convMeta(ctx, convID)
	if err != nil {
		return nil, err
	}
	var out []Message
	after := int64(0)
	for {
		page, err := s.store.MessagesAfter(ctx, convID, after, 500)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			if vm, ok := m.forVisitor(meta.VisitorID); ok && vm.Status != MsgHidden {
				out = append(out, vm)
			}
			after = m.Seq
		}
		if len(page) < 500 {
			return out, nil
		}
	}
}

// ResumeLink returns a link that reopens the conversation in the widget on
// the page the visitor chatted from, signed in as that visitor (a visitor
// token in the URL fragment, which browsers do not send to servers). ok is
// false when the visitor's page is unknown.
func (s *Service) ResumeLink(ctx context.Context, convID string) (link string, ok bool, err error) {
	c, err := s.ConversationContact(ctx, convID)
	if err != nil {
		return "", false, err
	}
	u, err := url.Parse(c.PageURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, nil
	}
	token := signToken(s.cfg.Secret, visitorClaims{Site: c.SiteID, Visitor: c.VisitorID, Expires: time.Now().Add(s.cfg.TokenTTL).Unix()})
	u.Fragment, u.RawFragment = "", ""
	return u.String() + "#parley_resume=" + url.QueryEscape(token), true, nil
}

// PostVisitorMessage stores text as the visitor's message in a
// conversation, as if typed in the widget: bans, rate limit and the inline
// moderation check apply. clientID deduplicates retries (an email's
// Message-ID). A resolved conversation reopens, or a new one starts when
// the reopen window has passed.
func (s *Service) PostVisitorMessage(ctx context.Context, convID, clientID, text string) (Message, error) {
	meta, err := s.convMeta(ctx, convID)
	if err != nil {
		return Message{}, err
	}
	if fe := s.checkText(inFrame{ClientID: clientID, Text: text}); fe != nil {
		return Message{}, fe
	}
	if b, banned := s.banned(ctx, meta.SiteID, meta.VisitorID, true); banned {
		return Message{}, errf(CodeBanned, "the visitor is banned until %s", ingest.At(b.Until).Format(time.RFC3339))
	}
	if ok, wait := s.visitorLimit.allow(meta.VisitorID); !ok {
		return Message{}, errf(CodeRateLimited, "too many messages; retry in %s", (wait + time.Second).Truncate(time.Second))
	}
	verdict := InlineVerdict{Action: ingest.ActionAllow}
	if s.cfg.Moderator != nil {
		verdict = s.cfg.Moderator.CheckInline(ctx, meta.SiteID, meta.VisitorID, text)
	}
	res, err := s.send(ctx, sendReq{
		Author: Author{Role: string(ingest.RoleVisitor), ID: meta.VisitorID}, SiteID: meta.SiteID,
		ConversationID: convID, ClientID: clientID, Kind: ingest.KindText, Text: text, Verdict: verdict,
	})
	return res.Msg, err
}

// SiteLook is what an email needs of a site: its name and colour, its
// email settings, and its texts.
type SiteLook struct {
	ID, Name, Color string
	DefaultLang     string
	Email           EmailSettings
	settings        SiteSettings
}

// Text renders a visitor-facing catalog text (chatsvc/i18n) in lang with
// the site's overrides; args are name, value pairs for {placeholders}.
func (l SiteLook) Text(lang, key string, args ...string) string {
	return l.settings.visitorText(lang, key, args...)
}

// SiteLookOf returns a site's look; ok is false for an unknown site.
func (s *Service) SiteLookOf(siteID string) (SiteLook, bool) {
	site, ok := s.sites.get(siteID)
	if !ok {
		return SiteLook{}, false
	}
	color := site.Settings.Color
	if !strings.HasPrefix(color, "#") || len(color) != 7 {
		color = "#4f46e5"
	}
	return SiteLook{ID: site.ID, Name: site.Name, Color: color, DefaultLang: site.Settings.defaultLanguage(), Email: site.Settings.Email, settings: site.Settings}, true
}

// ErrorCode returns the protocol code of an error chat refused a request
// with (CodeNotFound, CodeBanned, ...), or "" for a failure of its own.
func ErrorCode(err error) string {
	var fe *frameError
	if errors.As(err, &fe) {
		return fe.Code
	}
	if errors.Is(err, ErrNotFound) {
		return CodeNotFound
	}
	return ""
}
