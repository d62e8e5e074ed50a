package chatsvc

import (
	"fmt"
	"time"

	"github.com/parleychat/parley/ingest"
)

// presenceSite is the site_id of agent.presence events: an agent's
// presence holds for every site they serve (docs/events.md).
const presenceSite = "*"

// presenceChange is one change of an agent's effective presence, taken
// under the hub's lock so At orders one agent's changes as the hub saw them.
type presenceChange struct {
	AgentID, Status, Previous string
	At                        time.Time
	// Decided says a cluster's leader decided the change from what it
	// read: it is written only if the recorded status is still Previous,
	// so a change happens once even when leadership moves meanwhile.
	Decided bool
}

// presenceOp writes an agent.presence event to the outbox in the writer's
// batch transaction; when the agent went offline, their conversations
// return to the queue in the same transaction.
func (s *Service) presenceOp(ch presenceChange) func(t *wtx) error {
	return func(t *wtx) error {
		prev, err := t.tx.SetAgentStatus(t.ctx, ch.AgentID, ch.Status, ch.At)
		if err != nil {
			return err
		}
		if ch.Decided && prev != ch.Previous {
			return nil // another leader recorded a change meanwhile
		}
		e, err := ingest.New(ingest.AgentPresence, presenceSite, ingest.AgentKey(ch.AgentID),
			ingest.Actor{Role: ingest.RoleAgent, ID: ch.AgentID}, ch.At,
			ingest.AgentPresencePayload{Status: ch.Status, Previous: ch.Previous})
		if err != nil {
			return fmt.Errorf("build presence event of agent %s: %w", ch.AgentID, err)
		}
		if err := t.emitEvent(e); err != nil {
			return fmt.Errorf("outbox presence of agent %s: %w", ch.AgentID, err)
		}
		if ch.Status == StatusOffline {
			return s.agentOfflineOp(ch.AgentID)(t)
		}
		return nil
	}
}
