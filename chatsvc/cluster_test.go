package chatsvc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// newClusterEnvs starts n chat nodes in this process that share one
// PostgreSQL database, one embedded broker (the live bus between them) and
// one staff directory, each on its own listener: what several `parley
// chat --postgres` processes behind a load balancer are.
func newClusterEnvs(t *testing.T, n int, tweak ...func(*Config)) []*env {
	t.Helper()
	dir := t.TempDir()
	broker, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: filepath.Join(dir, "kafka")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, broker.Addrs(), ingest.DefaultTopics(2, 0)); err != nil {
		t.Fatal(err)
	}
	producer := ingest.NewProducer(ingest.ProducerConfig{Brokers: broker.Addrs()})
	t.Cleanup(func() { producer.Close() })
	url := sqltest.PostgresURL(t)
	apool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: access.PostgresSchema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apool.Close)
	staffStore, err := access.OpenPostgres(ctx, apool)
	if err != nil {
		t.Fatal(err)
	}
	users := access.NewDirectory(staffStore)
	users.SetBcryptCost(bcrypt.MinCost)
	guard := access.NewGuard(users, false, testLogger(t))

	var envs []*env
	for i := 0; i < n; i++ {
		e := &env{t: t, dir: filepath.Join(dir, fmt.Sprint("node", i)), broker: broker, brokers: broker.Addrs(), producer: producer, users: users}
		pool, err := sqlstore.OpenPostgres(ctx, url, sqlstore.PostgresOptions{Schema: PostgresSchema, MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if e.store, err = OpenPostgres(ctx, pool); err != nil {
			t.Fatal(err)
		}
		bus, err := ingest.NewLiveBus(ingest.LiveBusConfig{Brokers: broker.Addrs(), Node: fmt.Sprint("node-", i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close() })
		cfg := Config{
			Store: e.store, Attachments: PostgresFiles(pool), Broker: bus, DataDir: e.dir, Producer: producer, Brokers: broker.Addrs(),
			NodeID: fmt.Sprint("node-", i), Guard: guard, Secret: bytes.Repeat([]byte("k"), 32), Logger: testLogger(t),
			Registerer: prometheus.NewRegistry(), RelayPoll: 200 * time.Millisecond, AgentOfflineGrace: 300 * time.Millisecond,
		}
		for _, f := range tweak {
			f(&cfg)
		}
		if e.svc, err = New(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if e.site, err = e.svc.CreateSite(ctx, SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}}, "admin"); err != nil {
				t.Fatal(err)
			}
		} else {
			e.site = envs[0].site
		}
		e.app = fiber.New(fiber.Config{BodyLimit: BodyLimit, DisableStartupMessage: true, ReduceMemoryUsage: true})
		guard.Mount(e.app)
		e.svc.Mount(e.app)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go e.app.Listener(ln)
		e.base, e.ws = "http://"+ln.Addr().String(), "ws://"+ln.Addr().String()
		runCtx, stop := context.WithCancel(context.Background())
		e.stop = stop
		e.runDone = make(chan error, 1)
		go func() { e.runDone <- e.svc.Run(runCtx) }()
		t.Cleanup(e.shutdown)
		envs = append(envs, e)
	}
	// Every node knows the site the first one created.
	for _, e := range envs[1:] {
		poll(t, "the site on every node", 10*time.Second, func() bool { _, ok := e.svc.Site(e.site.ID); return ok })
	}
	return envs
}

// startAcrossNodes brings agent Grace online on agentNode (every node
// learns it), then a visitor on visitorNode writes text (client id "v1")
// and the leader routes the new conversation to Grace.
func startAcrossNodes(t *testing.T, nodes []*env, agentNode, visitorNode *env, text string) (grace *staff, agent, vis *wsClient, conv string) {
	t.Helper()
	grace = agentNode.staff("Grace", access.Agent)
	agent = grace.socket()
	for _, n := range nodes {
		poll(t, "grace online on "+n.svc.cfg.NodeID, 20*time.Second, func() bool { return n.svc.hub.agentStatus(grace.user.ID) == StatusOnline })
	}
	tok, _ := visitorNode.visitorSession("")
	vis = visitorNode.visitorSocket(tok)
	vis.send(map[string]any{"type": "send", "client_id": "v1", "text": text})
	conv = vis.expect("ack", byClient("v1")).str("conversation_id")
	agent.expect("conversation", func(f frame) bool {
		c := f.obj("conversation")
		return c.str("id") == conv && c.obj("assignee").str("id") == grace.user.ID
	})
	return grace, agent, vis, conv
}

