package analytics

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// Mount registers the analytics routes; every one requires the supervisor
// role (admins hold it too).
func (s *Service) Mount(r fiber.Router) {
	g := r.Group("/api/analytics", s.cfg.Guard.Require(access.Supervisor))
	g.Get("/report", s.queryHandler("report", s.report))
	g.Get("/conversations", s.conversations)
	g.Get("/export.csv", s.export)
	g.Get("/overview", s.overview)
	g.Get("/moderation", s.queryHandler("moderation", s.moderation))
	g.Get("/agents", s.queryHandler("agent load", s.agents))
	g.Get("/pipeline", s.pipeline)
	r.Get("/ws/analytics", s.cfg.Guard.Require(access.Supervisor), s.checkOrigin, websocket.New(s.live))
}

func badRequest(c *fiber.Ctx, err error) error {
	return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
}

// storeError answers 503 for an unavailable store and 500 otherwise.
func (s *Service) storeError(c *fiber.Ctx, op string, err error) error {
	s.log.Error("analytics query failed", "op", op, "err", err)
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"error": "analytics store unavailable, try again shortly"})
	}
	return c.Status(fiber.StatusInternalServerError).JSON(fiber.Map{"error": op + " failed"})
}

// acquire bounds concurrent heavy queries; it waits up to the query timeout.
func (s *Service) acquire(c *fiber.Ctx) (context.Context, func(), error) {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.QueryTimeout)
	select {
	case s.sem <- struct{}{}:
		return ctx, func() { <-s.sem; cancel() }, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, c.Status(fiber.StatusTooManyRequests).JSON(fiber.Map{"error": "too many analytics queries at once"})
	}
}

// queryHandler answers a range query: it parses the query, takes one of
// the heavy-query slots, runs answer within the query timeout and writes
// its result as JSON. what names the query in errors.
func (s *Service) queryHandler(what string, answer func(ctx context.Context, q Query) (any, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q, err := queryFromRequest(c, time.Now())
		if err != nil {
			return badRequest(c, err)
		}
		ctx, release, err := s.acquire(c)
		if ctx == nil {
			return err
		}
		defer release()
		out, err := answer(ctx, q)
		if err != nil {
			return s.storeError(c, what, err)
		}
		return c.JSON(out)
	}
}

func (s *Service) report(ctx context.Context, q Query) (any, error) {
	return s.cfg.Store.Report(ctx, q)
}

func (s *Service) moderation(ctx context.Context, q Query) (any, error) {
	return s.cfg.Store.Moderation(ctx, q)
}

// agents answers agent load with each agent's online and away time.
func (s *Service) agents(ctx context.Context, q Query) (any, error) {
	as, err := s.cfg.Store.Assignments(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("agent load: %w", err)
	}
	pe, err := s.cfg.Store.PresenceEvents(ctx, q.From, q.To)
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
		names := make([]string, 0, len(drillMetrics))
		for k := range drillMetrics {
			if k != "" {
				names = append(names, k)
			}
		}
		return Drill{}, fmt.Errorf("metric %q is not one of %s", d.Metric, strings.Join(sortedStrings(names), ", "))
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
	ctx, release, err := s.acquire(c)
	if ctx == nil {
		return err
	}
	defer release()
	rows, err := s.cfg.Store.Conversations(ctx, q, d)
	if err != nil {
		return s.storeError(c, "drill-down", err)
	}
	now := q.Now.UnixMilli()
	out := make([]drillRow, len(rows))
	for i := range rows {
		out[i] = drillRow{ConversationFacts: rows[i], Missed: rows[i].Missed(now)}
	}
	return c.JSON(fiber.Map{"conversations": out, "limit": d.Limit, "truncated": len(rows) == d.Limit})
}

type drillRow struct {
	ConversationFacts
	Missed bool `json:"missed"`
}

// maxExportRows bounds one CSV export.
const maxExportRows = 100000

