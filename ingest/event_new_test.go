package ingest

import (
	"errors"
	"testing"
	"time"
)

// New checks a typed payload as it is (value or pointer) and any other
// payload through the full Validate: both reject the same mistakes.
func TestNewValidatesTypedAndOtherPayloads(t *testing.T) {
	actor := Actor{Role: RoleVisitor, ID: "v-1"}
	bad := []struct {
		name    string
		typ     Type
		payload any
	}{
		{"value without message id", MessageSent, MessageSentPayload{Kind: KindText}},
		{"pointer with a bad kind", MessageSent, &MessageSentPayload{MessageID: "m", Kind: "shout"}},
		{"map with a bad rating", CSATSubmitted, map[string]any{"rating": 9}},
		{"nil pointer", CSATSubmitted, (*CSATSubmittedPayload)(nil)},
		{"another type's payload", CSATSubmitted, MessageSentPayload{MessageID: "m", Kind: KindText}},
	}
	for _, c := range bad {
		if _, err := New(c.typ, "site-1", "conv-1", actor, time.Now(), c.payload); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", c.name, err)
		}
	}
	if _, err := New(MessageSent, "", "conv-1", actor, time.Now(), &MessageSentPayload{MessageID: "m", Kind: KindText}); !errors.Is(err, ErrInvalid) {
		t.Errorf("missing site_id: got %v, want ErrInvalid", err)
	}
	for _, p := range []any{MessageSentPayload{MessageID: "m", Kind: KindText}, &MessageSentPayload{MessageID: "m", Kind: KindNote}, map[string]any{"message_id": "m", "kind": "text"}} {
		e, err := New(MessageSent, "site-1", "conv-1", actor, time.Now(), p)
		if err != nil {
			t.Fatalf("%T: %v", p, err)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("%T: built event does not validate: %v", p, err)
		}
	}
}

func BenchmarkNewMessageSent(b *testing.B) {
	actor := Actor{Role: RoleVisitor, ID: "v-1"}
	p := &MessageSentPayload{MessageID: "m-1", ClientMessageID: "c-1", Seq: 4, Kind: KindText, Text: "hello there, how are you?"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(MessageSent, "site-1", "conv-1", actor, time.Now(), p); err != nil {
			b.Fatal(err)
		}
	}
}

// A lifted ban travels as decision "unban": it must name the visitor and
// carries no end time.
func TestUnbanDecisionIsValidated(t *testing.T) {
	mod := Actor{Role: RoleModerator, ID: "u-mod"}
	until := At(time.Now().Add(time.Hour))
	for _, c := range []struct {
		name string
		p    ModerationDecisionPayload
		ok   bool
	}{
		{"visitor and reason", ModerationDecisionPayload{VisitorID: "v-1", Decision: DecisionUnban, Reason: "appeal accepted"}, true},
		{"no visitor", ModerationDecisionPayload{Decision: DecisionUnban, Reason: "x"}, false},
		{"with an end time", ModerationDecisionPayload{VisitorID: "v-1", Decision: DecisionUnban, BanUntil: &until}, false},
		{"unknown decision", ModerationDecisionPayload{VisitorID: "v-1", Decision: "pardon"}, false},
	} {
		_, err := New(ModerationDecision, "site-1", "conv-1", mod, time.Now(), c.p)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", c.name, err)
		}
	}
}
