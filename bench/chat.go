package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/ingest"
)

// ChatResult holds the chat scenario's figures.
type ChatResult struct {
	Conversations int     `json:"conversations"`
	Agents        int     `json:"agents"`
	Rate          float64 `json:"rate_per_conversation"`
	SetupS        float64 `json:"setup_s"`
	// SetupSteps times each setup call per conversation: session+socket,
	// first message, assign (REST), subscribe.
	SetupSteps map[string]Latency `json:"setup_steps"`
	SendPhaseS float64            `json:"send_phase_s"`
	Sent       int64              `json:"sent"`
	Acked      int64              `json:"acked"`
	Delivered  int64              `json:"delivered"`
	// Undelivered counts acked messages the other side had not received
	// when the drain wait ended.
	Undelivered int64 `json:"undelivered"`
	// Unanswered counts sends that got neither an ack nor an error frame
	// by the end of the drain wait; their latency is not in the figures
	// (it is at least the drain wait), so read p99 with this count.
	Unanswered int64 `json:"unanswered"`
	// DeliveredPerS is delivered messages per second of the send phase.
	DeliveredPerS float64 `json:"delivered_per_s"`
	// Delivery is send → the other side's socket received it.
	Delivery Latency `json:"delivery"`
	// Ack is send → the sender's ack (committed to SQLite with its event).
	Ack Latency `json:"ack"`
	// Errors counts error frames by code, plus "socket_closed".
	Errors map[string]int64 `json:"errors"`
	// Kafka is how many acked messages were found on parley.chat.v1 (with --brokers).
	Kafka  *KafkaCheck  `json:"kafka,omitempty"`
	Server *ServerUsage `json:"server,omitempty"`
	// BenchCPUCores is the bench process's own CPU use during the send phase:
	// it shares the machine with the server.
	BenchCPUCores float64 `json:"bench_cpu_cores"`
	// MachineCPUCores is the whole machine's busy cores during the send
	// phase; OtherCPUCores what neither the server nor the bench used
	// (other processes competing for the same cores).
	MachineCPUCores float64 `json:"machine_cpu_cores"`
	OtherCPUCores   float64 `json:"other_cpu_cores"`
}

// KafkaCheck says how many of the acked messages reached Kafka.
type KafkaCheck struct {
	Acked     int64 `json:"acked"`
	Published int64 `json:"published"`
	// Latency is send → the event was read back from Kafka.
	Latency Latency `json:"latency"`
}

func (r *ChatResult) text(b *strings.Builder) {
	fmt.Fprintf(b, "  conversations              %d (%d agents), %.2f msg/s each, send phase %.1f s (setup %.1f s)\n", r.Conversations, r.Agents, r.Rate, r.SendPhaseS, r.SetupS)
	fmt.Fprintf(b, "  messages                   sent %d, acked %d, delivered %d, undelivered %d, unanswered %d\n", r.Sent, r.Acked, r.Delivered, r.Undelivered, r.Unanswered)
	fmt.Fprintf(b, "  delivered                  %.0f msg/s\n", r.DeliveredPerS)
	for _, k := range []string{"session_and_socket", "first_message", "assign", "subscribe"} {
		if l, ok := r.SetupSteps[k]; ok {
			fmtLatency(b, "setup: "+k, l)
		}
	}
	fmtLatency(b, "delivery (send→received)", r.Delivery)
	fmtLatency(b, "ack (send→durable ack)", r.Ack)
	if r.Kafka != nil {
		fmt.Fprintf(b, "  on Kafka                   %d of %d acked messages\n", r.Kafka.Published, r.Kafka.Acked)
		fmtLatency(b, "send→read from Kafka", r.Kafka.Latency)
	}
	if len(r.Errors) == 0 {
		b.WriteString("  errors                     none\n")
	} else {
		fmt.Fprintf(b, "  errors                     %v\n", r.Errors)
	}
	fmtUsage(b, r.Server)
	fmt.Fprintf(b, "  bench CPU                  %.2f cores (same machine)\n", r.BenchCPUCores)
	fmt.Fprintf(b, "  machine CPU                %.2f cores busy, %.2f of them other processes\n", r.MachineCPUCores, r.OtherCPUCores)
}

// chatAgent is one agent account with one socket.
type chatAgent struct {
	user staffUser
	ws   *wsConn
	wait waiters
}

// chatConv is one conversation of the run.
type chatConv struct {
	i       int
	visitor *visitor
	agent   *chatAgent
}

