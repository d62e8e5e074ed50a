package chatsvc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// busSamples are messages of each shape nodes tell each other.
func busSamples() []busMessage {
	frame := json.RawMessage(`{"type":"message","message":{"id":"0193","conversation_id":"c1","seq":7,"author":{"role":"agent","id":"a1","name":"Ana"},"kind":"text","text":"Hello \"there\" \u00e9 😀","created_at":"2026-12-07T10:00:00.000Z"}}`)
	return []busMessage{
		{Kind: busVisitor, Visitor: "v1", Frame: frame},
		{Kind: busConversation, Conversation: "c1", Meta: &convMeta{SiteID: "s1", VisitorID: "v1", Assignee: "a1", Status: StatusOpen, Routing: RoutingAssigned},
			Frame: frame, Summary: json.RawMessage(`{"type":"conversation","id":"c1"}`)},
		{Kind: busConversation, Conversation: "c2", Meta: &convMeta{SiteID: "s1", Status: StatusResolved}, Summary: json.RawMessage(`{"type":"conversation","id":"c2"}`)},
		{Kind: busCloseVisitor, Visitor: "v2", Frame: json.RawMessage(`{"type":"error"}`), Code: 4001, Reason: "banned"},
		{Kind: busPresence, Agent: &AgentInfo{ID: "a1", Status: StatusOnline}},
		{Kind: busChoice, User: "a1", Status: "away"},
		{Kind: busPositions, Positions: map[string]int{"c1": 1, "c2": 2}, PositionVisitors: map[string]string{"c1": "v1"}},
		{Kind: busSites},
	}
}

// Every message survives the framed format, and a node upgraded first
// still reads what older nodes publish: the JSON envelope.
func TestBusMessagesRoundTrip(t *testing.T) {
	legacy := func(m busMessage) ([]byte, error) { return json.Marshal(m) }
	for format, encode := range map[string]func(busMessage) ([]byte, error){"framed": encodeBusMessage, "older nodes' JSON": legacy} {
		for _, m := range busSamples() {
			b, err := encode(m)
			if err != nil {
				t.Fatalf("%s, %s: %v", format, m.Kind, err)
			}
			got, err := decodeBusMessage(b)
			if err != nil {
				t.Fatalf("%s, %s: %v", format, m.Kind, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("%s, %s: decoded %+v, want %+v", format, m.Kind, got, m)
			}
		}
	}
	if b, _ := encodeBusMessage(busSamples()[0]); b[0] != busFormatFramed {
		t.Fatalf("payload starts with %q, want the framed format", b[0])
	}
}

func TestBadBusMessagesAreRefused(t *testing.T) {
	good, err := encodeBusMessage(busSamples()[1])
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		payload []byte
		want    string
	}{
		"empty":          {nil, "unknown format"},
		"unknown format": {[]byte{0x07, 0x00}, "unknown format"},
		"cut short":      {good[:len(good)-3], "summary cut short"},
		"no parts":       {[]byte{busFormatFramed}, "fields cut short"},
		"huge length":    {[]byte{busFormatFramed, 0xff, 0xff, 0xff, 0xff, 0x0f}, "fields cut short"},
		"trailing bytes": {append(append([]byte{}, good...), 'x'), "1 bytes after the summary"},
		"bad fields":     {[]byte{busFormatFramed, 3, 'n', 'o', '{', 0, 0}, "bus message fields"},
		"bad JSON":       {[]byte(`{"k":`), "unexpected end"},
	} {
		_, err := decodeBusMessage(c.payload)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
}

// BenchmarkBusMessage encodes and decodes a conversation's message as
// nodes tell each other (frame, summary and meta), in the framed format
// and in the JSON envelope it replaced.
func BenchmarkBusMessage(b *testing.B) {
	m := busSamples()[1]
	b.Run("framed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := encodeBusMessage(m)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := decodeBusMessage(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := json.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			var got busMessage
			if err := json.Unmarshal(p, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
