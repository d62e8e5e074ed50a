// Package ingest owns Parley's event contract and its path through Kafka:
// the versioned event envelope and its typed payloads, topic names, the
// producer, the consumer runner with its dead-letter handling, and the
// embedded Kafka-protocol broker used when no external brokers are set.
//
// Every other domain package (chatsvc, moderation, analytics, dashboard)
// depends on ingest; ingest imports none of them.
package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
)

// Type names what happened. The string is part of the wire contract.
type Type string

// Event types. docs/events.md documents each one with an example.
const (
	ConversationStarted     Type = "conversation.started"
	MessageSent             Type = "message.sent"
	MessageRead             Type = "message.read"
	ConversationAssigned    Type = "conversation.assigned"
	ConversationTransferred Type = "conversation.transferred"
	ConversationResolved    Type = "conversation.resolved"
	ConversationReopened    Type = "conversation.reopened"
	VisitorLeft             Type = "visitor.left"
	CSATSubmitted           Type = "csat.submitted"
	ModerationVerdict       Type = "moderation.verdict"
	ModerationDecision      Type = "moderation.decision"
)

// Role is who caused an event.
type Role string

// Actor roles.
const (
	RoleVisitor   Role = "visitor"
	RoleAgent     Role = "agent"
	RoleBot       Role = "bot"
	RoleModerator Role = "moderator"
	RoleSystem    Role = "system"
)

func (r Role) valid() bool {
	switch r {
	case RoleVisitor, RoleAgent, RoleBot, RoleModerator, RoleSystem:
		return true
	}
	return false
}

// CurrentVersion is the schema version this build writes. Decode accepts
// versions 1..CurrentVersion and rejects newer ones, so an old consumer
// never silently misreads an event written by a newer producer.
const CurrentVersion = 1

// Actor identifies who caused an event.
type Actor struct {
	Role Role   `json:"role"`
	ID   string `json:"id"`
	// StepIn marks a supervisor or admin acting in a conversation
	// assigned to another agent (docs/events.md); absent otherwise.
	StepIn bool `json:"step_in,omitempty"`
}

// Event is the envelope every Parley event travels in.
type Event struct {
	// ID is a UUIDv7: unique, and sortable by creation time.
	ID      string `json:"id"`
	Type    Type   `json:"type"`
	Version int    `json:"version"`
	// OccurredAt has millisecond precision on the wire.
	OccurredAt     Millis          `json:"occurred_at"`
	SiteID         string          `json:"site_id"`
	ConversationID string          `json:"conversation_id"`
	Actor          Actor           `json:"actor"`
	Payload        json.RawMessage `json:"payload"`

	// decoded is the payload as Decode validated it (a pointer to its
	// type's payload struct), so that a consumer's Into copies it instead
	// of parsing the JSON a second time. Nil for events built in memory.
	decoded any
}

// Millis is a time carried on the wire as RFC 3339 with exactly three
// fractional digits in UTC.
type Millis struct{ time.Time }

const millisLayout = "2006-01-02T15:04:05.000Z07:00"

// At returns t truncated to milliseconds in UTC.
func At(t time.Time) Millis { return Millis{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON writes the millisecond layout.
func (m Millis) MarshalJSON() ([]byte, error) {
	return []byte(`"` + m.UTC().Format(millisLayout) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 time and truncates it to milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("occurred_at: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("occurred_at: %w", err)
	}
	*m = At(t)
	return nil
}

// NewID returns a fresh UUIDv7 string.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// New builds an event of the current version with a fresh id. The payload
// must be the payload type that belongs to typ (see PayloadFor).
func New(typ Type, site, conversation string, actor Actor, occurred time.Time, payload any) (Event, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	e := Event{
		ID:             NewID(),
		Type:           typ,
		Version:        CurrentVersion,
		OccurredAt:     At(occurred),
		SiteID:         site,
		ConversationID: conversation,
		Actor:          actor,
		Payload:        raw,
	}
	if err := e.validateBuilt(payload); err != nil {
		return Event{}, err
	}
	return e, nil
}

// validateBuilt validates an event New built. A payload of typ's own
// payload type (T or *T) is checked as it is, without decoding the JSON
// New just encoded from it; any other payload gets the full Validate.
func (e Event) validateBuilt(payload any) error {
	want, ok := PayloadFor(e.Type)
	if !ok || payload == nil {
		return e.Validate()
	}
	var p any
	switch rv, wt := reflect.ValueOf(payload), reflect.TypeOf(want); {
	case rv.Type() == wt && !rv.IsNil():
		p = payload
	case rv.Type() == wt.Elem():
		pv := reflect.New(wt.Elem())
		pv.Elem().Set(rv)
		p = pv.Interface()
	default:
		return e.Validate()
	}
	if err := e.validateEnvelope(); err != nil {
		return err
	}
	if v, ok := p.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			return fmt.Errorf("%w: %s payload of event %s: %v", ErrInvalid, e.Type, e.ID, err)
		}
	}
	return nil
}

// Encode returns the event's wire form.
func (e Event) Encode() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return b, nil
}

