package moderation

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// MaxTestTextBytes bounds the text of a policy test.
const MaxTestTextBytes = 16 << 10

// Mount registers the review-queue and policy API under /api/moderation.
// Every route requires the moderator role (admins have it); unsafe
// methods also need the session's CSRF header (access.Guard).
//
//	GET  /api/moderation/items?status=&category=&site_id=&limit=&offset=
//	GET  /api/moderation/items/:id                 item, conversation context, audit
//	POST /api/moderation/items/:id/claim
//	POST /api/moderation/items/:id/release
//	POST /api/moderation/items/:id/approve         {reason}
//	POST /api/moderation/items/:id/remove          {reason}
//	POST /api/moderation/items/:id/ban             {reason, duration: "24h" | "7d"}
//	POST /api/moderation/items/:id/review          {reason}
//	GET  /api/moderation/audit?site_id=&item_id=&before=&limit=
//	GET  /api/moderation/bans?site_id=&active=1
//	POST /api/moderation/bans/:site/:visitor/lift  {reason}
//	GET  /api/moderation/policy/:site
//	PUT  /api/moderation/policy/:site              policy document
//	POST /api/moderation/policy/test               {site_id, text, policy?}
//	POST /api/moderation/items/:id/lists           {list, match, reason?} (api_teach.go)
//	GET  /api/moderation/labels                    labels as JSON lines (api_teach.go)
//	GET  /api/moderation/precision?site_id=&days=  (api_teach.go)
func (s *Service) Mount(r fiber.Router) {
	if s.cfg.Guard == nil {
		s.log.Error("moderation API not mounted: no access guard configured")
		return
	}
	mod := s.cfg.Guard.Require(access.Moderator)
	testLimit := limiter.New(limiter.Config{
		Max: 120, Expiration: time.Minute,
		LimitReached: func(c *fiber.Ctx) error {
			return fail(c, fiber.StatusTooManyRequests, "too many policy tests; wait a minute")
		},
	})
	g := r.Group("/api/moderation")
	g.Get("/items", mod, s.apiListItems)
	g.Get("/items/:id", mod, s.scoped(s.apiGetItem))
	g.Post("/items/:id/claim", mod, s.scoped(s.apiClaim))
	g.Post("/items/:id/release", mod, s.scoped(s.apiRelease))
	g.Post("/items/:id/approve", mod, s.scoped(s.apiDecide(ingest.DecisionApprove)))
	g.Post("/items/:id/remove", mod, s.scoped(s.apiDecide(ingest.DecisionRemove)))
	g.Post("/items/:id/ban", mod, s.scoped(s.apiDecide(ingest.DecisionBan)))
	g.Post("/items/:id/review", mod, s.scoped(s.apiDecide(ingest.DecisionReviewed)))
	g.Get("/audit", mod, s.apiAudit)
	g.Get("/bans", mod, s.apiBans)
	g.Post("/bans/:site/:visitor/lift", mod, siteScoped(s.apiLiftBan))
	g.Get("/policy/:site", mod, siteScoped(s.apiGetPolicy))
	g.Put("/policy/:site", mod, siteScoped(s.apiPutPolicy))
	g.Post("/policy/test", mod, testLimit, s.apiTestPolicy)
	s.mountTeaching(g, mod)
}

// fail answers with a JSON error.
func fail(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": msg})
}

// answer maps a service error to a status: 400 for bad input and invalid
// policies, 404, 409 for claims and decided items, 500 otherwise (logged,
// not shown).
func (s *Service) answer(c *fiber.Ctx, err error) error {
	var pe *PolicyError
	var ie *inputError
	switch {
	case errors.As(err, &pe):
		return c.Status(fiber.StatusBadRequest).JSON(pe)
	case errors.As(err, &ie):
		return fail(c, fiber.StatusBadRequest, ie.msg)
	case errors.Is(err, ErrNotFound):
		return fail(c, fiber.StatusNotFound, "not found")
	case errors.Is(err, ErrConflict):
		return fail(c, fiber.StatusConflict, strings.TrimPrefix(err.Error(), ErrConflict.Error()+": "))
	}
	s.log.Error("moderation API failed", "path", c.Path(), "err", err)
	return fail(c, fiber.StatusInternalServerError, "internal error")
}

func queryInt(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badInput("%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

func (s *Service) apiListItems(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	f := ItemFilter{Status: c.Query("status", StatusOpen), Category: c.Query("category"), SiteID: c.Query("site_id"), Sites: u.SiteScope()}
	if offSite(c, f.SiteID) {
		return siteForbidden(c)
	}
	if _, ok := map[string]bool{StatusOpen: true, StatusApproved: true, StatusRemoved: true, StatusBanned: true, StatusReviewed: true}[f.Status]; !ok {
		return fail(c, fiber.StatusBadRequest, "status must be open, approved, removed, banned or reviewed")
	}
	if f.Category != "" && !categoryRe.MatchString(f.Category) {
		return fail(c, fiber.StatusBadRequest, "category must be lower-case letters and _")
	}
	var err error
	if f.Limit, err = queryInt(c, "limit", 50, 1, 200); err != nil {
		return s.answer(c, err)
	}
	if f.Offset, err = queryInt(c, "offset", 0, 0, 1_000_000); err != nil {
		return s.answer(c, err)
	}
	page, err := s.store.Items(c.UserContext(), f)
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(page)
}

func (s *Service) apiGetItem(c *fiber.Ctx) error {
	ctx := c.UserContext()
	it, err := s.store.Item(ctx, c.Params("id"))
	if err != nil {
		return s.answer(c, err)
	}
	conv, err := s.store.Context(ctx, it.SiteID, it.ConversationID, it.MessageSeq, 10, 5)
	if err != nil {
		return s.answer(c, err)
	}
	audit, err := s.store.Audit(ctx, AuditFilter{ItemID: it.ID, Limit: 100})
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(fiber.Map{"item": it, "context": conv, "audit": audit})
}

func (s *Service) apiClaim(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	it, err := s.Claim(c.UserContext(), c.Params("id"), u)
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(it)
}

func (s *Service) apiRelease(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	it, err := s.Release(c.UserContext(), c.Params("id"), u)
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(it)
}

type decisionRequest struct {
	Reason   string `json:"reason"`
	Duration string `json:"duration,omitempty"`
}

// parseBanDuration reads "90m", "24h" or "7d".
func parseBanDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, badInput("duration is required for a ban, e.g. \"24h\" or \"7d\"")
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, badInput("duration %q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badInput("duration %q is not like \"90m\", \"24h\" or \"7d\"", s)
	}
	return d, nil
}

