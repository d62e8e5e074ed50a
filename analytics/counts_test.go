package analytics

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// EventCounts counts each conversation's events apart, site by site, for
// more conversations than one statement names (countChunk), and leaves out
// those with none.
func TestEventCountsSiteBySite(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	var events []ingest.Event
	want := map[ConversationKey]int64{}
	add := func(site, conv string, n int) {
		for i := range n {
			e, err := ingest.New(ingest.MessageSent, site, conv, ingest.Actor{Role: ingest.RoleVisitor, ID: "v-" + conv},
				at.Add(time.Duration(i)*time.Second), ingest.MessageSentPayload{MessageID: fmt.Sprintf("%s-%s-%d", site, conv, i), Seq: int64(i + 1), Kind: "text", Text: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
			want[ConversationKey{SiteID: site, ConversationID: conv}]++
		}
	}
	for i := range countChunk + 20 {
		add("s1", fmt.Sprintf("c%03d", i), 1+i%3)
	}
	add("s2", "c001", 5) // the same conversation id on another site
	keys := make([]ConversationKey, 0, len(want)+2)
	for k := range want {
		keys = append(keys, k)
	}
	keys = append(keys, ConversationKey{SiteID: "s1", ConversationID: "none"}, ConversationKey{SiteID: "s3", ConversationID: "c001"})
	for _, s := range []Store{newSQLiteStore(t), newClickHouseStore(t)} {
		if err := s.InsertEvents(ctx, events); err != nil {
			t.Fatalf("%s: insert: %v", s.Backend(), err)
		}
		got, err := s.EventCounts(ctx, keys)
		if err != nil {
			t.Fatalf("%s: %v", s.Backend(), err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: %d counts, want %d; s1/c001 %d (want %d), s2/c001 %d (want 5)", s.Backend(), len(got), len(want),
				got[ConversationKey{SiteID: "s1", ConversationID: "c001"}], want[ConversationKey{SiteID: "s1", ConversationID: "c001"}],
				got[ConversationKey{SiteID: "s2", ConversationID: "c001"}])
		}
	}
}