// chatRun is the state shared by every socket of a chat run.
type chatRun struct {
	e      *env
	prefix string    // client ids of this run start with it
	epoch  time.Time // send times are nanoseconds since epoch (monotonic)

	delivery, ack Recorder
	sent, acked   atomic.Int64
	delivered     atomic.Int64

	emu    sync.Mutex
	errors map[string]int64
}

func (c *chatRun) countError(code string) {
	c.emu.Lock()
	c.errors[code]++
	c.emu.Unlock()
}

// clientID encodes the conversation, the side, the sequence and the send
// time, so that whoever receives the message can measure its latency
// without any shared state.
func (c *chatRun) clientID(conv int, side byte, n int) string {
	return c.prefix + strconv.Itoa(conv) + "." + string(side) + strconv.Itoa(n) + "." + strconv.FormatInt(int64(time.Since(c.epoch)), 36)
}

// sentAt decodes the send time from a client id of this run; ok is false
// for anything else (setup messages, other runs, other clients).
func (c *chatRun) sentAt(clientID string) (time.Duration, bool) {
	if !strings.HasPrefix(clientID, c.prefix) {
		return 0, false
	}
	i := strings.LastIndexByte(clientID, '.')
	if i < 0 {
		return 0, false
	}
	ns, err := strconv.ParseInt(clientID[i+1:], 36, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ns), true
}

// onFrame handles one frame on any socket of the run. role is the role of
// the other side ("agent" for a visitor socket, "visitor" for an agent's).
func (c *chatRun) onFrame(f frame, m chatMessage, peerRole string) {
	switch f.Type {
	case "message":
		if m.Author.Role != peerRole {
			return
		}
		if at, ok := c.sentAt(m.ClientID); ok {
			c.delivery.Record(time.Since(c.epoch) - at)
			c.delivered.Add(1)
		}
	case "ack":
		if at, ok := c.sentAt(f.ClientID); ok {
			c.ack.Record(time.Since(c.epoch) - at)
			c.acked.Add(1)
		}
	case "blocked":
		if _, ok := c.sentAt(f.ClientID); ok {
			c.countError("blocked")
		}
	case "error":
		c.countError(f.Code)
	}
}

