package chatsvc

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/ingest"
)

type sessionRequest struct {
	SiteKey string `json:"site_key"`
	Token   string `json:"token"`
	User    *struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
		Hash  string `json:"hash"`
	} `json:"user"`
}

type sessionResponse struct {
	Token     string `json:"token"`
	VisitorID string `json:"visitor_id"`
	ExpiresAt string `json:"expires_at"`
	Verified  bool   `json:"verified"`
}

// visitorCORS answers preflights for the visitor API: an Origin allowed by
// any site may ask; each real request is then checked against its site.
func (s *Service) visitorCORS(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	c.Vary(fiber.HeaderOrigin)
	if c.Method() != fiber.MethodOptions {
		return c.Next()
	}
	allowed := false
	for _, site := range s.sites.all() {
		if origin != "" && site.AllowsOrigin(origin) {
			allowed = true
			break
		}
	}
	if !allowed {
		return replyError(c, fiber.StatusForbidden, CodeOriginNotAllowed, fmt.Sprintf("origin %q is not allowed", origin))
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	c.Set(fiber.HeaderAccessControlAllowMethods, "GET, POST")
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type, Authorization")
	c.Set(fiber.HeaderAccessControlMaxAge, "600")
	return c.SendStatus(fiber.StatusNoContent)
}

// allowSiteOrigin checks a cross-origin request against the site and sets
// the CORS header; requests without Origin come from non-browser clients.
func allowSiteOrigin(c *fiber.Ctx, site *Site) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return nil
	}
	if !site.AllowsOrigin(origin) {
		return errf(CodeOriginNotAllowed, "origin %q is not allowed for site %s", origin, site.Name)
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	return nil
}

func (s *Service) visitorSession(c *fiber.Ctx) error {
	if ok, wait := s.ipLimit.allow(c.IP()); !ok {
		return replyError(c, fiber.StatusTooManyRequests, CodeRateLimited, fmt.Sprintf("too many sessions from your address; retry in %s", (wait+time.Second).Truncate(time.Second)))
	}
	var req sessionRequest
	if err := c.BodyParser(&req); err != nil {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "body must be JSON {site_key, token?, user?}: "+err.Error())
	}
	site, ok := s.sites.byKeyGet(req.SiteKey)
	if !ok {
		return replyError(c, fiber.StatusNotFound, CodeUnknownSite, fmt.Sprintf("no site has the key %q", truncate(req.SiteKey, 64)))
	}
	if err := allowSiteOrigin(c, site); err != nil {
		return s.replyErr(c, err)
	}
	ctx := c.UserContext()
	now := time.Now()
	if b, banned := s.addressBanned(ctx, site.ID, c.IP()); banned {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Code: CodeBanned, Message: "you are banned from this chat", Until: ingest.At(b.Until).Format(time.RFC3339)})
	}
	var visitorID string
	verified := false
	if u := req.User; u != nil && u.ID != "" {
		switch {
		case u.Hash != "" && verifyIdentity(site.Secret, u.ID, u.Hash):
			verified = true
		case u.Hash != "" || site.IdentityRequired:
			return replyError(c, fiber.StatusUnauthorized, CodeIdentity, "user.hash is not HMAC-SHA256(site secret, user.id); compute it on your server")
		}
	}
	if site.IdentityRequired && !verified {
		return replyError(c, fiber.StatusUnauthorized, CodeIdentity, "this site admits verified visitors only: boot the widget with user.id and user.hash = HMAC-SHA256(site secret, user.id) from your server")
	}
	if verified {
		id, err := s.visitorByExternal(c, site.ID, req.User.ID)
		if err != nil {
			return s.replyErr(c, err)
		}
		visitorID = id
	} else if req.Token != "" {
		if claims, err := verifyToken(s.cfg.Secret, req.Token, now); err == nil && claims.Site == site.ID {
			exists, err := s.store.VisitorExists(ctx, claims.Visitor)
			if err != nil {
				return s.replyErr(c, err)
			}
			if exists {
				visitorID = claims.Visitor
			}
		}
		// An expired or foreign token starts a new visitor rather than failing the widget.
	}
	if visitorID == "" {
		visitorID = ingest.NewID()
		if err := s.store.InsertVisitor(ctx, VisitorRecord{ID: visitorID, SiteID: site.ID, IP: c.IP(),
			UserAgent: truncate(string(c.Request().Header.UserAgent()), 512), CreatedAt: now}); err != nil {
			return s.replyErr(c, err)
		}
	}
	if b, banned := s.banned(ctx, site.ID, visitorID, true); banned {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Code: CodeBanned, Message: "you are banned from this chat", Until: ingest.At(b.Until).Format(time.RFC3339)})
	}
	if u := req.User; u != nil && (u.Name != "" || u.Email != "") {
		if fe := s.updateVisitorProfile(ctx, visitorID, u.Name, u.Email, nil); fe != nil {
			return s.replyErr(c, fe)
		}
	}
	exp := now.Add(s.cfg.TokenTTL)
	token := signToken(s.cfg.Secret, visitorClaims{Site: site.ID, Visitor: visitorID, Expires: exp.Unix(), Verified: verified})
	return c.JSON(sessionResponse{Token: token, VisitorID: visitorID, ExpiresAt: exp.UTC().Format(time.RFC3339), Verified: verified})
}

