package analytics

import (
	"time"

	"github.com/parleychat/parley/ingest"
)

// overviewOf computes the live overview in Go from the facts of every
// open conversation and every conversation with an event since dayStart
// (SQLite answers with it; ClickHouse computes the same in SQL).
// Definitions: docs/metrics.md, "Live overview".
func overviewOf(facts []ConversationFacts, dayStart, now time.Time) Overview {
	o := Overview{At: now.UTC()}
	d, n := dayStart.UnixMilli(), now.UnixMilli()
	today := func(ms int64) bool { return ms >= d && ms <= n }
	var oldest int64
	for i := range facts {
		f := &facts[i]
		if f.StartedAt <= 0 {
			continue
		}
		if f.Open {
			o.Open++
			if f.WaitingSince > 0 {
				o.Waiting++
				if oldest == 0 || f.WaitingSince < oldest {
					oldest = f.WaitingSince
				}
			}
		}
		if f.Channel == ingest.ChannelOffline {
			if today(f.StartedAt) {
				o.OfflineToday++
			}
			continue
		}
		if today(f.StartedAt) {
			o.NewToday++
		}
		if f.Missed && today(f.MissAt) {
			o.MissedToday++
		}
		// Target outcomes count on the day they were decided.
		switch {
		case f.SLA == slaMet && today(f.FirstReplyAt):
			o.SLAToday.Met++
		case f.SLA == slaLate && today(f.FirstReplyAt):
			o.LateToday++
			o.SLAToday.Breached++
		case f.SLA == slaMissedLate && today(f.MissAt), f.SLA == slaWaiting && f.FRDeadline > 0 && today(f.FRDeadline):
			o.SLAToday.Breached++
		}
		if f.CSAT > 0 && today(f.CSATAt) {
			o.CSATToday.Rated++
			if f.CSAT >= 4 {
				o.CSATToday.Positive++
			}
			if f.CSAT <= 5 {
				o.CSATToday.Ratings[f.CSAT-1]++
			}
		}
		if today(f.SurveyAt) {
			o.CSATToday.Offered++
			if f.CSAT > 0 {
				o.CSATToday.Responses++
			}
		}
	}
	finishOverview(&o, oldest, n)
	return o
}

func finishOverview(o *Overview, oldestWait, now int64) {
	if oldestWait > 0 && o.Waiting > 0 {
		o.LongestWaitMs = max(0, now-oldestWait)
	}
	o.SLAToday.finish()
	o.CSATToday.finish()
}