func (e *env) runChat(ctx context.Context) error {
	o := e.opts
	perSide := o.Rate / 2
	perAgent := int(math.Floor(0.8 * o.AgentMsgLimit / perSide))
	if perAgent < 1 {
		perAgent = 1
		e.report.note("--rate %.1f gives each agent %.1f msg/s, above 80%% of the server's per-agent limit %.0f/s: expect rate_limited errors", o.Rate, perSide, o.AgentMsgLimit)
	}
	nAgents := o.Agents
	if nAgents <= 0 {
		nAgents = (o.Conversations + perAgent - 1) / perAgent
	}
	if nAgents > o.Conversations {
		nAgents = o.Conversations
	}
	e.report.Settings = map[string]any{
		"conversations": o.Conversations, "rate": o.Rate, "duration": o.Duration.String(),
		"agents": nAgents, "per_ip": o.PerIP, "run": e.runID,
	}
	if limit, err := raiseFileLimit(); err != nil {
		return err
	} else if need := uint64(o.Conversations + nAgents + 64); need > limit {
		return fmt.Errorf("%d sockets need more file descriptors than RLIMIT_NOFILE %d allows", need, limit)
	}
	run := &chatRun{e: e, prefix: "b" + e.runID + ".", epoch: time.Now(), errors: map[string]int64{}}
	res := &ChatResult{Conversations: o.Conversations, Agents: nAgents, Rate: o.Rate}
	e.report.Chat = res

	setupStart := time.Now()
	e.status("chat: signing in")
	if err := e.signIn(ctx); err != nil {
		return err
	}
	st, err := e.admin.createSite(ctx, "bench chat "+e.runID, benchOrigin, perAgent*2+10)
	if err != nil {
		return err
	}
	if limit, err := e.admin.fitFloodLimit(ctx, st.ID, perSide); err != nil {
		e.report.note("moderation policy left as it is: %v", err)
	} else if limit > 0 {
		e.report.note("the run's site allows %d visitor messages per flood window (default 12 per 30 s) so that %.1f msg/s per visitor is not blocked as a flood; every other moderation rule stays on", limit, perSide)
	}
	agents, err := e.openAgents(ctx, run, nAgents, st.ID)
	defer closeAgents(agents)
	if err != nil {
		return err
	}
	convs := make([]*chatConv, o.Conversations)
	defer func() {
		for _, c := range convs {
			if c != nil && c.visitor != nil {
				c.visitor.ws.close()
			}
		}
	}()
	var clients visitorClients
	addrs := sourceAddrs{perAddr: o.PerIP}
	var ready atomic.Int64
	stopSetup := startProgress(ctx, e.progress, func() string {
		return fmt.Sprintf("chat: opening conversations %d/%d", ready.Load(), o.Conversations)
	})
	var stepOpen, stepFirst, stepAssign, stepSub Recorder
	err = forEach(ctx, o.Conversations, o.SetupConcurrency, func(ctx context.Context, i int) error {
		ip, err := addrs.addrFor(i)
		if err != nil {
			return err
		}
		t0 := time.Now()
		v, _, err := e.openVisitor(ctx, &clients, st.Key, ip, 0, func(_ *visitor, _ []byte, f frame, m chatMessage) {
			run.onFrame(f, m, "agent")
		})
		if err != nil {
			return fmt.Errorf("conversation %d: %w", i, err)
		}
		conv := &chatConv{i: i, visitor: v, agent: agents[i%len(agents)]}
		convs[i] = conv
		t1 := time.Now()
		stepOpen.Record(t1.Sub(t0))
		if _, err := v.startConversation(ctx, fmt.Sprintf("s%s.%d", e.runID, i), "Hello, I have a question about my order"); err != nil {
			return fmt.Errorf("conversation %d: %w", i, err)
		}
		t2 := time.Now()
		stepFirst.Record(t2.Sub(t1))
		if err := e.admin.assign(ctx, v.convID, conv.agent.user.ID); err != nil {
			return fmt.Errorf("conversation %d: %w", i, err)
		}
		t3 := time.Now()
		stepAssign.Record(t3.Sub(t2))
		if err := conv.agent.subscribe(ctx, v.convID, i); err != nil {
			return fmt.Errorf("conversation %d: %w", i, err)
		}
		stepSub.Record(time.Since(t3))
		ready.Add(1)
		return nil
	})
	stopSetup()
	if err != nil {
		return fmt.Errorf("set up conversations: %w", err)
	}
	res.SetupS = round3(time.Since(setupStart).Seconds())
	res.SetupSteps = map[string]Latency{
		"session_and_socket": stepOpen.Summary(), "first_message": stepFirst.Summary(),
		"assign": stepAssign.Summary(), "subscribe": stepSub.Summary(),
	}

	// Kafka check: every acked message of the run should appear as a
	// message.sent event of the run's site.
	var kafka *topicWatch
	var onKafka atomic.Int64
	var kafkaLat Recorder
	if len(o.Brokers) > 0 {
		kafka, err = watchTopic(ctx, o.Brokers, ingest.TopicChat, func(ev ingest.Event, at time.Time) {
			if ev.SiteID != st.ID || ev.Type != ingest.MessageSent {
				return
			}
			var p ingest.MessageSentPayload
			if ev.Into(&p) != nil {
				return
			}
			if sent, ok := run.sentAt(p.ClientMessageID); ok {
				onKafka.Add(1)
				kafkaLat.Record(at.Sub(run.epoch) - sent)
			}
		})
		if err != nil {
			return err
		}
	}

	// Send phase.
	usage := newUsageWatch(e.admin.hc, e.baseURL)
	if _, err := usage.sample(ctx); err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchDone sync.WaitGroup
	watchDone.Add(1)
	go func() {
		defer watchDone.Done()
		usage.run(watchCtx, time.Second)
	}()
	cpu0, machine0 := processCPU(), readCPUTimes()
	start := time.Now()
	stopProgress := startProgress(ctx, e.progress, func() string {
		el := time.Since(start).Seconds()
		return fmt.Sprintf("chat: %4.0fs/%s sent %d delivered %d (%.0f msg/s) p99 %.1f ms errors %d",
			el, o.Duration, run.sent.Load(), run.delivered.Load(), float64(run.delivered.Load())/el,
			ms(run.delivery.Quantile(0.99)), run.errorCount())
	})
	var senders sync.WaitGroup
	for _, c := range convs {
		for _, side := range []byte{'v', 'a'} {
			senders.Add(1)
			go func() {
				defer senders.Done()
				run.converse(ctx, c, side, newSchedule(start, spread(c.i*2+int(side&1), 2*len(convs), perSide), perSide, o.Duration))
			}()
		}
	}
	senders.Wait()
	// The send phase lasts the whole duration even when the last sends of
	// every timetable fall a little before its end.
	select {
	case <-time.After(time.Until(start.Add(o.Duration))):
	case <-ctx.Done():
	}
	sendPhase := time.Since(start)
	// Drain: wait for what is in flight, bounded.
	drainUntil := time.Now().Add(o.Drain)
	for time.Now().Before(drainUntil) && run.delivered.Load()+run.errorCount() < run.sent.Load() {
		time.Sleep(20 * time.Millisecond)
	}
	cpu, machine1 := processCPU()-cpu0, readCPUTimes()
	if _, err := usage.sample(ctx); err != nil {
		e.report.note("last metrics scrape failed: %v", err)
	}
	stopWatch()
	watchDone.Wait()
	stopProgress()

	res.SendPhaseS = round3(sendPhase.Seconds())
	res.Sent, res.Acked, res.Delivered = run.sent.Load(), run.acked.Load(), run.delivered.Load()
	res.Undelivered = max(0, res.Acked-res.Delivered)
	res.Unanswered = max(0, res.Sent-res.Acked-run.errorCount())
	if res.Unanswered > 0 {
		e.report.note("%d of %d messages were neither acked nor refused within the %s drain: the latency figures cover only the %d acked, so the true tail is worse", res.Unanswered, res.Sent, o.Drain, res.Acked)
	}
	res.DeliveredPerS = round3(float64(res.Delivered) / sendPhase.Seconds())
	res.Delivery, res.Ack = run.delivery.Summary(), run.ack.Summary()
	res.BenchCPUCores = round3(cpu.Seconds() / time.Since(start).Seconds())
	closed := 0
	for _, c := range convs {
		if c.visitor.ws.closed() {
			closed++
		}
	}
	for _, a := range agents {
		if a.ws.closed() {
			closed++
		}
	}
	run.emu.Lock()
	if closed > 0 {
		run.errors["socket_closed"] = int64(closed)
	}
	res.Errors = maps.Clone(run.errors)
	run.emu.Unlock()
	res.MachineCPUCores = busyCores(machine0, machine1)
	if u, err := usage.usage(); err != nil {
		e.report.note("server usage: %v", err)
	} else {
		res.Server = &u
		res.OtherCPUCores = round3(max(0, res.MachineCPUCores-u.CPUCores-res.BenchCPUCores))
		if res.OtherCPUCores > 0.2 {
			e.report.note("other processes kept %.2f of the %d cores busy during the send phase (load average %.1f): the server did not have the machine to itself", res.OtherCPUCores, e.report.Machine.Cores, loadAvg1())
		}
	}
	if kafka != nil {
		until := time.Now().Add(o.Drain + 5*time.Second)
		for time.Now().Before(until) && onKafka.Load() < res.Acked {
			time.Sleep(50 * time.Millisecond)
		}
		if err := kafka.stop(); err != nil {
			e.report.note("%v", err)
		}
		res.Kafka = &KafkaCheck{Acked: res.Acked, Published: onKafka.Load(), Latency: kafkaLat.Summary()}
	}
	e.chatTargets(res)
	return nil
}

