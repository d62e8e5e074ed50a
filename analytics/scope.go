package analytics

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// Supervisors are scoped to sites (access.User.Sites): admins see every
// site; anyone else's reports, drill-downs, exports, agent load and live
// overview cover their sites only (Filter.Sites), and naming another site
// is refused.

// siteGuard refuses a site parameter naming a site the user does not
// work on, and a scoped user who works on no site.
func siteGuard(c *fiber.Ctx) error {
	u, _ := access.UserOf(c)
	if site := c.Query("site"); site != "" && !u.OnSite(site) {
		return c.Status(fiber.StatusForbidden).JSON(fiber.Map{"error": "you do not work on site " + site})
	}
	if scope := u.SiteScope(); scope != nil && len(scope) == 0 {
		return c.Status(fiber.StatusForbidden).JSON(fiber.Map{"error": "you work on no site yet; ask an admin to add you to one"})
	}
	return c.Next()
}

// siteScope is the sites the request's user may see (nil: every site).
func siteScope(c *fiber.Ctx) []string {
	u, _ := access.UserOf(c)
	return u.SiteScope()
}

// overviewIn is the live overview of one site, or of every site in
// sites (nil: all), added up.
func (s *Service) overviewIn(ctx context.Context, site string, sites []string, loc *time.Location) (liveOverview, error) {
	if site != "" || sites == nil {
		return s.overviewFor(ctx, site, loc)
	}
	var sum liveOverview
	for i, one := range sites {
		o, err := s.overviewFor(ctx, one, loc)
		if err != nil {
			return liveOverview{}, err
		}
		if i == 0 {
			sum = o
			continue
		}
		sum.Open += o.Open
		sum.Waiting += o.Waiting
		sum.LongestWaitMs = max(sum.LongestWaitMs, o.LongestWaitMs)
		sum.NewToday += o.NewToday
		sum.OfflineToday += o.OfflineToday
		sum.MissedToday += o.MissedToday
		sum.LateToday += o.LateToday
		sum.SLAToday.add(o.SLAToday)
		c := &sum.CSATToday
		c.Rated += o.CSATToday.Rated
		c.Positive += o.CSATToday.Positive
		c.Offered += o.CSATToday.Offered
		c.Responses += o.CSATToday.Responses
		for k := range c.Ratings {
			c.Ratings[k] += o.CSATToday.Ratings[k]
		}
	}
	sum.SLAToday.finish()
	sum.CSATToday.finish()
	return sum, nil
}
