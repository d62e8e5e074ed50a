package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/ingest"
)

// PipelineResult holds the pipeline scenario's figures.
type PipelineResult struct {
	Conversations int     `json:"conversations"`
	Rate          float64 `json:"rate"`
	Sent          int64   `json:"sent"`
	Acked         int64   `json:"acked"`
	// Verdict is send → the worker's moderation.verdict read from Kafka.
	// Every message carries a mild swear word, so the worker flags it and
	// publishes a verdict (an allowed message publishes none).
	Verdict  Latency          `json:"verdict"`
	Verdicts map[string]int64 `json:"verdicts_by_stage"`
	// Analytics is send → the message is counted by the analytics query API.
	Analytics       Latency          `json:"analytics"`
	AnalyticsCount  int64            `json:"analytics_counted"`
	AnalyticsSource string           `json:"analytics_source"`
	Errors          map[string]int64 `json:"errors,omitempty"`
}

func (r *PipelineResult) text(b *strings.Builder) {
	fmt.Fprintf(b, "  messages                   sent %d, acked %d over %d conversations at %.0f msg/s\n", r.Sent, r.Acked, r.Conversations, r.Rate)
	fmtLatency(b, "send→verdict on Kafka", r.Verdict)
	fmt.Fprintf(b, "  verdicts by stage          %v\n", r.Verdicts)
	fmtLatency(b, "send→counted by analytics", r.Analytics)
	if r.AnalyticsSource != "" {
		fmt.Fprintf(b, "  analytics source           %s (%d counted)\n", r.AnalyticsSource, r.AnalyticsCount)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(b, "  errors                     %v\n", r.Errors)
	}
}

// pipelineRun tracks sends and what became of them.
type pipelineRun struct {
	epoch time.Time
	mu    sync.Mutex
	sent  map[string]time.Duration // client id → send time
	byMsg map[string]time.Duration // message id → send time (after ack)
	early map[string]time.Duration // verdicts seen before the ack: message id → read time
	seen  map[string]bool          // message ids with a recorded verdict
	order []time.Duration          // send times of acked messages, in ack order

	verdict Recorder
	stages  map[string]int64
	errors  map[string]int64
	acked   atomic.Int64
	nSent   atomic.Int64
	prefix  string
}

func (p *pipelineRun) onFrame(f frame) {
	switch f.Type {
	case "ack":
		p.mu.Lock()
		defer p.mu.Unlock()
		at, ok := p.sent[f.ClientID]
		if !ok {
			return
		}
		p.acked.Add(1)
		p.byMsg[f.MessageID] = at
		p.order = append(p.order, at)
		if read, ok := p.early[f.MessageID]; ok {
			delete(p.early, f.MessageID)
			p.recordVerdict(f.MessageID, read-at)
		}
	case "error", "blocked":
		p.mu.Lock()
		defer p.mu.Unlock()
		key := f.Code
		if f.Type == "blocked" {
			key = "blocked"
		}
		p.errors[key]++
	}
}

// recordVerdict keeps the first worker verdict of each message; p.mu is held.
func (p *pipelineRun) recordVerdict(messageID string, d time.Duration) {
	if p.seen[messageID] {
		return
	}
	p.seen[messageID] = true
	p.verdict.Record(d)
}

func (p *pipelineRun) onVerdict(siteID string, ev ingest.Event, read time.Time) {
	if ev.SiteID != siteID || ev.Type != ingest.ModerationVerdict {
		return
	}
	var v ingest.ModerationVerdictPayload
	if ev.Into(&v) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stages[v.Stage]++
	if v.Stage == "inline" {
		return // decided before the ack; the pipeline is the worker's verdict
	}
	at := read.Sub(p.epoch)
	if sent, ok := p.byMsg[v.MessageID]; ok {
		p.recordVerdict(v.MessageID, at-sent)
	} else {
		p.early[v.MessageID] = at
	}
}