// A visitor on one node and an agent on another talk both ways with
// typing and receipts; routing, presence and queue positions hold across
// nodes; the agent's node stopping returns the conversation to the queue
// and to an agent on a third node.
func TestChatAcrossNodes(t *testing.T) {
	nodes := newClusterEnvs(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// An agent on node 2 comes online, every node learns it; a visitor on
	// node 1 writes and the leader routes it to Grace on node 2.
	grace, agent, vis, conv := startAcrossNodes(t, nodes, n2, n1, "Hello from node 1")
	agent.send(map[string]any{"type": "subscribe", "ref": "s", "conversation_id": conv})
	if msgs := agent.expect("messages", byRef("s")).list("messages"); len(msgs) != 1 || msgs[0].str("text") != "Hello from node 1" {
		t.Fatalf("backlog on node 2 = %v", msgs)
	}

	// Typing and a reply from node 2 reach the visitor on node 1, and back.
	agent.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
	vis.expect("typing", func(f frame) bool { return f.str("role") == "agent" })
	agent.send(map[string]any{"type": "send", "client_id": "a1", "conversation_id": conv, "text": "Hi, Grace here"})
	seqA := agent.expect("ack", byClient("a1")).num("seq")
	vis.expect("message", func(f frame) bool { return f.obj("message").str("text") == "Hi, Grace here" })
	vis.send(map[string]any{"type": "read", "ref": "r", "conversation_id": conv, "up_to_seq": seqA})
	vis.expect("ok", byRef("r"))
	agent.expect("receipt", func(f frame) bool { return f.str("kind") == "read" && f.num("up_to_seq") == seqA })
	vis.send(map[string]any{"type": "send", "client_id": "v2", "conversation_id": conv, "text": "Thanks!"})
	seqV := vis.expect("ack", byClient("v2")).num("seq")
	if seqV != seqA+1 {
		t.Fatalf("sequence across nodes: agent wrote %d, visitor then %d", seqA, seqV)
	}
	agent.expect("message", func(f frame) bool { return f.obj("message").str("text") == "Thanks!" })

	// Node 2 stops (its agent's sockets with it): after the grace period
	// every node sees Grace offline, the conversation returns to the queue
	// and goes to Lin on node 3.
	lin := n3.staff("Lin", access.Agent)
	linWS := lin.socket()
	poll(t, "lin online on node 1", 20*time.Second, func() bool { return n1.svc.hub.agentStatus(lin.user.ID) == StatusOnline })
	// Lin takes no new conversation while Grace still has this one.
	n2.shutdown()
	start := time.Now()
	// Node 2's last presence report counts for presenceTTL; then the
	// leader requeues and routes (30 s is the promise for a dead node).
	linWS.expectWithin(30*time.Second, "conversation", func(f frame) bool {
		c := f.obj("conversation")
		return c.str("id") == conv && c.obj("assignee").str("id") == lin.user.ID
	})
	t.Logf("reassigned %s after node 2 stopped", time.Since(start).Round(time.Millisecond))
	poll(t, "grace offline on node 1", 20*time.Second, func() bool { return n1.svc.hub.agentStatus(grace.user.ID) == StatusOffline })

	// Nothing was lost or written twice: three messages in order.
	msgs, err := n1.store.MessagesAfter(context.Background(), conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].Seq != 1 || msgs[1].Seq != 2 || msgs[2].Seq != 3 {
		t.Fatalf("history = %+v", msgs)
	}
}

// With nobody online, visitors on different nodes wait in one queue whose
// positions every node tells its visitors; the bot hands over on one node
// and the leader routes to an agent on another; a transfer made on a
// third node reaches the new agent's node.
func TestQueueHandoverAndTransferAcrossNodes(t *testing.T) {
	nodes := newClusterEnvs(t, 3, func(c *Config) { c.AgentLimit = 1 })
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// Two visitors on two nodes queue: positions 1 and 2, each on its node.
	tokA, _ := n1.visitorSession("")
	visA := n1.visitorSocket(tokA)
	visA.send(map[string]any{"type": "send", "client_id": "a1", "text": "First in line"})
	convA := visA.ackAndPosition("a1", 1)
	tokB, _ := n2.visitorSession("")
	visB := n2.visitorSocket(tokB)
	visB.send(map[string]any{"type": "send", "client_id": "b1", "text": "Second in line"})
	convB := visB.ackAndPosition("b1", 2)

	// An agent with room for one comes online on node 3: the first in line
	// is served, the second moves up to position 1 on node 2.
	ann := n3.staff("Ann", access.Agent)
	annWS := ann.socket()
	annWS.expect("conversation", func(f frame) bool {
		c := f.obj("conversation")
		return c.str("id") == convA && c.obj("assignee").str("id") == ann.user.ID
	})
	visB.expect("queue", func(f frame) bool { return f.str("conversation_id") == convB && f.num("position") == 1 })

	// A transfer made through node 1's API moves convB to Bo on node 2.
	bo := n2.staff("Bo", access.Agent)
	boWS := bo.socket()
	poll(t, "bo online on node 1", 20*time.Second, func() bool { return n1.svc.hub.agentStatus(bo.user.ID) == StatusOnline })
	// A supervisor steps in through node 1 (Bo may have been given the
	// conversation by routing meanwhile: the transfer holds either way).
	sue := n1.staff("Sue", access.Agent, access.Supervisor)
	sue.call("POST", "/api/chat/conversations/"+convB+"/transfer", map[string]string{"to_agent_id": bo.user.ID, "note": "Bo knows this"}, 200, nil)
	boWS.expect("conversation", func(f frame) bool {
		c := f.obj("conversation")
		return c.str("id") == convB && c.obj("assignee").str("id") == bo.user.ID
	})
	visB.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == bo.user.ID })

	// The bot hands over on node 1; the leader routes to an agent elsewhere
	// once one has room.
	ann.call("POST", "/api/chat/conversations/"+convA+"/status", map[string]string{"status": "resolved"}, 200, nil)
	in := SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, Settings: SiteSettings{Bot: BotSettings{
		Enabled: true, Name: "Robo", Greeting: "Hi, I am Robo.", HandoverPhrases: []string{"human"},
	}}}
	if _, err := n1.svc.UpdateSite(context.Background(), n1.site.ID, in, "admin"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		poll(t, "the bot on every node", 10*time.Second, func() bool { s, _ := n.svc.Site(n1.site.ID); return s.Settings.Bot.Enabled })
	}
	tokC, _ := n1.visitorSession("")
	visC := n1.visitorSocket(tokC)
	visC.send(map[string]any{"type": "send", "client_id": "c1", "text": "hello"})
	convC := visC.expect("ack", byClient("c1")).str("conversation_id")
	visC.expect("message", func(f frame) bool { return f.obj("message").str("text") == "Hi, I am Robo." })
	visC.send(map[string]any{"type": "send", "client_id": "c2", "conversation_id": convC, "text": "a human please"})
	visC.expect("conversation", func(f frame) bool {
		c := f.obj("conversation")
		return c.str("routing") == RoutingAssigned && c.obj("assignee").str("id") == ann.user.ID
	})
	annWS.expect("conversation", func(f frame) bool {
		c := f.obj("conversation")
		return c.str("id") == convC && c.obj("assignee").str("id") == ann.user.ID
	})
}

