package analytics

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones work on machines without a zoneinfo database
)

// Span is one opening of a weekly schedule in local wall-clock minutes
// after midnight. Close <= Open means the span runs past midnight into the
// next day (22:00–02:00 is Open 1320, Close 120).
type Span struct {
	Open  int `json:"open"`
	Close int `json:"close"`
}

// BusinessHours is a site's weekly schedule in its time zone. Days is
// indexed by time.Weekday (0 = Sunday); a span belongs to the day it opens.
type BusinessHours struct {
	TZ   string    `json:"tz"`
	Days [7][]Span `json:"days"`
}

// ParseSpan reads "HH:MM-HH:MM".
func ParseSpan(s string) (Span, error) {
	open, close, ok := strings.Cut(s, "-")
	if !ok {
		return Span{}, fmt.Errorf("span %q: want HH:MM-HH:MM", s)
	}
	o, err := parseClock(open)
	if err != nil {
		return Span{}, fmt.Errorf("span %q: %w", s, err)
	}
	c, err := parseClock(close)
	if err != nil {
		return Span{}, fmt.Errorf("span %q: %w", s, err)
	}
	return Span{Open: o, Close: c}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	return hh*60 + mm, nil
}

// clock is a schedule compiled against its location.
type clock struct {
	loc  *time.Location
	days [7][]Span
}

func compileHours(h BusinessHours) (*clock, error) {
	loc, err := time.LoadLocation(h.TZ)
	if err != nil {
		return nil, fmt.Errorf("business hours time zone %q: %w", h.TZ, err)
	}
	for d, spans := range h.Days {
		for _, s := range spans {
			if s.Open < 0 || s.Open > 1440 || s.Close < 0 || s.Close > 1440 {
				return nil, fmt.Errorf("business hours %s: span %d-%d out of range", time.Weekday(d), s.Open, s.Close)
			}
		}
	}
	return &clock{loc: loc, days: h.Days}, nil
}

// intervals returns the open intervals (UTC instants) that overlap
// [from, to), sorted and merged. Local times that do not exist (spring
// forward) are normalised by time.Date; an interval that starts the day
// before can reach into the range, so the scan starts one day early.
func (c *clock) intervals(from, to time.Time) [][2]time.Time {
	var out [][2]time.Time
	lf := from.In(c.loc)
	day := time.Date(lf.Year(), lf.Month(), lf.Day()-1, 0, 0, 0, 0, c.loc)
	for !day.After(to) {
		for _, s := range c.days[day.Weekday()] {
			closeMin, closeDay := s.Close, 0
			if s.Close <= s.Open {
				closeDay = 1
			}
			a := time.Date(day.Year(), day.Month(), day.Day(), 0, s.Open, 0, 0, c.loc)
			b := time.Date(day.Year(), day.Month(), day.Day()+closeDay, 0, closeMin, 0, 0, c.loc)
			if !b.After(a) || !b.After(from) || !a.Before(to) {
				continue
			}
			out = append(out, [2]time.Time{a, b})
		}
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, c.loc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0].Before(out[j][0]) })
	merged := out[:0]
	for _, iv := range out {
		if n := len(merged); n > 0 && !iv[0].After(merged[n-1][1]) {
			if iv[1].After(merged[n-1][1]) {
				merged[n-1][1] = iv[1]
			}
			continue
		}
		merged = append(merged, iv)
	}
	return merged
}

// between returns the business time in [from, to) in milliseconds.
func (c *clock) between(fromMs, toMs int64) int64 {
	if c == nil {
		return toMs - fromMs
	}
	if toMs <= fromMs {
		return 0
	}
	from, to := time.UnixMilli(fromMs), time.UnixMilli(toMs)
	var total time.Duration
	for _, iv := range c.intervals(from, to) {
		a, b := iv[0], iv[1]
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			total += b.Sub(a)
		}
	}
	return total.Milliseconds()
}

// open reports whether the instant is inside business hours.
func (c *clock) open(atMs int64) bool {
	if c == nil {
		return true
	}
	at := time.UnixMilli(atMs)
	return len(c.intervals(at, at.Add(time.Millisecond))) > 0
}

// deadline returns the instant (ms) at which durMs of business time have
// passed since fromMs, or 0 if that is more than a year of calendar time
// away (a schedule with almost no hours).
func (c *clock) deadline(fromMs, durMs int64) int64 {
	if c == nil {
		return fromMs + durMs
	}
	if durMs <= 0 {
		return fromMs
	}
	from := time.UnixMilli(fromMs)
	left := time.Duration(durMs) * time.Millisecond
	const window = 8 * 24 * time.Hour
	for start := from; start.Sub(from) < 366*24*time.Hour; start = start.Add(window) {
		end := start.Add(window)
		for _, iv := range c.intervals(start, end) {
			a, b := iv[0], iv[1]
			if a.Before(start) {
				a = start
			}
			if b.After(end) {
				b = end
			}
			if !b.After(a) {
				continue
			}
			if d := b.Sub(a); d >= left {
				return a.Add(left).UnixMilli()
			} else {
				left -= d
			}
		}
	}
	return 0
}
