package chatsvc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// lingerSenders starts n visitors with a conversation each, so that their
// messages are independent operations for the writer.
func lingerSenders(t *testing.T, e *env, n int) ([]Author, []string) {
	t.Helper()
	authors := make([]Author, n)
	convs := make([]string, n)
	for i := range authors {
		authors[i] = Author{Role: string(ingest.RoleVisitor), ID: ingest.NewID()}
		res, err := e.svc.send(context.Background(), sendReq{Author: authors[i], SiteID: e.site.ID, Kind: ingest.KindText,
			Text: "hello", Verdict: InlineVerdict{Action: ingest.ActionAllow}})
		if err != nil {
			t.Fatal(err)
		}
		convs[i] = res.Msg.ConversationID
	}
	return authors, convs
}

func lingerSend(e *env, a Author, conv, clientID string) error {
	_, err := e.svc.send(context.Background(), sendReq{Author: a, SiteID: e.site.ID, ConversationID: conv, ClientID: clientID,
		Kind: ingest.KindText, Text: "a message", Verdict: InlineVerdict{Action: ingest.ActionAllow}})
	return err
}

// Messages from several clients a few milliseconds apart share one commit
// when the writer lingers; without it each commits on its own.
func TestWriterLingersForConcurrentSenders(t *testing.T) {
	e := newEnv(t, "sqlite", func(c *Config) { c.CommitLinger = 40 * time.Millisecond })
	authors, convs := lingerSenders(t, e, 6)
	time.Sleep(500 * time.Millisecond) // a quiet spell (over ten lingers) after the sequential set-up: then independent clients start
	before := histogramCount(t, e.svc.metrics.commitBatch)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(start.Add(time.Duration(i) * 3 * time.Millisecond))) // arrivals 3 ms apart, as from independent clients
			if err := lingerSend(e, authors[i], convs[i], "paced"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if commits := histogramCount(t, e.svc.metrics.commitBatch) - before; commits > 2 {
		t.Fatalf("6 messages 3 ms apart took %d commits; the writer should have lingered for them (≤ 2)", commits)
	}
}

// One client sending in sequence, each message after the previous ack,
// never has company to wait for: the writer stops lingering for it.
func TestWriterStopsLingeringForASequentialSender(t *testing.T) {
	e := newEnv(t, "sqlite", func(c *Config) { c.CommitLinger = 100 * time.Millisecond })
	authors, convs := lingerSenders(t, e, 1)
	start := time.Now()
	for i := range 30 {
		if err := lingerSend(e, authors[0], convs[0], fmt.Sprintf("seq-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("30 sequential messages took %v: the writer kept lingering 100 ms for company that never came", took)
	}
}
