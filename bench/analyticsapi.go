package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// analyticsCounter counts the visitor messages of one site through the
// analytics query API (docs/metrics.md): GET /api/analytics/report with no
// bucket gives one total point whose messages.visitor counts the site's
// visitor text messages loaded so far.
type analyticsCounter struct {
	source string
	count  func(ctx context.Context) (int64, error)
}

type reportAnswer struct {
	Series []struct {
		Points []struct {
			Messages struct {
				Visitor int64 `json:"visitor"`
			} `json:"messages"`
		} `json:"points"`
	} `json:"series"`
}

// analyticsCounter builds the counter for siteID and checks it answers.
func (e *env) analyticsCounter(ctx context.Context, siteID string) (*analyticsCounter, error) {
	now := time.Now().UTC()
	q := url.Values{
		"site": {siteID},
		"from": {now.Add(-time.Hour).Format(time.RFC3339)},
		"to":   {now.Add(24 * time.Hour).Format(time.RFC3339)},
	}
	path := "/api/analytics/report?" + q.Encode()
	c := &analyticsCounter{
		source: "GET /api/analytics/report messages.visitor",
		count: func(ctx context.Context) (int64, error) {
			var r reportAnswer
			if err := e.admin.do(ctx, http.MethodGet, path, nil, &r); err != nil {
				return 0, err
			}
			if len(r.Series) == 0 || len(r.Series[0].Points) == 0 {
				return 0, errors.New("analytics report has no point")
			}
			return r.Series[0].Points[0].Messages.Visitor, nil
		},
	}
	if _, err := c.count(ctx); err != nil {
		return nil, fmt.Errorf("analytics query API: %w", err)
	}
	return c, nil
}
