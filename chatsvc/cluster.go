package chatsvc

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// cluster is what a chat node does about the other nodes of its
// deployment. With a shared store (PostgreSQL) and a distributed Broker,
// every node publishes what the sockets of other nodes must see, applies
// what they publish, reports its agents' presence to the store, and one
// node at a time (the leader, under a lock the store holds) decides
// agents' presence across nodes and routes the queue. A node that runs
// alone (enabled false) keeps all of that in memory, as before.
type cluster struct {
	s       *Service
	broker  Broker
	enabled bool
	node    string

	mu sync.RWMutex
	// agents is every agent's presence across nodes as the leader last
	// said (enabled only).
	agents map[string]AgentInfo

	kick chan struct{} // wakes the leader
}

// Timing of presence across nodes.
const (
	// presenceBeat is how often a node reports its agents to the store.
	presenceBeat = 3 * time.Second
	// presenceTTL is how long a report counts: a node that stops
	// reporting (crashed) loses its agents after this long.
	presenceTTL = 12 * time.Second
	// leadEvery is how often the leader looks even when not woken, and a
	// follower tries to lead.
	leadEvery = 500 * time.Millisecond
	// sitesEvery reloads sites as a backstop for a missed busSites.
	sitesEvery = 30 * time.Second
	// leaderRefresh is how often the leader publishes every agent's
	// presence and the queue positions again, changed or not: the live
	// bus is at most once, and a node that missed a change would
	// otherwise keep a stale view until the next one. Nodes tell their
	// sockets only what differs from their view.
	leaderRefresh = 10 * time.Second
)

func newCluster(s *Service, broker Broker) *cluster {
	// Presence reports are keyed by this process, not only its name: two
	// processes given one --node-id must not overwrite each other.
	c := &cluster{s: s, broker: broker, node: s.cfg.NodeID + "#" + randomHex(4), agents: map[string]AgentInfo{}, kick: make(chan struct{}, 1)}
	if broker == nil {
		c.broker = localBroker{}
	} else {
		c.enabled = true
	}
	return c
}

// publish tells the other nodes; a node alone skips the encoding.
func (c *cluster) publish(key string, m busMessage) {
	if !c.enabled {
		return
	}
	b, err := encodeBusMessage(m)
	if err != nil {
		c.s.log.Error("encode bus message", "kind", m.Kind, "err", err)
		return
	}
	if err := c.broker.Publish(context.Background(), key, b); err != nil {
		c.s.log.Warn("publish to other nodes", "kind", m.Kind, "err", err)
	}
}

// receive applies what another node published.
func (c *cluster) receive(payload []byte) {
	m, err := decodeBusMessage(payload)
	if err != nil {
		c.s.log.Warn("undecodable bus message", "err", err)
		return
	}
	h := c.s.hub
	switch m.Kind {
	case busVisitor:
		h.deliverVisitor(m.Visitor, m.Frame, nil)
	case busConversation:
		if m.Meta == nil {
			return
		}
		// Another node changed the conversation: what this node cached of
		// it may be stale (a write would find out and redo; reads should
		// not wait for that).
		c.s.publishMeta(map[string]convMeta{m.Conversation: *m.Meta})
		c.s.writer.forget(m.Conversation)
		var summary func() []byte
		if m.Summary != nil {
			summary = func() []byte { return m.Summary }
		}
		var msg []byte
		if m.Frame != nil {
			msg = m.Frame
		}
		h.deliverConvAgents(m.Conversation, *m.Meta, msg, summary, nil)
	case busCloseVisitor:
		h.closeVisitorHere(m.Visitor, m.Frame, m.Code, m.Reason)
	case busPresence:
		if m.Agent != nil && c.setAgent(*m.Agent) {
			h.broadcastPresenceHere(*m.Agent)
		}
	case busChoice:
		h.adoptChoice(m.User, m.Status)
	case busPositions:
		c.s.applyPositions(m.Positions, m.PositionVisitors)
	case busSites:
		if err := c.s.sites.load(context.Background()); err != nil {
			c.s.log.Warn("reload sites", "err", err)
		}
	case busRoute:
		c.wake()
	case busVisitorHere:
		h.visitorReturned(m.Visitor)
	}
}

func (c *cluster) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// route asks the leader (maybe this node) to route now.
func (c *cluster) route() {
	if !c.enabled {
		return
	}
	c.wake()
	c.publish("route", busMessage{Kind: busRoute})
}