func (e *env) runPipeline(ctx context.Context) error {
	o := e.opts
	conversations := o.Conversations
	if conversations > o.Messages {
		conversations = o.Messages
	}
	res := &PipelineResult{Conversations: conversations, Rate: o.Rate}
	e.report.Pipeline = res
	e.report.Settings = map[string]any{"messages": o.Messages, "rate": o.Rate, "conversations": conversations, "brokers": strings.Join(o.Brokers, ","), "run": e.runID}
	if perVisitor := o.Rate / float64(conversations); perVisitor > 4 {
		e.report.note("%.1f msg/s per visitor is near the server's visitor limit (5/s): raise --conversations", perVisitor)
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	e.status("pipeline: signing in")
	if err := e.signIn(ctx); err != nil {
		return err
	}
	st, err := e.admin.createSite(ctx, "bench pipeline "+e.runID, benchOrigin, 5)
	if err != nil {
		return err
	}
	if limit, err := e.admin.fitFloodLimit(ctx, st.ID, o.Rate/float64(conversations)); err != nil {
		e.report.note("moderation policy left as it is: %v", err)
	} else if limit > 0 {
		e.report.note("the run's site allows %d visitor messages per flood window (default 12 per 30 s); every other moderation rule stays on", limit)
	}
	run := &pipelineRun{
		epoch: time.Now(), sent: map[string]time.Duration{}, byMsg: map[string]time.Duration{},
		early: map[string]time.Duration{}, seen: map[string]bool{}, stages: map[string]int64{}, errors: map[string]int64{},
		prefix: "p" + e.runID + ".",
	}
	visitors := make([]*visitor, conversations)
	defer func() {
		for _, v := range visitors {
			if v != nil {
				v.ws.close()
			}
		}
	}()
	var clients visitorClients
	addrs := sourceAddrs{perAddr: o.PerIP}
	e.status("pipeline: opening %d conversations", conversations)
	err = forEach(ctx, conversations, o.SetupConcurrency, func(ctx context.Context, i int) error {
		ip, err := addrs.addrFor(i)
		if err != nil {
			return err
		}
		v, _, err := e.openVisitor(ctx, &clients, st.Key, ip, 0, func(_ *visitor, _ []byte, f frame, _ chatMessage) {
			run.onFrame(f)
		})
		if err != nil {
			return fmt.Errorf("conversation %d: %w", i, err)
		}
		visitors[i] = v
		_, err = v.startConversation(ctx, fmt.Sprintf("s%s.%d", e.runID, i), "Hello, I need help with a delivery")
		return err
	})
	if err != nil {
		return fmt.Errorf("set up conversations: %w", err)
	}

	counter, err := e.analyticsCounter(ctx, st.ID)
	if err != nil {
		e.report.note("analytics freshness not measured: %v", err)
	} else {
		res.AnalyticsSource = counter.source
	}
	// The setup messages must be counted before the run's are timed.
	baseline := int64(0)
	if counter != nil {
		until := time.Now().Add(30 * time.Second)
		for {
			n, err := counter.count(ctx)
			if err == nil && n >= int64(conversations) {
				baseline = n
				break
			}
			if time.Now().After(until) {
				e.report.note("analytics did not count the %d setup messages within 30 s (last: %d, %v): freshness not measured", conversations, n, err)
				counter = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	watch, err := watchTopic(ctx, o.Brokers, ingest.TopicModeration, func(ev ingest.Event, at time.Time) {
		run.onVerdict(st.ID, ev, at)
	})
	if err != nil {
		return err
	}
	defer func() {
		if watch != nil {
			_ = watch.stop()
		}
	}()

	// Send phase: o.Messages at o.Rate, round-robin over the visitors.
	duration := time.Duration(float64(o.Messages) / o.Rate * float64(time.Second))
	sched := newSchedule(time.Now(), 0, o.Rate, duration+time.Second)
	sched.count = o.Messages
	var analytics Recorder
	var counted atomic.Int64
	pollCtx, stopPoll := context.WithCancel(ctx)
	var pollDone sync.WaitGroup
	defer func() {
		stopPoll()
		pollDone.Wait()
	}()
	if counter != nil {
		pollDone.Add(1)
		go func() {
			defer pollDone.Done()
			e.pollAnalytics(pollCtx, run, counter, baseline, int64(o.Messages), &analytics, &counted)
		}()
	}
	stop := startProgress(ctx, e.progress, func() string {
		run.mu.Lock()
		n := run.verdict.Count()
		run.mu.Unlock()
		return fmt.Sprintf("pipeline: sent %d/%d acked %d verdicts %d counted by analytics %d", run.nSent.Load(), o.Messages, run.acked.Load(), n, counted.Load())
	})
	_, err = sched.run(ctx, func(i int) error {
		v := visitors[i%len(visitors)]
		id := run.prefix + strconv.Itoa(i)
		run.mu.Lock()
		run.sent[id] = time.Since(run.epoch)
		run.mu.Unlock()
		run.nSent.Add(1)
		return v.ws.send(sendFrame{Type: "send", ClientID: id, ConversationID: v.convID, Text: flaggedBenchText(i)})
	})
	if err != nil {
		stop()
		return fmt.Errorf("send: %w", err)
	}
	// Wait (bounded) for verdicts and analytics to catch up.
	until := time.Now().Add(o.Drain + 10*time.Second)
	for time.Now().Before(until) {
		run.mu.Lock()
		verdicts := run.verdict.Count()
		run.mu.Unlock()
		if verdicts >= run.acked.Load() && (counter == nil || counted.Load() >= run.acked.Load()) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopPoll()
	pollDone.Wait()
	stop()
	err = watch.stop()
	watch = nil
	if err != nil {
		e.report.note("%v", err)
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	res.Sent, res.Acked = run.nSent.Load(), run.acked.Load()
	res.Verdict = run.verdict.Summary()
	res.Verdicts = run.stages
	res.Errors = run.errors
	res.Analytics = analytics.Summary()
	res.AnalyticsCount = counted.Load()
	if res.Verdict.Count < res.Acked {
		e.report.note("%d of %d acked messages got no worker verdict on Kafka within the wait", res.Acked-res.Verdict.Count, res.Acked)
	}
	e.report.target("verdict freshness", "reported (no target)", fmt.Sprintf("p50 %.0f ms, p99 %.0f ms", res.Verdict.P50MS, res.Verdict.P99MS), res.Verdict.Count > 0)
	met := res.Analytics.Count > 0 && res.Analytics.Count == res.Acked
	e.report.target("analytics freshness p50", "< 1 s", fmt.Sprintf("%.0f ms", res.Analytics.P50MS), met && res.Analytics.P50MS < 1000)
	e.report.target("analytics freshness p99", "< 2 s", fmt.Sprintf("%.0f ms", res.Analytics.P99MS), met && res.Analytics.P99MS < 2000)
	return nil
}

// pollAnalytics polls the analytics count until every message is counted
// or ctx ends. The k-th acked message counts as fresh at the first poll
// whose count reaches baseline+k: the API counts, it does not name
// messages, so this assumes messages become countable in send order (they
// travel in order per conversation and batches are loaded whole).
func (e *env) pollAnalytics(ctx context.Context, run *pipelineRun, c *analyticsCounter, baseline, total int64, rec *Recorder, counted *atomic.Int64) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for counted.Load() < total {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := c.count(ctx)
		if err != nil {
			continue
		}
		now := time.Since(run.epoch)
		run.mu.Lock()
		for k := counted.Load(); k < n-baseline && k < int64(len(run.order)); k++ {
			rec.Record(now - run.order[k])
			counted.Add(1)
		}
		run.mu.Unlock()
	}
}
