package chatsvc

import (
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

var benchFrame = []byte(`{"type":"send","ref":"r1","client_id":"c-1706700000000-1","conversation_id":"0193a4c0-11aa-7bcd-8e00-111122223333","text":"Hello, my order A-1001 has not arrived yet, can you check?"}`)

func BenchmarkDecodeFrame(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		if _, fe := decodeFrame(benchFrame, 64<<10); fe != nil {
			b.Fatal(fe)
		}
	}
}

func BenchmarkEncodeMessageFrame(b *testing.B) {
	m := Message{ID: ingest.NewID(), ConversationID: ingest.NewID(), Seq: 42, ClientID: "c-1", Author: Author{Role: "agent", ID: "a1", Name: "Grace"},
		Kind: "text", Text: "Your order ships today; the tracking number follows by email.", Status: MsgVisible, CreatedAt: ingest.At(benchNow)}
	b.ReportAllocs()
	for b.Loop() {
		_ = encode(messageFrame{Type: "message", Message: m})
	}
}

func BenchmarkEncodeAck(b *testing.B) {
	a := ackFrame{Type: "ack", Ref: "r1", ClientID: "c-1", ConversationID: ingest.NewID(), MessageID: ingest.NewID(), Seq: 42, CreatedAt: ingest.At(benchNow), Text: "hello"}
	b.ReportAllocs()
	for b.Loop() {
		_ = encode(a)
	}
}

var benchNow = time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