// ackAndPosition waits for the ack of a visitor's first message and for
// its conversation's queue position, in either order: the leader may
// number the queue before the ack reaches the socket.
func (c *wsClient) ackAndPosition(clientID string, position int64) (conversationID string) {
	c.t.Helper()
	positions := map[string]int64{}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f := <-c.frames:
			switch f.str("type") {
			case "ack":
				if f.str("client_id") == clientID {
					conversationID = f.str("conversation_id")
				}
			case "queue":
				positions[f.str("conversation_id")] = f.num("position")
			}
			if conversationID != "" && positions[conversationID] == position {
				return conversationID
			}
		case <-deadline:
			c.t.Fatalf("within 20 s: ack of %s for conversation %q, queue positions %v; want position %v", clientID, conversationID, positions, position)
		}
	}
}

// TestAnswersAcrossNodesWaitInsteadOfRedoing: a visitor on one node and an
// agent on another write the same conversation at the same moment, before
// either node hears of the other's write. Each node locks the
// conversation its writes name at the start of its batch, so one waits for
// the other's commit instead of losing a race and redoing its batch, and
// the sequence has no gap and no repeat.
func TestAnswersAcrossNodesWaitInsteadOfRedoing(t *testing.T) {
	nodes := newClusterEnvs(t, 2, func(c *Config) { c.Limits.VisitorMsgRate = 100 })
	grace, agent, vis, conv := startAcrossNodes(t, nodes, nodes[1], nodes[0], "hello")
	redos := func() float64 {
		var sum float64
		for _, n := range nodes {
			sum += counterValue(t, n.svc.metrics.conflictRedos)
		}
		return sum
	}
	before := redos()
	const rounds = 40
	seqs := map[int64]string{}
	for i := 0; i < rounds; i++ {
		v, a := fmt.Sprint("q", i+1), fmt.Sprint("r", i+1)
		vis.send(map[string]any{"type": "send", "client_id": v, "conversation_id": conv, "text": "question " + v})
		agent.send(map[string]any{"type": "send", "client_id": a, "conversation_id": conv, "text": "answer " + a})
		for _, ack := range []frame{vis.expect("ack", byClient(v)), agent.expect("ack", byClient(a))} {
			seq := ack.num("seq")
			if other, dup := seqs[seq]; dup {
				t.Fatalf("seq %d given to %s and %s", seq, other, ack.str("client_id"))
			}
			seqs[seq] = ack.str("client_id")
		}
	}
	for seq := int64(2); seq <= 2*rounds+1; seq++ {
		if _, ok := seqs[seq]; !ok {
			t.Fatalf("no message has seq %d: %v", seq, seqs)
		}
	}
	// A staff member's status change names its conversation too: a
	// visitor writing on node 1 while the agent marks the conversation
	// pending or open through node 2 makes neither redo.
	for i := 0; i < 10; i++ {
		v := fmt.Sprint("s", i+1)
		vis.send(map[string]any{"type": "send", "client_id": v, "conversation_id": conv, "text": "still there? " + v})
		grace.call("POST", "/api/chat/conversations/"+conv+"/status", map[string]string{"status": []string{StatusPending, StatusOpen}[i%2]}, 200, nil)
		vis.expect("ack", byClient(v))
	}
	// Without the lock every round loses a race (40 redos). With it, only
	// a wait longer than the store's lock timeout (200 ms, a very loaded
	// machine) ends in a redo.
	if n := redos() - before; n > rounds/10 {
		t.Fatalf("%v of %d rounds' batches were redone after losing a race across nodes; want (nearly) none", n, rounds+10)
	}
}