// visitorByExternal finds or creates the verified visitor of a site user.
func (s *Service) visitorByExternal(c *fiber.Ctx, siteID, externalID string) (string, error) {
	ctx := c.UserContext()
	if len(externalID) > 255 {
		return "", errf(CodeBadRequest, "user.id is longer than 255 bytes")
	}
	return s.store.EnsureExternalVisitor(ctx, VisitorRecord{
		ID: ingest.NewID(), SiteID: siteID, ExternalID: externalID, Verified: true, IP: c.IP(),
		UserAgent: truncate(string(c.Request().Header.UserAgent()), 512), CreatedAt: time.Now(),
	})
}

// visitorAuth admits requests with a valid visitor token (Bearer).
func (s *Service) visitorAuth(c *fiber.Ctx) error {
	token := strings.TrimPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	claims, err := verifyToken(s.cfg.Secret, token, time.Now())
	if err != nil {
		return replyError(c, fiber.StatusUnauthorized, CodeInvalidToken, err.Error())
	}
	site, ok := s.sites.get(claims.Site)
	if !ok {
		return replyError(c, fiber.StatusUnauthorized, CodeInvalidToken, "the token's site no longer exists")
	}
	if err := allowSiteOrigin(c, site); err != nil {
		return s.replyErr(c, err)
	}
	if identityMissing(site, claims) {
		return replyError(c, fiber.StatusUnauthorized, CodeIdentity, "this site admits verified visitors only; start a verified session")
	}
	c.Locals(localSite, site)
	c.Locals(localVisitor, claims.Visitor)
	return c.Next()
}

func (s *Service) visitorMessages(c *fiber.Ctx) error {
	visitorID, _ := c.Locals(localVisitor).(string)
	convID := c.Params("id")
	meta, err := s.convMeta(c.UserContext(), convID)
	if err != nil {
		return s.replyErr(c, err)
	}
	if meta.VisitorID != visitorID {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "conversation "+convID+" not found")
	}
	msgs, err := s.messagesAfter(c.UserContext(), convID, int64(c.QueryInt("after_seq", 0)), clamp(c.QueryInt("limit", 200), 1, 500))
	if err != nil {
		return s.replyErr(c, err)
	}
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		if vm, ok := m.forVisitor(visitorID); ok {
			out = append(out, vm)
		}
	}
	return c.JSON(fiber.Map{"messages": out})
}

func (s *Service) visitorUpload(c *fiber.Ctx) error {
	visitorID, _ := c.Locals(localVisitor).(string)
	site, _ := c.Locals(localSite).(*Site)
	if _, banned := s.banned(c.UserContext(), site.ID, visitorID, false); banned {
		return replyError(c, fiber.StatusForbidden, CodeBanned, "you are banned from this chat")
	}
	if ok, wait := s.visitorLimit.allow(visitorID); !ok {
		return replyError(c, fiber.StatusTooManyRequests, CodeRateLimited, fmt.Sprintf("too many uploads; retry in %s", (wait+time.Second).Truncate(time.Second)))
	}
	if ok, wait := s.ipLimit.allow(c.IP()); !ok {
		return replyError(c, fiber.StatusTooManyRequests, CodeRateLimited, fmt.Sprintf("too many requests from your address; retry in %s", (wait+time.Second).Truncate(time.Second)))
	}
	return s.upload(c, visitorID, site.ID)
}

func (s *Service) upload(c *fiber.Ctx, uploaderID, siteID string) error {
	fh, err := c.FormFile("file")
	if err != nil {
		return replyError(c, fiber.StatusBadRequest, "no_file", "send multipart/form-data with one part named file")
	}
	f, err := fh.Open()
	if err != nil {
		return s.replyErr(c, fmt.Errorf("open upload: %w", err))
	}
	defer f.Close()
	a, err := s.saveAttachment(c.UserContext(), uploaderID, siteID, fh.Filename, fh.Size, f)
	if err != nil {
		return s.replyErr(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}

func clamp(v, lo, hi int) int {
	return max(lo, min(v, hi))
}