func (c *chatRun) errorCount() int64 {
	c.emu.Lock()
	defer c.emu.Unlock()
	var n int64
	for _, v := range c.errors {
		n += v
	}
	return n
}

// converse sends one side's messages of a conversation on its timetable.
func (c *chatRun) converse(ctx context.Context, conv *chatConv, side byte, s schedule) {
	ws, convID := conv.visitor.ws, conv.visitor.convID
	if side == 'a' {
		ws = conv.agent.ws
	}
	_, err := s.run(ctx, func(n int) error {
		id := c.clientID(conv.i, side, n)
		c.sent.Add(1)
		return ws.send(sendFrame{Type: "send", ClientID: id, ConversationID: convID, Text: benchText(n + conv.i)})
	})
	if err != nil {
		c.countError("send_failed")
	}
}

// openAgents creates nAgents agent accounts for this run, signs each in
// from its own loopback address (sign-in is rate limited per address) and
// opens its socket.
func (e *env) openAgents(ctx context.Context, run *chatRun, n int, siteID string) ([]*chatAgent, error) {
	agents := make([]*chatAgent, n)
	var done atomic.Int64
	stop := startProgress(ctx, e.progress, func() string {
		return fmt.Sprintf("chat: creating agents %d/%d", done.Load(), n)
	})
	defer stop()
	// bcrypt makes account creation and sign-in CPU-bound on the server:
	// more than 2 in flight would only queue.
	err := forEach(ctx, n, 2, func(ctx context.Context, i int) error {
		pw := make([]byte, 12)
		_, _ = rand.Read(pw)
		password := hex.EncodeToString(pw)
		email := fmt.Sprintf("bench-%s-%d@bench.parley.invalid", e.runID, i)
		u, err := e.admin.createUser(ctx, email, fmt.Sprintf("Bench agent %d", i), password, []string{"agent"}, []string{siteID})
		if err != nil {
			return err
		}
		ip := loopbackAddr(agentAddrBase + i)
		hc := httpClientFrom(ip, 1)
		defer hc.CloseIdleConnections()
		s := &api{base: e.baseURL, hc: hc}
		if _, err := s.login(ctx, email, password); err != nil {
			return err
		}
		a := &chatAgent{user: u}
		hello := a.wait.expect("hello")
		ws, _, err := dialWS(ctx, wsURL(e.agentBase(), "/ws/agent", nil), dialOptions{source: ip, origin: e.baseURL, cookie: s.cookie}, func(data []byte) {
			f, m, err := decodeFrame(data)
			if err != nil {
				return
			}
			if f.Type == "hello" {
				a.wait.deliver("hello", f)
			} else if f.Ref != "" {
				a.wait.deliver(f.Ref, f)
			}
			run.onFrame(f, m, "visitor")
		})
		if err != nil {
			return fmt.Errorf("agent %s: %w", email, err)
		}
		a.ws = ws
		agents[i] = a
		if _, err := await(ctx, hello, ws.done, 15*time.Second, "agent hello", func(frame) bool { return true }); err != nil {
			return fmt.Errorf("agent %s: %w", email, err)
		}
		done.Add(1)
		return nil
	})
	return agents, err
}

