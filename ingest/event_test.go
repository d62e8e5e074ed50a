package ingest

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func mustEvent(t testing.TB, typ Type, conv string, payload any) Event {
	t.Helper()
	e, err := New(typ, "site-1", conv, Actor{Role: RoleVisitor, ID: "v-1"}, time.Now(), payload)
	if err != nil {
		t.Fatalf("new %s: %v", typ, err)
	}
	return e
}

func TestEventRoundTripKeepsEveryField(t *testing.T) {
	at := time.Date(2026, 3, 29, 1, 30, 15, 123456789, time.FixedZone("CET", 3600))
	e, err := New(MessageSent, "site-1", "conv-1", Actor{Role: RoleAgent, ID: "a-7"}, at,
		MessageSentPayload{MessageID: "m-1", ClientMessageID: "c-1", Seq: 4, Kind: KindText, Text: "héllo <b>"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"occurred_at":"2026-03-29T00:30:15.123Z"`) {
		t.Fatalf("occurred_at not in UTC with milliseconds: %s", b)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.Type != MessageSent || got.Version != 1 || got.SiteID != "site-1" ||
		got.ConversationID != "conv-1" || got.Actor != (Actor{Role: RoleAgent, ID: "a-7"}) || !got.OccurredAt.Equal(e.OccurredAt.Time) {
		t.Fatalf("round trip changed the envelope: %+v", got)
	}
	var p MessageSentPayload
	if err := got.Into(&p); err != nil {
		t.Fatal(err)
	}
	if p.Text != "héllo <b>" || p.Seq != 4 {
		t.Fatalf("payload changed: %+v", p)
	}
}

// A decoded event's payload is parsed once: Into and DecodePayload copy
// what Decode validated, each caller gets its own copy, and a destination
// of another type still decodes from the JSON.
func TestDecodedPayloadIsParsedOnce(t *testing.T) {
	e := mustEvent(t, MessageSent, "conv-1", MessageSentPayload{MessageID: "m-1", Seq: 9, Kind: KindText, Text: "hello"})
	raw, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	got.Payload = json.RawMessage(`not json`) // would fail if Into parsed it again
	var p MessageSentPayload
	if err := got.Into(&p); err != nil {
		t.Fatalf("Into parsed the JSON again: %v", err)
	}
	if p.MessageID != "m-1" || p.Seq != 9 || p.Text != "hello" {
		t.Fatalf("copied payload %+v", p)
	}
	p.Text = "changed"
	var again MessageSentPayload
	if err := got.Into(&again); err != nil || again.Text != "hello" {
		t.Fatalf("a caller's change reached the next copy: %+v, %v", again, err)
	}
	dp, err := got.DecodePayload()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := dp.(*MessageSentPayload); !ok || m.Seq != 9 {
		t.Fatalf("DecodePayload gave %#v", dp)
	}
	var other map[string]any
	if err := got.Into(&other); err == nil {
		t.Fatal("a destination of another type must decode the JSON (here invalid), not take the copy")
	}
	if d, ok := Decoded[MessageSentPayload](got); !ok || d.Seq != 9 || d.Text != "hello" {
		t.Fatalf("Decoded gave %+v, %v", d, ok)
	}
	if _, ok := Decoded[ConversationQueuedPayload](got); ok {
		t.Fatal("Decoded of another payload type must say no")
	}
	built := mustEvent(t, MessageSent, "conv-1", MessageSentPayload{MessageID: "m-2", Seq: 1, Kind: KindText, Text: "x"})
	if _, ok := Decoded[MessageSentPayload](built); ok {
		t.Fatal("an event built in memory has no decoded payload")
	}
	var fromJSON MessageSentPayload
	if err := built.Into(&fromJSON); err != nil || fromJSON.MessageID != "m-2" {
		t.Fatalf("an event built in memory decodes its JSON: %+v, %v", fromJSON, err)
	}
}

func TestEveryTypeHasAPayloadAndTopic(t *testing.T) {
	for _, typ := range Types {
		if _, ok := PayloadFor(typ); !ok {
			t.Errorf("%s has no payload type", typ)
		}
		if TopicFor(typ) == "" {
			t.Errorf("%s has no topic", typ)
		}
	}
}

func TestIDsSortByCreationTime(t *testing.T) {
	prev := NewID()
	for i := 0; i < 1000; i++ {
		id := NewID()
		if id <= prev {
			t.Fatalf("id %s not after %s", id, prev)
		}
		prev = id
	}
}

func TestDecodeToleratesUnknownFields(t *testing.T) {
	e := mustEvent(t, CSATSubmitted, "c", CSATSubmittedPayload{Rating: 5})
	var m map[string]any
	b, _ := e.Encode()
	_ = json.Unmarshal(b, &m)
	m["added_later"] = true
	m["payload"].(map[string]any)["also_new"] = "x"
	b, _ = json.Marshal(m)
	if _, err := Decode(b); err != nil {
		t.Fatalf("unknown fields rejected: %v", err)
	}
}

func TestDecodeRejectsWithReason(t *testing.T) {
	good := mustEvent(t, CSATSubmitted, "c", CSATSubmittedPayload{Rating: 4})
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		b, _ := good.Encode()
		_ = json.Unmarshal(b, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	cases := []struct {
		name    string
		in      []byte
		wantErr error
		reason  string
	}{
		{"not json", []byte("{nope"), ErrInvalid, "invalid character"},
		{"newer version", mutate(func(m map[string]any) { m["version"] = 2 }), ErrUnknownVersion, "version 2"},
		{"zero version", mutate(func(m map[string]any) { delete(m, "version") }), ErrUnknownVersion, "version 0"},
		{"unknown type", mutate(func(m map[string]any) { m["type"] = "thing.happened" }), ErrInvalid, `unknown type "thing.happened"`},
		{"bad id", mutate(func(m map[string]any) { m["id"] = "x" }), ErrInvalid, "not a UUID"},
		{"no site", mutate(func(m map[string]any) { m["site_id"] = "" }), ErrInvalid, "no site_id"},
		{"bad role", mutate(func(m map[string]any) { m["actor"] = map[string]any{"role": "cat"} }), ErrInvalid, `actor role "cat"`},
		{"bad time", mutate(func(m map[string]any) { m["occurred_at"] = "yesterday" }), ErrInvalid, "occurred_at"},
		{"payload type", mutate(func(m map[string]any) { m["payload"] = map[string]any{"rating": "five"} }), ErrInvalid, "csat.submitted payload"},
		{"payload value", mutate(func(m map[string]any) { m["payload"] = map[string]any{"rating": 9} }), ErrInvalid, "rating 9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %q does not say %q", err, tc.reason)
			}
		})
	}
}

// benchEvent is the benchmarks' message event, benchRecord its encoding
// (which also sets the bytes per op and reports allocations).
func benchEvent(b *testing.B) Event {
	return mustEvent(b, MessageSent, "conv-1", MessageSentPayload{MessageID: "m", Seq: 1, Kind: KindText, Text: strings.Repeat("hello ", 20)})
}

func benchRecord(b *testing.B) []byte {
	raw, err := benchEvent(b).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	return raw
}

func BenchmarkEventEncode(b *testing.B) {
	e := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventDecode(b *testing.B) {
	raw := benchRecord(b)
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// The documented examples are real events: each decodes, and every type
// this build knows has its section and example.
func TestEventsDocCoversEveryType(t *testing.T) {
	raw, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	examples := map[Type]bool{}
	for _, block := range strings.Split(doc, "```json\n")[1:] {
		body := block[:strings.Index(block, "```")]
		if strings.Contains(body, `"reason"`) && strings.Contains(body, `"group"`) {
			continue // the dead-letter example
		}
		e, err := Decode([]byte(body))
		if err != nil {
			t.Errorf("docs/events.md example does not decode: %v\n%s", err, body)
			continue
		}
		examples[e.Type] = true
	}
	for _, typ := range Types {
		if !strings.Contains(doc, "### `"+string(typ)+"`") {
			t.Errorf("docs/events.md has no section for %s", typ)
		}
		if !examples[typ] {
			t.Errorf("docs/events.md has no example of %s", typ)
		}
	}
}

// BenchmarkEventDecodeInto is a consumer's per-event cost: decode and
// validate an event, then take its typed payload.
func BenchmarkEventDecodeInto(b *testing.B) {
	raw := benchRecord(b)
	for b.Loop() {
		d, err := Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		var p MessageSentPayload
		if err := d.Into(&p); err != nil {
			b.Fatal(err)
		}
	}
}
