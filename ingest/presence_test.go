package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAgentPresenceValidate(t *testing.T) {
	actor := Actor{Role: RoleAgent, ID: "u1"}
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	ok, err := New(AgentPresence, "*", AgentKey("u1"), actor, at, AgentPresencePayload{Status: PresenceAway, Previous: PresenceOnline})
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid presence rejected: %v", err)
	}
	if ok.ConversationID != "agent:u1" || TopicFor(AgentPresence) != TopicChat {
		t.Fatalf("key %q topic %q", ok.ConversationID, TopicFor(AgentPresence))
	}
	for _, p := range []AgentPresencePayload{{Status: "busy"}, {Status: ""}, {Status: PresenceOnline, Previous: "gone"}} {
		// New validates too: an invalid payload never gets built.
		_, err := New(AgentPresence, "*", AgentKey("u1"), actor, at, p)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "agent.presence payload") {
			t.Errorf("payload %+v: err %v, want ErrInvalid naming agent.presence", p, err)
		}
	}
}
