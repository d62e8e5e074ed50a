package ingest

import (
	"errors"
	"fmt"
	"testing"
)

// TestRecentRecordsAreDecodedOnce: a second consumer of the same record
// gets the first one's decoding (the same parsed payload, not a second
// parse), a poison record is refused each time with the same reason, and
// the memory stays within its two generations.
func TestRecentRecordsAreDecodedOnce(t *testing.T) {
	m := newDecodeMemo(8)
	e := mustEvent(t, MessageSent, "conv-1", MessageSentPayload{MessageID: "m-1", Seq: 1, Kind: KindText, Text: "hello"})
	raw, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.decode(append([]byte(nil), raw...)) // another consumer's copy of the record
	if err != nil {
		t.Fatal(err)
	}
	if first.decoded == nil || again.decoded != first.decoded {
		t.Fatal("the second read parsed the record again")
	}
	var p MessageSentPayload
	if err := again.Into(&p); err != nil || p.Text != "hello" {
		t.Fatalf("Into on the shared decoding: %+v, %v", p, err)
	}
	p.Text = "changed"
	if d, _ := Decoded[MessageSentPayload](first); d.Text != "hello" {
		t.Fatal("a consumer's change to its copy reached the other consumer")
	}

	poison := []byte(`{"id":"x","type":"message.sent","version":1}`)
	_, want := Decode(poison)
	for i := 0; i < 2; i++ {
		if _, err := m.decode(poison); err == nil || !errors.Is(err, ErrInvalid) || err.Error() != want.Error() {
			t.Fatalf("poison read %d: %v, want %v", i, err, want)
		}
	}

	for i := 0; i < 40; i++ {
		ev := mustEvent(t, MessageSent, fmt.Sprintf("conv-%d", i), MessageSentPayload{MessageID: "m", Seq: 1, Kind: KindText, Text: "x"})
		b, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.decode(b); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.recent.Len(); n > 16 {
		t.Fatalf("the memo holds %d records, want at most two generations of 8", n)
	}
	if d, err := m.decode(raw); err != nil || d.decoded == first.decoded {
		t.Fatalf("an old record is decoded afresh once forgotten: %v", err)
	}
}
