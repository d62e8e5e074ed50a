package analytics

import (
	"errors"
	"fmt"
	"time"
)

// Bucket is the width of a time series step in the viewer's time zone.
type Bucket string

// Buckets. BucketNone gives one total point for the whole range.
const (
	BucketNone Bucket = ""
	BucketHour Bucket = "hour"
	BucketDay  Bucket = "day"
	BucketWeek Bucket = "week"
)

// Dimension is what a report can be split or filtered by.
type Dimension string

// Dimensions.
const (
	DimNone    Dimension = ""
	DimSite    Dimension = "site"
	DimTeam    Dimension = "team"
	DimAgent   Dimension = "agent"
	DimChannel Dimension = "channel"
)

// Clock selects calendar or business-hours durations.
type Clock string

// Clocks.
const (
	ClockCalendar Clock = "calendar"
	ClockBusiness Clock = "business"
)

// Filter narrows a query; empty fields match everything. Hours is "" (all),
// "in" (started inside the site's business hours) or "out".
type Filter struct {
	SiteID  string `json:"site,omitempty"`
	TeamID  string `json:"team,omitempty"`
	AgentID string `json:"agent,omitempty"`
	Channel string `json:"channel,omitempty"`
	Hours   string `json:"business_hours,omitempty"`
	// Sites limits every query to these sites (nil: every site): the
	// sites of a scoped staff member. Never empty (siteGuard refuses).
	Sites []string `json:"-"`
}

// Query selects conversations started in [From, To) and how to group them.
type Query struct {
	From, To time.Time
	Bucket   Bucket
	Location *time.Location
	Filter   Filter
	Split    Dimension
	Clock    Clock
	// Now decides which waits have passed the missed threshold; zero = time.Now().
	Now time.Time
}

// maxBuckets bounds a time series so one request cannot ask for millions of points.
const maxBuckets = 5000

// Validate checks the query and fills defaults.
func (q *Query) Validate() error {
	if q.From.IsZero() || q.To.IsZero() {
		return errors.New("from and to are required")
	}
	if !q.To.After(q.From) {
		return fmt.Errorf("to (%s) must be after from (%s)", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	}
	if q.Location == nil {
		q.Location = time.UTC
	}
	if q.Clock == "" {
		q.Clock = ClockCalendar
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	switch q.Bucket {
	case BucketNone, BucketHour, BucketDay, BucketWeek:
	default:
		return fmt.Errorf("bucket %q is not hour, day or week", q.Bucket)
	}
	if w := bucketWidth(q.Bucket); w > 0 && q.To.Sub(q.From)/w > maxBuckets {
		return fmt.Errorf("range %s..%s has more than %d %s buckets", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), maxBuckets, q.Bucket)
	}
	switch q.Split {
	case DimNone, DimSite, DimTeam, DimAgent, DimChannel:
	default:
		return fmt.Errorf("split %q is not site, team, agent or channel", q.Split)
	}
	switch q.Clock {
	case ClockCalendar, ClockBusiness:
	default:
		return fmt.Errorf("clock %q is not calendar or business", q.Clock)
	}
	switch q.Filter.Hours {
	case "", "in", "out":
	default:
		return fmt.Errorf("business_hours %q is not in or out", q.Filter.Hours)
	}
	return nil
}

func bucketWidth(b Bucket) time.Duration {
	switch b {
	case BucketHour:
		return time.Hour
	case BucketDay:
		return 24 * time.Hour
	case BucketWeek:
		return 7 * 24 * time.Hour
	}
	return 0
}

// zoneSpan is a stretch of time with one UTC offset: instants before
// Until (Unix seconds) have Offset seconds; the last span has Until = max.
type zoneSpan struct {
	Until  int64
	Offset int64
}

// zoneSpans lists the offsets of loc over [from, to]. Both stores place a
// moment into its bucket by adding its span's offset (the wall clock) and
// truncating, so buckets are local wall-clock hours, days and Monday weeks.
func zoneSpans(loc *time.Location, from, to time.Time) []zoneSpan {
	var spans []zoneSpan
	_, off := from.In(loc).Zone()
	t := from
	for t.Before(to) {
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			break
		}
		spans = append(spans, zoneSpan{Until: end.Unix(), Offset: int64(off)})
		_, off = end.In(loc).Zone()
		t = end
	}
	return append(spans, zoneSpan{Until: 1<<62 - 1, Offset: int64(off)})
}

// offsetAt returns the offset in seconds for Unix second s.
func offsetAt(spans []zoneSpan, s int64) int64 {
	for _, z := range spans {
		if s < z.Until {
			return z.Offset
		}
	}
	return spans[len(spans)-1].Offset
}

// bucketOf returns the bucket key of a moment: the wall-clock start of its
// bucket as seconds since 1970-01-01T00:00 local (not an instant).
func bucketOf(b Bucket, spans []zoneSpan, ms int64) int64 {
	s := floorDiv(ms, 1000)
	local := s + offsetAt(spans, s)
	switch b {
	case BucketHour:
		return floorDiv(local, 3600) * 3600
	case BucketDay:
		return floorDiv(local, 86400) * 86400
	case BucketWeek:
		days := floorDiv(local, 86400)
		// 1970-01-01 was a Thursday; Monday-based weeks start 3 days earlier.
		return (floorDiv(days+3, 7)*7 - 3) * 86400
	}
	return 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// bucketLabel turns a bucket key back into its local start, e.g.
// "2024-03-31T00:00:00+01:00".
func bucketLabel(key int64, b Bucket, loc *time.Location) string {
	if b == BucketNone {
		return ""
	}
	w := time.Unix(key, 0).UTC()
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), 0, 0, 0, loc)
	return t.Format(time.RFC3339)
}