// ErrUnknownVersion marks an event written by a newer schema than this build knows.
var ErrUnknownVersion = errors.New("unknown event version")

// ErrInvalid marks an event that cannot be decoded or breaks the contract.
var ErrInvalid = errors.New("invalid event")

// Decode parses and validates one event. Unknown fields are tolerated; an
// unknown version wraps ErrUnknownVersion and anything else that is wrong
// wraps ErrInvalid, with a message that says what.
//
// The validated payload stays with the event: Into and DecodePayload copy
// it rather than parse the JSON again, so a consumer parses each event once.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p, err := e.validate()
	if err != nil {
		return Event{}, err
	}
	e.decoded = p
	return e, nil
}

// Validate checks the envelope and that the payload decodes as its type's payload.
func (e Event) Validate() error {
	_, err := e.validate()
	return err
}

// validate is Validate, returning the decoded payload.
func (e Event) validate() (any, error) {
	if err := e.validateEnvelope(); err != nil {
		return nil, err
	}
	p, ok := PayloadFor(e.Type)
	if !ok {
		return nil, fmt.Errorf("%w: event %s has unknown type %q", ErrInvalid, e.ID, e.Type)
	}
	if len(e.Payload) == 0 {
		e.Payload = json.RawMessage("{}")
	}
	if err := json.Unmarshal(e.Payload, p); err != nil {
		return nil, fmt.Errorf("%w: %s payload of event %s: %v", ErrInvalid, e.Type, e.ID, err)
	}
	if v, ok := p.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			return nil, fmt.Errorf("%w: %s payload of event %s: %v", ErrInvalid, e.Type, e.ID, err)
		}
	}
	return p, nil
}

// validateEnvelope checks every envelope field but the payload.
func (e Event) validateEnvelope() error {
	if e.Version < 1 || e.Version > CurrentVersion {
		return fmt.Errorf("%w: %s version %d (this build reads 1..%d)", ErrUnknownVersion, e.Type, e.Version, CurrentVersion)
	}
	if _, err := uuid.Parse(e.ID); err != nil {
		return fmt.Errorf("%w: id %q is not a UUID", ErrInvalid, e.ID)
	}
	if e.OccurredAt.IsZero() {
		return fmt.Errorf("%w: event %s has no occurred_at", ErrInvalid, e.ID)
	}
	if e.SiteID == "" {
		return fmt.Errorf("%w: event %s has no site_id", ErrInvalid, e.ID)
	}
	if e.ConversationID == "" {
		return fmt.Errorf("%w: event %s has no conversation_id", ErrInvalid, e.ID)
	}
	if !e.Actor.Role.valid() {
		return fmt.Errorf("%w: event %s has actor role %q", ErrInvalid, e.ID, e.Actor.Role)
	}
	return nil
}

// DecodePayload decodes the payload into its typed form, for example
// *MessageSentPayload for MessageSent.
func (e Event) DecodePayload() (any, error) {
	if e.decoded != nil {
		p, _ := PayloadFor(e.Type)
		if copyDecoded(e.decoded, p) {
			return p, nil
		}
	}
	p, ok := PayloadFor(e.Type)
	if !ok {
		return nil, fmt.Errorf("%w: unknown type %q", ErrInvalid, e.Type)
	}
	if err := json.Unmarshal(e.Payload, p); err != nil {
		return nil, fmt.Errorf("%w: %s payload of event %s: %v", ErrInvalid, e.Type, e.ID, err)
	}
	return p, nil
}

// Into decodes the payload into dst, which must be a pointer to the
// payload type that belongs to the event's type. For an event from Decode
// it copies the payload Decode already parsed; slices and maps in that
// copy are shared with other copies of the same event, so treat them as
// read-only.
func (e Event) Into(dst any) error {
	if e.decoded != nil && copyDecoded(e.decoded, dst) {
		return nil
	}
	if err := json.Unmarshal(e.Payload, dst); err != nil {
		return fmt.Errorf("%w: %s payload of event %s: %v", ErrInvalid, e.Type, e.ID, err)
	}
	return nil
}

// Decoded returns the payload Decode validated when it is a T (e's
// payload type), without parsing or copying through reflection: for a
// consumer that reads the payloads of the same events again and again
// (the analytics loader rebuilds a conversation's facts from all its
// events). ok is false for events built in memory or read back from a
// store, and for another T; Into works for those.
func Decoded[T any](e Event) (T, bool) {
	if p, ok := e.decoded.(*T); ok {
		return *p, true
	}
	var zero T
	return zero, false
}

// copyDecoded sets *dst to *decoded when both point to the same payload
// type, and says whether it did.
func copyDecoded(decoded, dst any) bool {
	d := reflect.ValueOf(dst)
	if d.Kind() != reflect.Pointer || d.IsNil() || d.Type() != reflect.TypeOf(decoded) {
		return false
	}
	d.Elem().Set(reflect.ValueOf(decoded).Elem())
	return true
}
