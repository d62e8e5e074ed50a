package ingest

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// A publish of one event allocates a few kilobytes, not room for a
// thousand messages: the relay publishes every commit's few records, and
// kafka-go sizes each batch it starts by BatchSize.
func TestSmallPublishAllocatesLittle(t *testing.T) {
	_, producer := topicsAndProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	publish := func(i int) {
		e := mustEvent(t, MessageSent, fmt.Sprintf("c%d", i%5), MessageSentPayload{MessageID: fmt.Sprint(i), Seq: int64(i + 1), Kind: KindText, Text: "hi"})
		if err := producer.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	publish(0) // connections and metadata
	const n = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 1; i <= n; i++ {
		publish(i)
	}
	runtime.ReadMemStats(&after)
	// The embedded broker runs in this process, so its side of each
	// produce request counts too.
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per one-event publish (producer and embedded broker)", per)
	if per > 64<<10 {
		t.Fatalf("one-event publish allocated %d KiB; a producer batch sized for a thousand messages costs about 150 KiB", per>>10)
	}
}