// setAgent adopts the leader's word on an agent's presence and reports
// whether this node's view changed (its sockets are told only then).
func (c *cluster) setAgent(info AgentInfo) (changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, had := c.agents[info.ID]
	if info.Status == StatusOffline {
		delete(c.agents, info.ID)
		return had
	}
	c.agents[info.ID] = info
	return !had || prev != info
}

// agentView returns an agent's presence across nodes.
func (c *cluster) agentView(id string) (AgentInfo, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.agents[id]
	return a, ok
}

func (c *cluster) agentViews() []AgentInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]AgentInfo, 0, len(c.agents))
	for _, a := range c.agents {
		out = append(out, a)
	}
	return out
}

// run subscribes to the other nodes, reports presence, reloads sites as a
// backstop, and leads when it can, until ctx ends.
func (c *cluster) run(ctx context.Context) {
	if !c.enabled {
		return
	}
	var done <-chan struct{}
	for {
		var err error
		if done, err = c.broker.Subscribe(ctx, c.receive); err == nil {
			break
		}
		c.s.log.Warn("subscribe to other nodes; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.reportPresence(ctx) }()
	go func() { defer wg.Done(); c.lead(ctx) }()
	sites := time.NewTicker(sitesEvery)
	defer sites.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			<-done
			return
		case <-sites.C:
			if err := c.s.sites.load(ctx); err != nil && ctx.Err() == nil {
				c.s.log.Warn("reload sites", "err", err)
			}
		}
	}
}

