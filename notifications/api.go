package notifications

import (
	"bytes"
	"encoding/json"
	"errors"
	htmltemplate "html/template"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// Mount registers notifications' routes:
//
//	GET  /email/unsubscribe?t=         the page an unsubscribe link opens (asks to confirm)
//	POST /email/unsubscribe?t=         unsubscribe: the page's button, or a mail
//	                                   provider's one-click (RFC 8058)
//	GET  /api/notifications/preferences   the signed-in staff member's settings
//	PUT  /api/notifications/preferences   change them
//	POST /api/notifications/transcripts   email a conversation's transcript to its visitor (agents, supervisors)
//	GET  /api/notifications/mail          the mail outbox (?status=pending|sent|failed) (admins)
func (s *Service) Mount(r fiber.Router) {
	g := s.cfg.Guard
	r.Get("/email/unsubscribe", s.unsubscribePage)
	r.Post("/email/unsubscribe", s.unsubscribe)
	r.Get("/api/notifications/preferences", g.Require(), s.getPreferences)
	r.Put("/api/notifications/preferences", g.Require(), s.putPreferences)
	r.Post("/api/notifications/transcripts", g.Require(access.Agent, access.Supervisor), s.requestTranscript)
	r.Get("/api/notifications/mail", g.Require(access.Admin), s.listMail)
}

func apiError(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": msg})
}

func (s *Service) internal(c *fiber.Ctx, err error) error {
	s.log.Error("notifications request failed", "method", c.Method(), "path", c.Path(), "err", err)
	return apiError(c, fiber.StatusInternalServerError, "notifications store failed; retry later")
}

func (s *Service) getPreferences(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	p, _, err := s.store.Preferences(c.UserContext(), u.ID)
	if err != nil {
		return s.internal(c, err)
	}
	return c.JSON(p)
}

func (s *Service) putPreferences(c *fiber.Ctx) error {
	var p Preferences
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return apiError(c, fiber.StatusBadRequest, "body must be JSON preferences: "+err.Error())
	}
	if p.DigestAfterMinutes < 0 || p.DigestAfterMinutes > 24*60 {
		return apiError(c, fiber.StatusBadRequest, "digest_after_minutes must be between 0 (no digest) and 1440")
	}
	if p.QueueAlertMinutes < 0 || p.QueueAlertMinutes > 24*60 {
		return apiError(c, fiber.StatusBadRequest, "queue_alert_minutes must be between 0 (no alert) and 1440")
	}
	u, _ := access.UserOf(c)
	if err := s.store.SetPreferences(c.UserContext(), u.ID, p, time.Now()); err != nil {
		return s.internal(c, err)
	}
	return c.JSON(p)
}

func (s *Service) requestTranscript(c *fiber.Ctx) error {
	var body struct {
		ConversationID string `json:"conversation_id"`
	}
	if err := json.Unmarshal(c.Body(), &body); err != nil || body.ConversationID == "" {
		return apiError(c, fiber.StatusBadRequest, "body must be JSON {conversation_id}")
	}
	if !s.cfg.SMTP.Enabled() {
		return apiError(c, fiber.StatusServiceUnavailable, "email is not set up on this server (--smtp-addr)")
	}
	ctx := c.UserContext()
	contact, err := s.chat.Contact(ctx, body.ConversationID)
	if s.chat.IsNotFound(err) {
		return apiError(c, fiber.StatusNotFound, "conversation "+body.ConversationID+" not found")
	}
	if err != nil {
		return s.internal(c, err)
	}
	u, _ := access.UserOf(c)
	if !u.OnSite(contact.SiteID) {
		return apiError(c, fiber.StatusForbidden, "this conversation belongs to a site you do not work on")
	}
	if ok, err := s.mayMail(ctx, contact.SiteID, contact.Email); err != nil {
		return s.internal(c, err)
	} else if !ok {
		return apiError(c, fiber.StatusConflict, "the visitor left no email address, or unsubscribed from this site's mail")
	}
	j := Job{Key: "transcript:" + body.ConversationID + ":" + ingest.NewID(), Kind: JobTranscript, ConversationID: body.ConversationID, DueAt: time.Now()}
	if err := s.store.AddJob(ctx, j); err != nil {
		return s.internal(c, err)
	}
	s.log.Info("transcript requested", "conversation", body.ConversationID, "by", u.ID)
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"queued": true, "to": contact.Email})
}

