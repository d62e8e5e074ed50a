package analytics

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// defaultRange is the report range when from/to are omitted.
const defaultRange = 7 * 24 * time.Hour

// parseTime reads RFC 3339 or a date (YYYY-MM-DD, midnight in loc).
func parseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
}

// queryFromRequest reads a Query from the URL parameters shared by every
// analytics endpoint: from, to, tz, bucket, split, clock, site, team,
// agent, channel, business_hours.
func queryFromRequest(c *fiber.Ctx, now time.Time) (Query, error) {
	q := Query{Now: now}
	tz := c.Query("tz", "UTC")
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return q, fmt.Errorf("tz %q is not an IANA time zone", tz)
	}
	q.Location = loc
	q.To = now
	if s := c.Query("to"); s != "" {
		if q.To, err = parseTime(s, loc); err != nil {
			return q, fmt.Errorf("to: %w", err)
		}
	}
	q.From = q.To.Add(-defaultRange)
	if s := c.Query("from"); s != "" {
		if q.From, err = parseTime(s, loc); err != nil {
			return q, fmt.Errorf("from: %w", err)
		}
	}
	q.Bucket = Bucket(c.Query("bucket"))
	q.Split = Dimension(c.Query("split"))
	q.Clock = Clock(c.Query("clock"))
	q.Filter = Filter{
		SiteID: c.Query("site"), TeamID: c.Query("team"), AgentID: c.Query("agent"),
		Channel: c.Query("channel"), Hours: c.Query("business_hours"), Sites: siteScope(c),
	}
	for name, v := range map[string]string{"site": q.Filter.SiteID, "team": q.Filter.TeamID, "agent": q.Filter.AgentID, "channel": q.Filter.Channel} {
		if len(v) > 200 {
			return q, fmt.Errorf("%s is longer than 200 bytes", name)
		}
	}
	if err := q.Validate(); err != nil {
		return q, err
	}
	return q, nil
}

// intParam reads a bounded integer parameter.
func intParam(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer between %d and %d", name, lo, hi)
	}
	return n, nil
}
