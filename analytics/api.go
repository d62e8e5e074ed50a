package analytics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// Mount registers the analytics routes. Every one requires the supervisor
// role (admins hold it too); the moderation report also admits moderators.
func (s *Service) Mount(r fiber.Router) {
	// siteGuard follows the role check everywhere: staff scoped to sites
	// see and name only their sites (scope.go).
	sup := s.cfg.Guard.Require(access.Supervisor)
	mod := s.cfg.Guard.Require(access.Supervisor, access.Moderator)
	r.Get("/api/analytics/report", sup, siteGuard, s.queryHandler("report", s.report))
	r.Get("/api/analytics/conversations", sup, siteGuard, s.conversations)
	r.Get("/api/analytics/export.csv", sup, siteGuard, s.export)
	r.Get("/api/analytics/overview", sup, siteGuard, s.overview)
	r.Get("/api/analytics/moderation", mod, siteGuard, s.queryHandler("moderation", s.moderation))
	r.Get("/api/analytics/moderation/items", mod, siteGuard, s.moderationItems)
	r.Get("/api/analytics/agents", sup, siteGuard, s.queryHandler("agent load", s.agents))
	r.Get("/api/analytics/sites", mod, siteGuard, s.sites)
	r.Get("/api/analytics/pipeline", sup, s.pipeline)
	r.Get("/ws/analytics", sup, siteGuard, s.checkOrigin, websocket.New(s.live))
}

func badRequest(c *fiber.Ctx, err error) error {
	return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
}

// storeError answers 503 for an unavailable store and 500 otherwise.
func (s *Service) storeError(c *fiber.Ctx, op string, err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("analytics query failed: store unavailable", "op", op, "err", err)
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"error": "analytics store unavailable, try again shortly"})
	}
	s.log.Error("analytics query failed", "op", op, "err", err)
	return c.Status(fiber.StatusInternalServerError).JSON(fiber.Map{"error": op + " failed"})
}

// acquire bounds concurrent heavy queries; it waits up to the query
// timeout. It also needs the store: while it is being opened the request
// gets 503 at once.
func (s *Service) acquire(c *fiber.Ctx) (context.Context, Store, func(), error) {
	st := s.currentStore()
	if st == nil {
		return nil, nil, nil, s.storeError(c, "query", s.notConnected())
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.QueryTimeout)
	select {
	case s.sem <- struct{}{}:
		return ctx, st, func() { <-s.sem; cancel() }, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, nil, c.Status(fiber.StatusTooManyRequests).JSON(fiber.Map{"error": "too many analytics queries at once"})
	}
}

// queryHandler answers a range query: it parses the query, takes one of
// the heavy-query slots, runs answer within the query timeout and writes
// its result as JSON. what names the query in errors.
func (s *Service) queryHandler(what string, answer func(ctx context.Context, st Store, q Query) (any, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q, err := queryFromRequest(c, time.Now())
		if err != nil {
			return badRequest(c, err)
		}
		ctx, st, release, err := s.acquire(c)
		if ctx == nil {
			return err
		}
		defer release()
		out, err := answer(ctx, st, q)
		if err != nil {
			return s.storeError(c, what, err)
		}
		return c.JSON(out)
	}
}

func (s *Service) report(ctx context.Context, st Store, q Query) (any, error) {
	return st.Report(ctx, q)
}

func (s *Service) moderation(ctx context.Context, st Store, q Query) (any, error) {
	facts, err := st.ModerationFacts(ctx, q)
	if err != nil {
		return nil, err
	}
	return moderationReport(q, facts), nil
}

// moderationItems is the moderation report's drill-down.
func (s *Service) moderationItems(c *fiber.Ctx) error {
	q, err := queryFromRequest(c, time.Now())
	if err != nil {
		return badRequest(c, err)
	}
	limit, err := intParam(c, "limit", 100, 1, 1000)
	if err != nil {
		return badRequest(c, err)
	}
	d := ModerationDrill{What: c.Query("what"), Bucket: c.Query("point"), SiteID: c.Query("item_site"), Category: c.Query("category"),
		Action: c.Query("action"), Decision: c.Query("decision"), Moderator: c.Query("moderator"), Limit: limit}
	ctx, st, release, err := s.acquire(c)
	if ctx == nil {
		return err
	}
	defer release()
	facts, err := st.ModerationFacts(ctx, q)
	if err != nil {
		return s.storeError(c, "moderation items", err)
	}
	items, err := moderationItems(q, d, facts)
	if err != nil {
		return badRequest(c, err)
	}
	return c.JSON(fiber.Map{"items": items, "limit": limit, "truncated": len(items) == limit})
}

// siteInfo is a site as reports name it, from its newest site.updated event.
type siteInfo struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	Timezone            string `json:"timezone,omitempty"`
	FirstResponseTarget int64  `json:"first_response_target_s"`
	ReplyTarget         int64  `json:"reply_target_s"`
	Deleted             bool   `json:"deleted,omitempty"`
}

