package analytics

import (
	"sort"
)

// AgentLoad is one agent's workload over a range.
type AgentLoad struct {
	AgentID string `json:"agent_id"`
	// Handled counts distinct conversations the agent owned at some moment of the range.
	Handled int64 `json:"handled"`
	// MaxConcurrent is the most conversations owned at once.
	MaxConcurrent int64 `json:"max_concurrent"`
	// AvgConcurrent is the time-weighted mean of owned conversations over the range.
	AvgConcurrent float64 `json:"avg_concurrent"`
	// OnlineMs and AwayMs are the milliseconds of the range (up to now)
	// the agent was online or away, from agent.presence events.
	OnlineMs int64 `json:"online_ms"`
	AwayMs   int64 `json:"away_ms"`
}

// withPresence adds online and away time to loads. Agents with presence
// time but no conversations are added too, unless the filter narrows by
// site, team, channel or hours (presence has none of these, so only agents
// the filter's conversations name are kept); an agent filter keeps that agent.
func withPresence(loads []AgentLoad, pt map[string]PresenceTime, flt Filter) []AgentLoad {
	have := make(map[string]bool, len(loads))
	for i := range loads {
		have[loads[i].AgentID] = true
		p := pt[loads[i].AgentID]
		loads[i].OnlineMs, loads[i].AwayMs = p.OnlineMs, p.AwayMs
	}
	if flt.SiteID != "" || flt.Sites != nil || flt.TeamID != "" || flt.Channel != "" || flt.Hours != "" {
		return loads
	}
	added := false
	for agent, p := range pt {
		if have[agent] || p.OnlineMs+p.AwayMs == 0 || flt.AgentID != "" && agent != flt.AgentID {
			continue
		}
		loads = append(loads, AgentLoad{AgentID: agent, OnlineMs: p.OnlineMs, AwayMs: p.AwayMs})
		added = true
	}
	if added {
		sort.Slice(loads, func(i, j int) bool { return loads[i].AgentID < loads[j].AgentID })
	}
	return loads
}

// agentLoad sweeps ownership intervals clipped to [from, to); an interval
// still open (To 0) runs until now.
func agentLoad(assign []Assignment, from, to, now int64) []AgentLoad {
	type edge struct {
		at    int64
		delta int64
	}
	edges := map[string][]edge{}
	convs := map[string]map[string]bool{}
	for _, a := range assign {
		end := a.To
		if end == 0 {
			end = now
		}
		s, e := max(a.From, from), min(end, to)
		if e <= s {
			continue
		}
		edges[a.AgentID] = append(edges[a.AgentID], edge{s, 1}, edge{e, -1})
		if convs[a.AgentID] == nil {
			convs[a.AgentID] = map[string]bool{}
		}
		convs[a.AgentID][a.ConversationID] = true
	}
	out := []AgentLoad{}
	for agent, es := range edges {
		// Ends before starts at the same instant: back-to-back intervals do not overlap.
		sort.Slice(es, func(i, j int) bool {
			if es[i].at != es[j].at {
				return es[i].at < es[j].at
			}
			return es[i].delta < es[j].delta
		})
		var cur, peak int64
		var area float64
		prev := from
		for _, e := range es {
			area += float64(cur) * float64(e.at-prev)
			prev = e.at
			cur += e.delta
			peak = max(peak, cur)
		}
		l := AgentLoad{AgentID: agent, Handled: int64(len(convs[agent])), MaxConcurrent: peak}
		if to > from {
			l.AvgConcurrent = area / float64(to-from)
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out
}
