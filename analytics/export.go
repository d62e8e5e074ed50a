package analytics

import (
	"context"
	"encoding/csv"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// maxExportRows bounds one CSV export.
const maxExportRows = 100000

// csvHeader is the export's header; "{clock}" becomes calendar or
// business after the query's clock, so a column always says which
// durations it holds.
func csvHeader(c Clock) []string {
	h := []string{
		"site_id", "site_name", "conversation_id", "channel", "visitor_id", "team_id", "team_name", "agent_id", "agent_name",
		"started_at", "started_in_hours", "first_reply_at", "visitor_left_at",
		"first_response_{clock}_ms", "replies", "reply_median_{clock}_ms", "queue_waits", "queue_wait_total_{clock}_ms",
		"first_resolved_at", "resolution_first_{clock}_ms", "last_resolved_at", "resolution_last_{clock}_ms", "closed_by", "reopens",
		"missed", "miss_reason", "answered_late", "first_response_target_ms", "first_response_sla",
		"csat", "csat_at", "csat_comment", "msgs_visitor", "msgs_agent", "msgs_bot", "notes", "engagements", "transfers",
	}
	for i := range h {
		h[i] = strings.ReplaceAll(h[i], "{clock}", string(c))
	}
	return h
}

// names maps ids to display names for the export.
type names struct {
	sites, agents, teams map[string]string
}

// exportNames reads the site names from the site profiles and the staff
// and team names from the access store. A failure leaves names empty (the
// ids are there) and is logged.
func (s *Service) exportNames(ctx context.Context, st Store) names {
	n := names{sites: map[string]string{}, agents: map[string]string{}, teams: map[string]string{}}
	if ps, err := st.SiteProfiles(ctx); err == nil {
		for _, p := range ps {
			n.sites[p.SiteID] = p.State.Name
		}
	} else {
		s.log.Warn("export without site names", "err", err)
	}
	as := s.cfg.Guard.Directory()
	if us, err := as.Users(ctx); err == nil {
		for _, u := range us {
			n.agents[u.ID] = u.Name
		}
	} else {
		s.log.Warn("export without staff names", "err", err)
	}
	if ts, err := as.Teams(ctx); err == nil {
		for _, t := range ts {
			n.teams[t.ID] = t.Name
		}
	} else {
		s.log.Warn("export without team names", "err", err)
	}
	return n
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
	ctx, st, release, err := s.acquire(c)
	if ctx == nil {
		return err
	}
	defer release()
	rows, err := st.Conversations(ctx, q, d)
	if err != nil {
		return s.storeError(c, "export", err)
	}
	n := s.exportNames(ctx, st)
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="parley-conversations.csv"`)
	w := csv.NewWriter(c.Response().BodyWriter())
	if err := w.Write(csvHeader(q.Clock)); err != nil {
		return err
	}
	for i := range rows {
		if err := w.Write(csvRecord(&rows[i], q, n)); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// csvRecord is one conversation's export row (csvHeader's columns).
func csvRecord(f *ConversationFacts, q Query, n names) []string {
	ts := func(ms int64) string {
		if ms == 0 {
			return ""
		}
		return time.UnixMilli(ms).In(q.Location).Format("2006-01-02T15:04:05.000Z07:00")
	}
	dur := func(ms int64) string {
		if ms < 0 {
			return ""
		}
		return strconv.FormatInt(ms, 10)
	}
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	bh := q.business()
	fr, reply, wait, res, resLast := f.FirstResponseMs, f.ReplyMs, f.QueueWaitMs, f.ResolutionMs, f.ResolutionLastMs
	if bh {
		fr, reply, wait, res, resLast = f.FirstResponseBhMs, f.ReplyBhMs, f.QueueWaitBhMs, f.ResolutionBhMs, f.ResolutionLastBhMs
	}
	median := ""
	if st := statsOf(reply); st.count > 0 {
		median = num(st.p50)
	}
	var waitTotal int64
	for _, v := range wait {
		waitTotal += v
	}
	csat := ""
	if f.CSAT > 0 {
		csat = num(f.CSAT)
	}
	code, deadline := f.sla(bh)
	sla := ""
	switch {
	case code == slaMet:
		sla = "met"
	case frBreached(code, deadline, q.Now.UnixMilli()):
		sla = "breached"
	}
	var transfers int64
	for _, e := range f.EngEnd {
		if e == engEndTransferred {
			transfers++
		}
	}
	return []string{
		csvSafe(f.SiteID), csvSafe(n.sites[f.SiteID]), csvSafe(f.ConversationID), csvSafe(f.Channel), csvSafe(f.VisitorID),
		csvSafe(f.TeamID), csvSafe(n.teams[f.TeamID]), csvSafe(f.AgentID), csvSafe(n.agents[f.AgentID]),
		ts(f.StartedAt), strconv.FormatBool(f.StartedInHours), ts(f.FirstReplyAt), ts(f.LeftAt),
		dur(fr), strconv.Itoa(len(reply)), median, strconv.Itoa(len(wait)), num(waitTotal),
		ts(f.ResolvedAt), dur(res), ts(f.LastResolvedAt), dur(resLast), csvSafe(f.CloseReason), num(f.Reopens),
		strconv.FormatBool(f.Missed), f.MissReason, strconv.FormatBool(code == slaLate), num(f.FRTargetMs), sla,
		csat, ts(f.CSATAt), csvSafe(f.CSATComment),
		num(f.MsgsVisitor), num(f.MsgsAgent), num(f.MsgsBot), num(f.Notes), strconv.Itoa(len(f.AssignAgents)), num(transfers),
	}
}

// csvSafe defuses spreadsheet formulas in user-controlled text.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
