package moderation

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// mountTeaching registers the routes moderators teach the engine with
// (moderator role; POSTs need the CSRF header; a moderator sees and
// changes only the sites they moderate):
//
//	POST /api/moderation/items/:id/lists   {list: "allow"|"block", match, reason?}
//	GET  /api/moderation/labels?site_id=&since=&until=&after=&limit=   JSON lines for the trainer
//	GET  /api/moderation/precision?site_id=&days=30
func (s *Service) mountTeaching(g fiber.Router, mod fiber.Handler) {
	g.Post("/items/:id/lists", mod, s.scoped(s.apiTeachList))
	g.Get("/labels", mod, s.apiLabels)
	g.Get("/precision", mod, s.apiPrecision)
}

func (s *Service) apiTeachList(c *fiber.Ctx) error {
	var req ListChange
	if err := decodeBody(c, &req); err != nil {
		return s.answer(c, err)
	}
	u, _ := access.UserOf(c)
	res, err := s.TeachList(c.UserContext(), c.Params("id"), u, req)
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(res)
}

// queryTime reads an RFC 3339 time or a Unix time in milliseconds.
func queryTime(c *fiber.Ctx, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Time{}, badInput("%s must be an RFC 3339 time or Unix milliseconds", name)
}

// exportedLabel is one line of the label export: the trainer reads text,
// label and expect (moderation/cmd/train -labelled).
type exportedLabel struct {
	ID         string    `json:"id"`
	SiteID     string    `json:"site_id"`
	Text       string    `json:"text"`
	Label      string    `json:"label"`
	Expect     string    `json:"expect"`
	Decision   string    `json:"decision"`
	Action     string    `json:"action"`
	Categories []string  `json:"categories"`
	Sources    []string  `json:"sources"`
	DecidedAt  time.Time `json:"decided_at"`
}

// apiLabels exports labels, oldest first, as JSON lines. When the page is
// full, the X-Next-After header holds the cursor of the next page
// (after=<unix ms>:<item id>).
func (s *Service) apiLabels(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	f := LabelFilter{SiteID: c.Query("site_id"), Sites: u.SiteScope()}
	if offSite(c, f.SiteID) {
		return siteForbidden(c)
	}
	var err error
	if f.Since, err = queryTime(c, "since"); err != nil {
		return s.answer(c, err)
	}
	if f.Until, err = queryTime(c, "until"); err != nil {
		return s.answer(c, err)
	}
	if after := c.Query("after"); after != "" {
		at, id, ok := strings.Cut(after, ":")
		n, perr := strconv.ParseInt(at, 10, 64)
		if !ok || perr != nil || n < 0 || id == "" {
			return fail(c, fiber.StatusBadRequest, "after must be <unix ms>:<item id>, as X-Next-After gave it")
		}
		f.AfterAt, f.AfterID = time.UnixMilli(n).UTC(), id
	}
	if f.Limit, err = queryInt(c, "limit", 10_000, 1, MaxLabelExport); err != nil {
		return s.answer(c, err)
	}
	labels, err := s.store.Labels(c.UserContext(), f)
	if err != nil {
		return s.answer(c, err)
	}
	if len(labels) == f.Limit {
		last := labels[len(labels)-1]
		c.Set("X-Next-After", fmt.Sprintf("%d:%s", last.DecidedAt.UnixMilli(), last.ItemID))
	}
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="parley-labels.jsonl"`)
	w := bufio.NewWriter(c.Response().BodyWriter())
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, l := range labels {
		expect := ActionBlock
		if l.Label == LabelClean {
			expect = ActionAllow
		}
		if err := enc.Encode(exportedLabel{ID: l.ItemID, SiteID: l.SiteID, Text: l.Text, Label: l.Label, Expect: expect,
			Decision: l.Decision, Action: l.Action, Categories: l.Categories, Sources: l.Sources, DecidedAt: l.DecidedAt}); err != nil {
			return s.answer(c, fmt.Errorf("encode label %s: %w", l.ItemID, err))
		}
	}
	if err := w.Flush(); err != nil {
		return s.answer(c, fmt.Errorf("write labels: %w", err))
	}
	return nil
}

// apiPrecision reports the share of queued items moderators removed, per
// site, over the last `days` days (30 by default).
func (s *Service) apiPrecision(c *fiber.Ctx) error {
	days, err := queryInt(c, "days", DefaultPrecisionDays, 1, MaxPrecisionDays)
	if err != nil {
		return s.answer(c, err)
	}
	since := time.Now().Add(-time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	u, _ := access.UserOf(c)
	f := LabelCountFilter{SiteID: c.Query("site_id"), Sites: u.SiteScope(), Since: since}
	if offSite(c, f.SiteID) {
		return siteForbidden(c)
	}
	sites, err := s.Precision(c.UserContext(), f)
	if err != nil {
		return s.answer(c, err)
	}
	return c.JSON(fiber.Map{"since": since, "days": days, "sites": sites})
}
