package bench

import (
	"fmt"
	"time"

	"github.com/parleychat/parley/ingest"
)

// genEvents builds n realistic chat events for one site: conversations
// of 10 events each (started, queued, assigned to agentID, six messages
// alternating visitor and agent, resolved), spread over the last hour.
// Every event is valid under ingest's contract; the site and the agent
// must exist, or the analytics loader holds or refuses the events.
func genEvents(siteID, agentID string, n int, now time.Time) ([]ingest.Event, error) {
	out := make([]ingest.Event, 0, n)
	base := now.Add(-time.Hour)
	for c := 0; len(out) < n; c++ {
		conv := ingest.NewID()
		visitor := ingest.Actor{Role: ingest.RoleVisitor, ID: fmt.Sprintf("v-%d", c)}
		agent := ingest.Actor{Role: ingest.RoleAgent, ID: agentID}
		system := ingest.Actor{Role: ingest.RoleSystem, ID: "bench"}
		at := base.Add(time.Duration(c%3600) * time.Second)
		steps := []struct {
			typ     ingest.Type
			actor   ingest.Actor
			payload any
		}{
			{ingest.ConversationStarted, visitor, &ingest.ConversationStartedPayload{Channel: ingest.ChannelWidget, VisitorID: visitor.ID, VisitorName: "Bench visitor"}},
			{ingest.ConversationQueued, system, &ingest.ConversationQueuedPayload{Reason: "new", Position: 1}},
			{ingest.ConversationAssigned, system, &ingest.ConversationAssignedPayload{AgentID: agent.ID, Reason: "auto"}},
		}
		for m := 0; m < 6; m++ {
			who := visitor
			if m%2 == 1 {
				who = agent
			}
			steps = append(steps, struct {
				typ     ingest.Type
				actor   ingest.Actor
				payload any
			}{ingest.MessageSent, who, &ingest.MessageSentPayload{
				MessageID: ingest.NewID(), Seq: int64(m + 1), Kind: ingest.KindText,
				Text: fmt.Sprintf("bench message %d of conversation %d, about an order that has not arrived yet", m, c),
			}})
		}
		steps = append(steps, struct {
			typ     ingest.Type
			actor   ingest.Actor
			payload any
		}{ingest.ConversationResolved, agent, &ingest.ConversationResolvedPayload{Reason: "agent"}})
		for i, s := range steps {
			if len(out) == n {
				break
			}
			ev, err := ingest.New(s.typ, siteID, conv, s.actor, at.Add(time.Duration(i)*5*time.Second), s.payload)
			if err != nil {
				return nil, fmt.Errorf("generate event %d: %w", len(out), err)
			}
			out = append(out, ev)
		}
	}
	return out, nil
}