// reportPresence writes this node's agents to the store on every beat and
// whenever they change.
func (c *cluster) reportPresence(ctx context.Context) {
	t := time.NewTicker(presenceBeat)
	defer t.Stop()
	for {
		if err := c.s.store.ReportPresence(ctx, c.node, c.s.hub.localPresence(), time.Now()); err != nil && ctx.Err() == nil {
			c.s.log.Warn("report presence", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.s.hub.presenceChanged:
			c.wake() // the leader (maybe this node) re-decides at once
			c.publish("route", busMessage{Kind: busRoute})
		}
	}
}

// lead takes the leadership when nobody holds it and, while held, decides
// presence and routes on every kick and every leadEvery.
func (c *cluster) lead(ctx context.Context) {
	t := time.NewTicker(leadEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		lease, ok, err := c.s.store.TryLead(ctx, "router")
		if err != nil && ctx.Err() == nil {
			c.s.log.Warn("try to lead", "err", err)
		}
		if ok {
			c.s.log.Info("leading: routing and presence for every node")
			c.leadWhile(ctx, lease, t.C)
			lease.Release()
			c.s.log.Info("no longer leading")
			continue
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

func (c *cluster) leadWhile(ctx context.Context, lease Lease, tick <-chan time.Time) {
	r := &leader{c: c, last: map[string]AgentInfo{}}
	refreshed := time.Now()
	for {
		if time.Since(refreshed) >= leaderRefresh {
			refreshed = time.Now()
			r.last, r.pos = map[string]AgentInfo{}, nil
		}
		r.decidePresence(ctx)
		r.routeQueue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-lease.Lost():
			return
		case <-tick:
		case <-c.kick:
		}
	}
}

// leader holds what the current leadership decided so far.
type leader struct {
	c    *cluster
	last map[string]AgentInfo // presence as last broadcast
	rr   string               // round robin's last agent
	pos  map[string]int       // queue positions as last broadcast
}

// decidePresence turns the nodes' reports into each agent's presence:
// online when a node has them online, away when only away, offline when
// no node reports them (gone longer than the grace period, or on a node
// that died). A change is recorded with its agent.presence event, and an
// agent gone offline loses their conversations to the queue — in one
// transaction of the writer, so each change happens once.
func (r *leader) decidePresence(ctx context.Context) {
	s := r.c.s
	now := time.Now()
	reports, err := s.store.FreshPresence(ctx, now.Add(-presenceTTL))
	if err != nil {
		r.warn(ctx, "read presence", "err", err)
		return
	}
	recorded, err := s.store.AgentStatuses(ctx)
	if err != nil {
		r.warn(ctx, "read agent statuses", "err", err)
		return
	}
	loads, err := s.store.AgentLoads(ctx)
	if err != nil {
		r.warn(ctx, "read agent loads", "err", err)
		return
	}
	effective := map[string]AgentInfo{}
	for _, p := range reports {
		cur, ok := effective[p.AgentID]
		if !ok || p.Status == StatusOnline {
			effective[p.AgentID] = AgentInfo{ID: p.AgentID, Name: p.Name, TeamID: p.TeamID, Status: p.Status}
		} else if cur.Status != StatusOnline && p.Status == StatusAway {
			cur.Status = StatusAway
			effective[p.AgentID] = cur
		}
	}
	for id, st := range recorded {
		if _, ok := effective[id]; !ok && st != StatusOffline {
			effective[id] = AgentInfo{ID: id, Name: s.agentName(id), Status: StatusOffline}
		}
	}
	ids := make([]string, 0, len(effective))
	for id := range effective {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		info := effective[id]
		info.Load, info.Limit = loads[id], s.cfg.AgentLimit
		if rec := recorded[id]; rec != info.Status && !(rec == "" && info.Status == StatusOffline) {
			ch := presenceChange{AgentID: id, Status: info.Status, Previous: rec, At: now, Decided: true}
			if err := s.writer.do(ctx, s.presenceOp(ch)); err != nil {
				r.warn(ctx, "record presence", "agent", id, "err", err)
				continue
			}
		}
		if prev, ok := r.last[id]; ok && prev == info {
			continue
		}
		r.last[id] = info
		if r.c.setAgent(info) {
			s.hub.broadcastPresenceHere(info)
		}
		r.c.publish("presence:"+id, busMessage{Kind: busPresence, Agent: &info})
	}
}

// routeQueue gives queued conversations to online agents with room, round
// robin, as a node alone does from memory, but from the store's view of
// every node's conversations and agents.
func (r *leader) routeQueue(ctx context.Context) {
	s := r.c.s
	queue, err := s.store.QueuedConversations(ctx)
	if err != nil {
		r.warn(ctx, "read the queue", "err", err)
		return
	}
	loads, err := s.store.AgentLoads(ctx)
	if err != nil {
		r.warn(ctx, "read agent loads", "err", err)
		return
	}
	var agents []agentCandidate
	for _, a := range r.c.agentViews() {
		if a.Status == StatusOnline {
			agents = append(agents, agentCandidate{ID: a.ID, TeamID: a.TeamID})
		}
	}
	picks, last := planAssignments(queue, agents, loads, s.agentLimitFor, s.agentOnSite, r.rr)
	r.rr = last
	assigned := map[string]bool{}
	if len(picks) > 0 {
		if err := s.writer.do(ctx, func(t *wtx) error {
			for _, p := range picks {
				if err := s.autoAssign(t, p.conv, p.agent); err != nil {
					return err
				}
				assigned[p.conv] = true
			}
			return nil
		}); err != nil {
			r.warn(ctx, "assign queued conversations", "err", err)
			return
		}
	}
	// Positions count within a team's line (the whole queue for no team).
	pos := map[string]int{}
	visitors := map[string]string{}
	perTeam := map[string]int{}
	for _, c := range queue {
		if assigned[c.ID] {
			continue
		}
		perTeam[c.TeamID]++
		pos[c.ID] = perTeam[c.TeamID]
		visitors[c.ID] = c.VisitorID
	}
	if mapsEqual(pos, r.pos) {
		return
	}
	r.pos = pos
	s.applyPositions(pos, visitors)
	r.c.publish("positions", busMessage{Kind: busPositions, Positions: pos, PositionVisitors: visitors})
}

// warn logs a failed step of the leader's round, except when the round
// was cut short by shutdown.
func (r *leader) warn(ctx context.Context, msg string, args ...any) {
	if ctx.Err() == nil {
		r.c.s.log.Warn(msg, args...)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// applyPositions adopts the leader's queue positions and tells this node's
// visitors whose position changed.
func (s *Service) applyPositions(pos map[string]int, visitors map[string]string) {
	s.posMu.Lock()
	old := s.queuePos
	s.queuePos = pos
	s.posMu.Unlock()
	for conv, p := range pos {
		if old[conv] != p {
			s.hub.deliverVisitor(visitors[conv], encode(queueFrame{Type: "queue", ConversationID: conv, Position: p}), nil)
		}
	}
}

// closeCode is the close code for a staff socket whose access ended.
const closeCode = websocket.ClosePolicyViolation

// CloseUserSockets closes every socket a staff user has open on this
// node: their access changed or their account is gone. cmd/parley tells
// every node (its live bus carries access changes for every role).
func (s *Service) CloseUserSockets(userID, reason string) {
	s.hub.closeUserHere(userID, closeCode, reason)
}
