package analytics

import (
	"fmt"
	"sort"

	"github.com/parleychat/parley/ingest"
)

// PresenceTime is an agent's time online and away within a range.
type PresenceTime struct {
	OnlineMs int64
	AwayMs   int64
}

// presenceChange is one decoded agent.presence event.
type presenceChange struct {
	id      string
	agentID string
	status  string
	at      int64
}

// decodePresence turns stored agent.presence events into changes,
// dropping duplicates (ClickHouse may hold an event twice until a merge).
func decodePresence(events []ingest.Event) ([]presenceChange, error) {
	seen := make(map[string]bool, len(events))
	out := make([]presenceChange, 0, len(events))
	for _, e := range events {
		if e.Type != ingest.AgentPresence || seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		var p ingest.AgentPresencePayload
		if err := e.Into(&p); err != nil {
			return nil, fmt.Errorf("stored presence event %s: %w", e.ID, err)
		}
		out = append(out, presenceChange{id: e.ID, agentID: e.Actor.ID, status: p.Status, at: e.OccurredAt.UnixMilli()})
	}
	return out, nil
}

// presenceTime measures each agent's online and away time in [from, to),
// not beyond now. changes must hold each agent's last change before from
// (its state at from; none = offline) and every change in [from, to).
// A status lasts until the agent's next change: one agent's changes are
// ordered by time, then by event id (UUIDv7, so creation order).
func presenceTime(changes []presenceChange, from, to, now int64) map[string]PresenceTime {
	end := min(to, now)
	byAgent := map[string][]presenceChange{}
	for _, c := range changes {
		byAgent[c.agentID] = append(byAgent[c.agentID], c)
	}
	out := make(map[string]PresenceTime, len(byAgent))
	for agent, cs := range byAgent {
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].at != cs[j].at {
				return cs[i].at < cs[j].at
			}
			return cs[i].id < cs[j].id
		})
		var pt PresenceTime
		for i, c := range cs {
			next := end
			if i+1 < len(cs) {
				next = min(cs[i+1].at, end)
			}
			d := next - max(c.at, from)
			if d <= 0 {
				continue
			}
			switch c.status {
			case ingest.PresenceOnline:
				pt.OnlineMs += d
			case ingest.PresenceAway:
				pt.AwayMs += d
			}
		}
		out[agent] = pt
	}
	return out
}