var csvHeader = []string{
	"site_id", "conversation_id", "channel", "team_id", "agent_id", "started_at", "started_in_hours",
	"first_response_ms", "first_response_bh_ms", "replies", "reply_median_ms", "queue_waits", "queue_wait_total_ms",
	"resolved_at", "resolution_ms", "resolution_bh_ms", "reopens", "missed", "csat",
	"msgs_visitor", "msgs_agent", "msgs_bot", "notes",
}

// export writes one CSV row per conversation of the query (and drill point, if given).
func (s *Service) export(c *fiber.Ctx) error {
	q, err := queryFromRequest(c, time.Now())
	if err != nil {
		return badRequest(c, err)
	}
	d, err := drillFromRequest(c, maxExportRows)
	if err != nil {
		return badRequest(c, err)
	}
	if c.Query("limit") == "" {
		d.Limit = maxExportRows
	}
	ctx, release, err := s.acquire(c)
	if ctx == nil {
		return err
	}
	defer release()
	rows, err := s.cfg.Store.Conversations(ctx, q, d)
	if err != nil {
		return s.storeError(c, "export", err)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="parley-conversations.csv"`)
	w := csv.NewWriter(c.Response().BodyWriter())
	if err := w.Write(csvHeader); err != nil {
		return err
	}
	now := q.Now.UnixMilli()
	ts := func(ms int64) string {
		if ms == 0 {
			return ""
		}
		return time.UnixMilli(ms).In(q.Location).Format(time.RFC3339)
	}
	dur := func(ms int64) string {
		if ms < 0 {
			return ""
		}
		return strconv.FormatInt(ms, 10)
	}
	for _, f := range rows {
		reply, wait := f.ReplyMs, f.QueueWaitMs
		if q.Clock == ClockBusiness {
			reply, wait = f.ReplyBhMs, f.QueueWaitBhMs
		}
		median := ""
		if st := statsOf(reply); st.count > 0 {
			median = strconv.FormatInt(st.p50, 10)
		}
		var waitTotal int64
		for _, v := range wait {
			waitTotal += v
		}
		csat := ""
		if f.CSAT > 0 {
			csat = strconv.FormatInt(f.CSAT, 10)
		}
		rec := []string{
			csvSafe(f.SiteID), csvSafe(f.ConversationID), csvSafe(f.Channel), csvSafe(f.TeamID), csvSafe(f.AgentID),
			ts(f.StartedAt), strconv.FormatBool(f.StartedInHours),
			dur(f.FirstResponseMs), dur(f.FirstResponseBhMs), strconv.Itoa(len(reply)), median, strconv.Itoa(len(wait)), strconv.FormatInt(waitTotal, 10),
			ts(f.ResolvedAt), dur(f.ResolutionMs), dur(f.ResolutionBhMs), strconv.FormatInt(f.Reopens, 10),
			strconv.FormatBool(f.Missed(now)), csat,
			strconv.FormatInt(f.MsgsVisitor, 10), strconv.FormatInt(f.MsgsAgent, 10), strconv.FormatInt(f.MsgsBot, 10), strconv.FormatInt(f.Notes, 10),
		}
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// csvSafe defuses spreadsheet formulas in user-controlled ids.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (s *Service) overviewFor(ctx context.Context, site string, loc *time.Location) (liveOverview, error) {
	now := time.Now()
	y, m, d := now.In(loc).Date()
	o, err := s.cfg.Store.Overview(ctx, site, time.Date(y, m, d, 0, 0, 0, 0, loc), now)
	if err != nil {
		return liveOverview{}, err
	}
	lo := liveOverview{Overview: o, TZ: loc.String()}
	if s.loader != nil {
		st := s.loader.Status()
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
	o, err := s.overviewFor(ctx, c.Query("site"), loc)
	if err != nil {
		return s.storeError(c, "overview", err)
	}
	return c.JSON(o)
}

func (s *Service) pipeline(c *fiber.Ctx) error {
	out := fiber.Map{"store": s.cfg.Store.Backend()}
	if s.loader != nil {
		out["loader"] = s.loader.Status()
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		out["ready"], out["error"] = false, err.Error()
	} else {
		out["ready"] = true
	}
	return c.JSON(out)
}