// sites lists the sites analytics knows (names for reports; supervisors
// and moderators cannot read chat's site settings); ?site= keeps one (an
// API token bound to sites names its site so).
func (s *Service) sites(c *fiber.Ctx) error {
	only := c.Query("site")
	st := s.currentStore()
	if st == nil {
		return s.storeError(c, "sites", s.notConnected())
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.QueryTimeout)
	defer cancel()
	ps, err := st.SiteProfiles(ctx)
	if err != nil {
		return s.storeError(c, "sites", err)
	}
	out := make([]siteInfo, 0, len(ps))
	u, _ := access.UserOf(c)
	for _, p := range ps {
		if only != "" && p.SiteID != only || !u.OnSite(p.SiteID) {
			continue
		}
		r := p.rules()
		out = append(out, siteInfo{ID: p.SiteID, Name: p.State.Name, Timezone: p.State.Timezone,
			FirstResponseTarget: r.frTargetMs / 1000, ReplyTarget: r.rtTargetMs / 1000, Deleted: p.State.Deleted})
	}
	return c.JSON(fiber.Map{"sites": out})
}

// agents answers agent load with each agent's online and away time.
func (s *Service) agents(ctx context.Context, st Store, q Query) (any, error) {
	as, err := st.Assignments(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("agent load: %w", err)
	}
	pe, err := st.PresenceEvents(ctx, q.From, q.To)
	if err != nil {
		return nil, fmt.Errorf("agent presence: %w", err)
	}
	changes, err := decodePresence(pe)
	if err != nil {
		return nil, fmt.Errorf("agent presence: %w", err)
	}
	from, to, now := q.From.UnixMilli(), q.To.UnixMilli(), q.Now.UnixMilli()
	loads := withPresence(agentLoad(as, from, to, now), presenceTime(changes, from, to, now), q.Filter)
	return fiber.Map{"agents": loads}, nil
}

func drillFromRequest(c *fiber.Ctx, limitMax int) (Drill, error) {
	limit, err := intParam(c, "limit", min(100, limitMax), 1, limitMax)
	if err != nil {
		return Drill{}, err
	}
	d := Drill{Bucket: c.Query("point"), Key: c.Query("key"), Metric: c.Query("metric"), Limit: limit}
	if _, ok := drillMetrics[d.Metric]; !ok {
		return Drill{}, fmt.Errorf("metric %q is not one of %s", d.Metric, strings.Join(drillNames(), ", "))
	}
	if d.Bucket != "" {
		if _, err := parseBucketLabel(d.Bucket); err != nil {
			return Drill{}, fmt.Errorf("point %q is not a bucket label (RFC 3339)", d.Bucket)
		}
	}
	return d, nil
}

// conversations is the drill-down: the conversations behind one data point.
func (s *Service) conversations(c *fiber.Ctx) error {
	q, err := queryFromRequest(c, time.Now())
	if err != nil {
		return badRequest(c, err)
	}
	d, err := drillFromRequest(c, 1000)
	if err != nil {
		return badRequest(c, err)
	}
	ctx, st, release, err := s.acquire(c)
	if ctx == nil {
		return err
	}
	defer release()
	rows, err := st.Conversations(ctx, q, d)
	if err != nil {
		return s.storeError(c, "drill-down", err)
	}
	out := make([]drillRow, len(rows))
	for i := range rows {
		out[i] = drillRow{ConversationFacts: rows[i], Reason: drillReason(&rows[i], q),
			SLABreached: frBreached(rows[i].SLA, rows[i].FRDeadline, q.Now.UnixMilli())}
	}
	return c.JSON(fiber.Map{"conversations": out, "limit": d.Limit, "truncated": len(rows) == d.Limit})
}

// drillRow is a drill-down row: the facts, why the conversation is missed,
// late or waiting past the target (empty otherwise), and whether the
// first-response target counts as breached now (calendar clock).
type drillRow struct {
	ConversationFacts
	Reason      string `json:"reason"`
	SLABreached bool   `json:"sla_breached"`
}

func (s *Service) overviewFor(ctx context.Context, site string, loc *time.Location) (liveOverview, error) {
	st := s.currentStore()
	if st == nil {
		return liveOverview{}, s.notConnected()
	}
	now := time.Now()
	y, m, d := now.In(loc).Date()
	o, err := st.Overview(ctx, site, time.Date(y, m, d, 0, 0, 0, 0, loc), now)
	if err != nil {
		return liveOverview{}, err
	}
	lo := liveOverview{Overview: o, TZ: loc.String()}
	if l := s.Loader(); l != nil {
		st := l.Status()
		lo.Pipeline = &st
	}
	return lo, nil
}

// liveOverview is what /overview and /ws/analytics send.
type liveOverview struct {
	Overview
	TZ       string        `json:"tz"`
	Pipeline *LoaderStatus `json:"pipeline,omitempty"`
}

func locationParam(c interface {
	Query(string, ...string) string
}) (*time.Location, error) {
	tz := c.Query("tz", "UTC")
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return nil, fmt.Errorf("tz %q is not an IANA time zone", tz)
	}
	return loc, nil
}

func (s *Service) overview(c *fiber.Ctx) error {
	loc, err := locationParam(c)
	if err != nil {
		return badRequest(c, err)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.QueryTimeout)
	defer cancel()
	o, err := s.overviewIn(ctx, c.Query("site"), siteScope(c), loc)
	if err != nil {
		return s.storeError(c, "overview", err)
	}
	return c.JSON(o)
}

// pipelineTimeout bounds /api/analytics/pipeline's readiness check.
const pipelineTimeout = 2 * time.Second

func (s *Service) pipeline(c *fiber.Ctx) error {
	out := fiber.Map{"store": s.cfg.StoreName}
	if st := s.currentStore(); st != nil {
		out["store"] = st.Backend()
	}
	if l := s.Loader(); l != nil {
		out["loader"] = l.Status()
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), pipelineTimeout)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		out["ready"], out["error"] = false, err.Error()
	} else {
		out["ready"] = true
	}
	return c.JSON(out)
}