// agentAddrBase puts agents' source addresses far from visitors'.
const agentAddrBase = 1 << 22

// subscribe opens a conversation on the agent's socket and waits for the
// backlog to arrive complete.
func (a *chatAgent) subscribe(ctx context.Context, convID string, i int) error {
	ref := "sub" + strconv.Itoa(i)
	ch := a.wait.expect(ref)
	defer a.wait.forget(ref)
	if err := a.ws.send(map[string]any{"type": "subscribe", "ref": ref, "conversation_id": convID, "after_seq": 0}); err != nil {
		return err
	}
	_, err := await(ctx, ch, a.ws.done, 15*time.Second, "subscribe", func(f frame) bool {
		return (f.Type == "messages" && f.Complete) || f.Type == "ok"
	})
	return err
}

// closeAgents sets every agent offline (so no conversation waits on a
// bench agent after the run) and closes its socket.
func closeAgents(agents []*chatAgent) {
	for _, a := range agents {
		if a == nil || a.ws == nil {
			continue
		}
		_ = a.ws.send(map[string]string{"type": "presence", "status": "offline"})
		a.ws.close()
	}
}

func (e *env) chatTargets(r *ChatResult) {
	e.report.target("chat throughput", "≥ 20000 msg/s delivered", fmt.Sprintf("%.0f msg/s", r.DeliveredPerS), r.DeliveredPerS >= 20000)
	e.report.target("chat p99 latency", "< 50 ms", fmt.Sprintf("%.2f ms", r.Delivery.P99MS), r.Delivery.Count > 0 && r.Delivery.P99MS < 50 && r.Unanswered == 0)
	e.report.target("chat nothing lost", "every sent message acked and delivered",
		fmt.Sprintf("%d sent, %d acked, %d delivered", r.Sent, r.Acked, r.Delivered), r.Sent > 0 && r.Acked == r.Sent && r.Delivered == r.Sent)
	if r.Kafka != nil {
		e.report.target("chat published to Kafka", "every acked message", fmt.Sprintf("%d of %d", r.Kafka.Published, r.Kafka.Acked), r.Kafka.Published >= r.Kafka.Acked && r.Kafka.Acked > 0)
	}
}

// agentBase is where agents' sockets connect: --agent-url (another chat
// node) when set, else --url.
func (e *env) agentBase() *url.URL {
	if e.opts.AgentURL != "" {
		if u, err := url.Parse(e.opts.AgentURL); err == nil {
			return u
		}
	}
	return e.base
}