func (s *Service) listMail(c *fiber.Ctx) error {
	status := c.Query("status")
	switch status {
	case "", MailPending, MailSent, MailFailed:
	default:
		return apiError(c, fiber.StatusBadRequest, "status must be pending, sent or failed")
	}
	list, err := s.store.Mails(c.UserContext(), status, 100)
	if err != nil {
		return s.internal(c, err)
	}
	if list == nil {
		list = []Mail{}
	}
	return c.JSON(fiber.Map{"mail": list})
}

// unsubscribeView is what the unsubscribe page shows.
type unsubscribeView struct {
	Lang, Dir, Title, Message, Button, Token string
	Done                                     bool
}

var unsubscribeTemplate = htmltemplate.Must(htmltemplate.New("unsubscribe").Parse(`<!doctype html>
<html lang="{{.Lang}}" dir="{{.Dir}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5">
<h1 style="font-size:1.25rem">{{.Title}}</h1>
<p>{{.Message}}</p>
{{if not .Done}}<form method="post" action="/email/unsubscribe?t={{.Token}}"><button type="submit" style="font-size:1rem;padding:.5rem 1rem">{{.Button}}</button></form>{{end}}
</body></html>
`))

// unsubscribeTexts renders the page texts for a token in its language.
func (s *Service) unsubscribeTexts(u unsubscribe, done bool) unsubscribeView {
	v := unsubscribeView{Lang: "en", Dir: "ltr", Done: done}
	if u.Kind == "a" {
		v.Title, v.Button = "Parley digests", "Stop digests"
		v.Message = "Stop the emails about conversations waiting while you are away? You can turn them on again in your notification settings."
		if done {
			v.Message = "Done: you will get no more digests. Turn them on again in your notification settings."
		}
		return v
	}
	site, ok := s.chat.Site(u.Site)
	if !ok {
		v.Title, v.Message = "Unsubscribe", "You will get no more emails from this site."
		return v
	}
	v.Lang = u.Lang
	mv := mailView{Lang: u.Lang}
	mv.normalize()
	v.Dir = mv.Dir
	v.Title = site.Name
	v.Button = site.Text(u.Lang, "email.unsubscribe_button")
	v.Message = site.Text(u.Lang, "email.unsubscribe_confirm", "site", site.Name, "email", u.Email)
	if done {
		v.Message = site.Text(u.Lang, "email.unsubscribed", "site", site.Name, "email", u.Email)
	}
	return v
}

func (s *Service) renderUnsubscribe(c *fiber.Ctx, status int, v unsubscribeView) error {
	var b strings.Builder
	if err := unsubscribeTemplate.Execute(&b, v); err != nil {
		return s.internal(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Status(status).SendString(b.String())
}

func (s *Service) unsubscribePage(c *fiber.Ctx) error {
	u, err := s.tokens.parseUnsubscribe(c.Query("t"))
	if err != nil {
		return s.renderUnsubscribe(c, fiber.StatusBadRequest, unsubscribeView{Lang: "en", Dir: "ltr", Title: "Unsubscribe", Message: err.Error(), Done: true})
	}
	v := s.unsubscribeTexts(u, false)
	v.Token = c.Query("t")
	return s.renderUnsubscribe(c, fiber.StatusOK, v)
}

// unsubscribe acts on a link: the page's button or a provider's one-click POST.
func (s *Service) unsubscribe(c *fiber.Ctx) error {
	u, err := s.tokens.parseUnsubscribe(c.Query("t"))
	if err != nil {
		return s.renderUnsubscribe(c, fiber.StatusBadRequest, unsubscribeView{Lang: "en", Dir: "ltr", Title: "Unsubscribe", Message: err.Error(), Done: true})
	}
	ctx := c.UserContext()
	switch u.Kind {
	case "v":
		err = s.store.Unsubscribe(ctx, u.Site, u.Email, time.Now())
	case "a":
		var p Preferences
		if p, _, err = s.store.Preferences(ctx, u.User); err == nil {
			p.DigestAfterMinutes = 0
			err = s.store.SetPreferences(ctx, u.User, p, time.Now())
		}
	default:
		err = errors.New("unknown link kind")
	}
	if err != nil {
		return s.internal(c, err)
	}
	s.log.Info("unsubscribed", "kind", u.Kind, "site", u.Site)
	return s.renderUnsubscribe(c, fiber.StatusOK, s.unsubscribeTexts(u, true))
}