// A conversation another node's transaction holds does not hold up the
// rest of a batch: its operation waits for the next batch while the
// others commit, with no batch redone.
func TestBusyConversationWaitsForTheNextBatchAlone(t *testing.T) {
	ctx := context.Background()
	e := newClusterEnvs(t, 1)[0]
	w := e.svc.writer
	for _, id := range []string{"busy", "free"} {
		mustTx(t, e.store, func(tx ChatTx) error {
			return tx.InsertConversation(ctx, &convState{ID: id, SiteID: e.site.ID, VisitorID: "v-" + id, Channel: "widget",
				Status: StatusOpen, Routing: RoutingQueued, CreatedAt: 1, UpdatedAt: 1})
		})
	}
	redosBefore := counterValue(t, e.svc.metrics.conflictRedos)
	holder := holdConversations(t, e.store, "busy") // another node's transaction

	// Hold the writer in a batch of its own so the next two operations
	// queue up and form one batch.
	gate := make(chan struct{})
	w.submit(ctx, &op{fn: func(*wtx) error { <-gate; return nil }})
	preview := func(id string) func(t *wtx) error {
		return func(t *wtx) error {
			c, err := t.conv(id)
			if err != nil {
				return err
			}
			c.LastPreview = "written by " + id
			t.put(c)
			return nil
		}
	}
	busyDone, freeDone := make(chan error, 1), make(chan error, 1)
	var redosAtFree float64
	w.submit(ctx, &op{conv: "busy", kind: opRead, fn: preview("busy"), done: func(err error) { busyDone <- err }})
	w.submit(ctx, &op{conv: "free", fn: preview("free"), done: func(err error) {
		redosAtFree = counterValue(t, e.svc.metrics.conflictRedos)
		freeDone <- err
	}})
	poll(t, "both operations queued", 10*time.Second, func() bool { return len(w.ops) == 2 })
	close(gate)

	if err := receiveWithin(t, freeDone, 20*time.Second, "the operation on the free conversation (it waited for the busy one)"); err != nil {
		t.Fatalf("operation on the free conversation: %v", err)
	}
	if redosAtFree != redosBefore {
		t.Fatalf("%v batches were redone before the free conversation's operation committed; want none", redosAtFree-redosBefore)
	}
	select {
	case err := <-busyDone:
		t.Fatalf("the busy conversation's operation finished (%v) while another transaction held it", err)
	default:
	}
	if n := counterValue(t, e.svc.metrics.deferredOps.WithLabelValues(opRead)); n < 1 {
		t.Fatalf(`parley_chat_deferred_ops_total{kind="read"} = %v, want at least 1`, n)
	}

	holder.Rollback(ctx)
	if err := receiveWithin(t, busyDone, 20*time.Second, "the busy conversation's operation once released"); err != nil {
		t.Fatalf("operation on the busy conversation once released: %v", err)
	}
	c, err := e.store.Conversation(ctx, "busy")
	if err != nil || c.LastPreview != "written by busy" {
		t.Fatalf("busy conversation = %+v, %v", c, err)
	}
}

// receiveWithin returns what ch gives within d, and fails t when it gives nothing.
func receiveWithin(t *testing.T, ch <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s: nothing after %s", what, d)
		return nil
	}
}