func decodeBody(c *fiber.Ctx, dst any) error {
	body := c.Body()
	if len(body) == 0 {
		return badInput("body must be a JSON object")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return badInput("body is not valid JSON: %v", err)
	}
	return nil
}

func (s *Service) apiDecide(decision string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req decisionRequest
		if err := decodeBody(c, &req); err != nil {
			return s.answer(c, err)
		}
		d := Decision{Decision: decision, Reason: req.Reason}
		if decision == ingest.DecisionBan {
			var err error
			if d.BanFor, err = parseBanDuration(req.Duration); err != nil {
				return s.answer(c, err)
			}
		}
		u, _ := access.UserOf(c)
		it, err := s.Decide(c.UserContext(), c.Params("id"), u, d)
		if err != nil {
			return s.answer(c, err)
		}
		return c.JSON(it)
	}
}

func (s *Service) apiAudit(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	f := AuditFilter{SiteID: c.Query("site_id"), ItemID: c.Query("item_id"), Sites: u.SiteScope()}
	if offSite(c, f.SiteID) {
		return siteForbidden(c)
	}
	var err error
	if f.Limit, err = queryInt(c, "limit", 100, 1, 500); err != nil {
		return s.answer(c, err)
	}
	before, err := queryInt(c, "before", 0, 0, 1<<62)
	if err != nil {
		return s.answer(c, err)
	}
	f.Before = int64(before)
	rows, err := s.store.Audit(c.UserContext(), f)
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(fiber.Map{"entries": rows})
}

func (s *Service) apiBans(c *fiber.Ctx) error {
	if offSite(c, c.Query("site_id")) {
		return siteForbidden(c)
	}
	bans, err := s.Bans(c.UserContext(), c.Query("site_id"), c.Query("active") == "1")
	if err != nil {
		return s.answer(c, err)
	}
	u, _ := access.UserOf(c)
	mine := make([]Ban, 0, len(bans))
	for _, b := range bans {
		if u.OnSite(b.SiteID) {
			mine = append(mine, b)
		}
	}
	return c.JSON(fiber.Map{"bans": mine})
}

func (s *Service) apiLiftBan(c *fiber.Ctx) error {
	var req decisionRequest
	if err := decodeBody(c, &req); err != nil {
		return s.answer(c, err)
	}
	u, _ := access.UserOf(c)
	if err := s.LiftBan(c.UserContext(), c.Params("site"), c.Params("visitor"), u, req.Reason); err != nil {
		return s.answer(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Service) apiGetPolicy(c *fiber.Ctx) error {
	info, err := s.SitePolicy(c.UserContext(), c.Params("site"))
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(info)
}

func (s *Service) apiPutPolicy(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	site := c.Params("site")
	p, err := s.SavePolicy(c.UserContext(), site, c.Body(), u)
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(PolicyInfo{SiteID: site, Policy: p, Stored: true})
}

type policyTestRequest struct {
	SiteID string          `json:"site_id"`
	Text   string          `json:"text"`
	Policy json.RawMessage `json:"policy,omitempty"`
}

// apiTestPolicy judges a text with the policy being edited (when given)
// or the site's saved policy, without saving anything.
func (s *Service) apiTestPolicy(c *fiber.Ctx) error {
	var req policyTestRequest
	if err := decodeBody(c, &req); err != nil {
		return s.answer(c, err)
	}
	if offSite(c, req.SiteID) {
		return siteForbidden(c)
	}
	if len(req.Text) > MaxTestTextBytes {
		return fail(c, fiber.StatusBadRequest, "text is longer than 16 KiB")
	}
	if !utf8.ValidString(req.Text) {
		return fail(c, fiber.StatusBadRequest, "text is not valid UTF-8")
	}
	var e *Engine
	if len(req.Policy) > 0 && string(req.Policy) != "null" {
		p, err := ParsePolicy(req.Policy)
		if err != nil {
			return s.answer(c, err)
		}
		if e, err = NewEngine(p); err != nil {
			return s.answer(c, err)
		}
	} else {
		if req.SiteID == "" {
			return fail(c, fiber.StatusBadRequest, "site_id or policy is required")
		}
		e = s.engineFor(c.UserContext(), req.SiteID)
	}
	return c.JSON(fiber.Map{"verdict": e.Check(req.Text), "normalised": Normalise(req.Text)})
}
