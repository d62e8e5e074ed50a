package chatsvc

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/parleychat/parley/access"
)

// Agent presence values.
const (
	StatusOnline  = "online"
	StatusAway    = "away"
	StatusOffline = "offline"
)

// AgentInfo is an agent's presence and load.
type AgentInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	TeamID string `json:"team_id"`
	Status string `json:"status"`
	Load   int    `json:"load"`
	Limit  int    `json:"limit"`
}

type presence struct {
	info   AgentInfo
	conns  int
	goneAt time.Time
}

// hub knows every connected socket and every agent's presence, and routes
// frames to them. It never blocks on a socket.
type hub struct {
	s  *Service
	mu sync.RWMutex
	// visitors holds each visitor's sockets on this node: usually one, so a
	// slice (8 bytes) rather than a set (a map of its own per visitor).
	visitors    map[string][]*client
	agents      map[*client]struct{}
	presence    map[string]*presence
	visitorGone map[string]time.Time
	loads       map[string]int
	// presenceChanged tells the cluster to report this node's agents now.
	presenceChanged chan struct{}
}

func newHub(s *Service) *hub {
	return &hub{
		s: s, visitors: map[string][]*client{}, agents: map[*client]struct{}{},
		presence: map[string]*presence{}, visitorGone: map[string]time.Time{}, loads: map[string]int{},
		presenceChanged: make(chan struct{}, 1),
	}
}

func (h *hub) addVisitor(c *client) {
	h.mu.Lock()
	h.visitors[c.visitorID] = append(h.visitors[c.visitorID], c)
	delete(h.visitorGone, c.visitorID)
	h.mu.Unlock()
	h.s.metrics.connections.WithLabelValues("visitor").Inc()
	// A node the visitor left must not record them as gone.
	h.s.cluster.publish(c.visitorID, busMessage{Kind: busVisitorHere, Visitor: c.visitorID})
}

// visitorReturned cancels a pending visitor.left: the visitor connected
// to another node.
func (h *hub) visitorReturned(visitorID string) {
	h.mu.Lock()
	delete(h.visitorGone, visitorID)
	h.mu.Unlock()
}

func (h *hub) removeVisitor(c *client) {
	h.mu.Lock()
	if set := h.visitors[c.visitorID]; set != nil {
		set = slices.DeleteFunc(set, func(o *client) bool { return o == c })
		if len(set) == 0 {
			delete(h.visitors, c.visitorID)
			h.visitorGone[c.visitorID] = time.Now()
		} else {
			h.visitors[c.visitorID] = set
		}
	}
	h.mu.Unlock()
	h.s.metrics.connections.WithLabelValues("visitor").Dec()
}

// addAgent registers an agent socket; the agent becomes online unless they
// chose away.
func (h *hub) addAgent(c *client) AgentInfo {
	h.mu.Lock()
	h.agents[c] = struct{}{}
	p := h.presence[c.user.ID]
	if p == nil {
		p = &presence{info: AgentInfo{ID: c.user.ID, Status: StatusOffline}}
		h.presence[c.user.ID] = p
	}
	p.info.Name, p.info.TeamID = c.user.Name, c.user.TeamID
	p.conns++
	var change *presenceChange
	if p.info.Status == StatusOffline {
		p.info.Status = StatusOnline
		change = &presenceChange{AgentID: c.user.ID, Status: StatusOnline, Previous: StatusOffline, At: time.Now()}
	}
	info := h.infoLocked(p)
	h.mu.Unlock()
	h.s.metrics.connections.WithLabelValues("agent").Inc()
	h.s.rememberAgent(c.user)
	if change != nil {
		h.presenceChange(*change, info)
	}
	h.s.writer.poke()
	if v, ok := h.s.cluster.agentView(c.user.ID); ok {
		return v
	}
	return info
}

// presenceChange applies a change of a local agent's presence: a node
// alone records it and tells its agents at once; in a cluster the leader
// decides from every node's reports, so this node only reports sooner.
func (h *hub) presenceChange(ch presenceChange, info AgentInfo) {
	if h.s.cluster.enabled {
		select {
		case h.presenceChanged <- struct{}{}:
		default:
		}
		return
	}
	h.broadcastPresenceHere(info)
	// Going offline also returns the agent's conversations to the queue.
	h.s.writer.submit(context.Background(), &op{fn: h.s.presenceOp(ch)})
}

func (h *hub) removeAgent(c *client) {
	h.mu.Lock()
	delete(h.agents, c)
	if p := h.presence[c.user.ID]; p != nil {
		p.conns--
		if p.conns == 0 {
			p.goneAt = time.Now()
		}
	}
	h.mu.Unlock()
	h.s.metrics.connections.WithLabelValues("agent").Dec()
}

// setPresence records an agent's choice; offline returns their conversations to the queue.
func (h *hub) setPresence(userID, status string) AgentInfo {
	h.mu.Lock()
	p := h.presence[userID]
	if p == nil {
		h.mu.Unlock()
		return AgentInfo{}
	}
	change := presenceChange{AgentID: userID, Status: status, Previous: p.info.Status, At: time.Now()}
	changed := p.info.Status != status
	p.info.Status = status
	info := h.infoLocked(p)
	h.mu.Unlock()
	if changed {
		// The agent's other nodes adopt the choice too.
		h.s.cluster.publish("presence:"+userID, busMessage{Kind: busChoice, User: userID, Status: status})
		h.presenceChange(change, info)
		h.s.writer.poke()
	}
	return info
}

// adoptChoice applies a status an agent chose on another node to their
// sockets here.
func (h *hub) adoptChoice(userID, status string) {
	h.mu.Lock()
	p := h.presence[userID]
	changed := p != nil && p.info.Status != status
	if changed {
		p.info.Status = status
	}
	h.mu.Unlock()
	if changed {
		select {
		case h.presenceChanged <- struct{}{}:
		default:
		}
	}
}

// localPresence is what this node reports about its agents: those with a
// socket here, or gone less than the grace period, unless offline.
func (h *hub) localPresence() []NodePresence {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]NodePresence, 0, len(h.presence))
	for id, p := range h.presence {
		if p.info.Status == StatusOffline {
			continue
		}
		out = append(out, NodePresence{AgentID: id, Status: p.info.Status, TeamID: p.info.TeamID, Name: p.info.Name})
	}
	return out
}

// sweep ends the presence of agents gone longer than the grace period and
// records visitor.left for visitors gone that long.
func (h *hub) sweep(ctx context.Context, now time.Time) {
	var offline []AgentInfo
	var changes []presenceChange
	var left []string
	h.mu.Lock()
	for id, p := range h.presence {
		if p.conns == 0 && p.info.Status != StatusOffline && now.Sub(p.goneAt) >= h.s.cfg.AgentOfflineGrace {
			changes = append(changes, presenceChange{AgentID: id, Status: StatusOffline, Previous: p.info.Status, At: time.Now()})
			p.info.Status = StatusOffline
			offline = append(offline, h.infoLocked(p))
		}
	}
	for v, at := range h.visitorGone {
		if now.Sub(at) >= h.s.cfg.VisitorLeftGrace {
			left = append(left, v)
			delete(h.visitorGone, v)
		}
	}
	h.mu.Unlock()
	for i, info := range offline {
		h.presenceChange(changes[i], info)
	}
	for _, v := range left {
		h.s.writer.submit(ctx, &op{fn: h.s.leaveOp(v, "", "timeout")})
	}
}

func (h *hub) infoLocked(p *presence) AgentInfo {
	info := p.info
	info.Load = h.loads[info.ID]
	info.Limit = h.s.cfg.AgentLimit
	return info
}

// setLoads stores the writer's agent loads and returns effects that tell
// agents about the changed ones (all when changed is nil).
func (h *hub) setLoads(loads map[string]int, changed map[string]bool) []func() {
	h.mu.Lock()
	var infos []AgentInfo
	if changed == nil {
		h.loads = make(map[string]int, len(loads))
		for a, n := range loads {
			h.loads[a] = n
		}
	} else {
		for a := range changed {
			h.loads[a] = loads[a]
			if p := h.presence[a]; p != nil {
				infos = append(infos, h.infoLocked(p))
			}
		}
	}
	h.mu.Unlock()
	var effects []func()
	if h.s.cluster.enabled {
		return nil // the leader tells every node about loads with presence
	}
	for _, info := range infos {
		info := info
		effects = append(effects, func() { h.broadcastPresenceHere(info) })
	}
	return effects
}

// broadcastPresenceHere tells this node's agents who share a site with
// an agent about its presence.
func (h *hub) broadcastPresenceHere(info AgentInfo) {
	b := encode(presenceFrame{Type: "presence", Agent: info})
	h.mu.RLock()
	viewers := make([]*client, 0, len(h.agents))
	for c := range h.agents {
		viewers = append(viewers, c)
	}
	h.mu.RUnlock()
	for _, c := range viewers {
		if h.s.presenceScope.sees(c.user, info.ID) {
			c.enqueue(b)
		}
	}
}

// agentInfosFor returns the presence of the agents viewer may see.
func (h *hub) agentInfosFor(viewer access.User) []AgentInfo {
	all := h.agentInfos()
	out := all[:0]
	for _, a := range all {
		if h.s.presenceScope.sees(viewer, a.ID) {
			out = append(out, a)
		}
	}
	return out
}

// agentInfos returns every known agent's presence, sorted by name: this
// node's, or every node's in a cluster.
func (h *hub) agentInfos() []AgentInfo {
	var out []AgentInfo
	if h.s.cluster.enabled {
		out = h.s.cluster.agentViews()
	} else {
		h.mu.RLock()
		out = make([]AgentInfo, 0, len(h.presence))
		for _, p := range h.presence {
			out = append(out, h.infoLocked(p))
		}
		h.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].ID < out[j].ID
	})
	return out
}

func (h *hub) agentInfo(id string) (AgentInfo, bool) {
	if h.s.cluster.enabled {
		if v, ok := h.s.cluster.agentView(id); ok {
			return v, true
		}
		return AgentInfo{ID: id, Status: StatusOffline, Limit: h.s.cfg.AgentLimit}, false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	p, ok := h.presence[id]
	if !ok {
		return AgentInfo{ID: id, Status: StatusOffline, Load: h.loads[id], Limit: h.s.cfg.AgentLimit}, false
	}
	return h.infoLocked(p), true
}

func (h *hub) agentStatus(id string) string {
	info, _ := h.agentInfo(id)
	return info.Status
}

// availableAgents are online agents with a live socket (on any node, in
// a cluster).
func (h *hub) availableAgents() []agentCandidate {
	if h.s.cluster.enabled {
		var out []agentCandidate
		for _, a := range h.s.cluster.agentViews() {
			if a.Status == StatusOnline {
				out = append(out, agentCandidate{ID: a.ID, TeamID: a.TeamID})
			}
		}
		return out
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []agentCandidate
	for _, p := range h.presence {
		if p.info.Status == StatusOnline && p.conns > 0 {
			out = append(out, agentCandidate{ID: p.info.ID, TeamID: p.info.TeamID})
		}
	}
	return out
}

// anyAvailable reports whether an online agent (of team, when set) exists.
func (h *hub) anyAvailable(team string) bool {
	for _, a := range h.availableAgents() {
		if team == "" || a.TeamID == team {
			return true
		}
	}
	return false
}

// toVisitor delivers a frame to a visitor's sockets on every node.
func (h *hub) toVisitor(visitorID string, b []byte, except *client) {
	h.deliverVisitor(visitorID, b, except)
	h.s.cluster.publish(visitorID, busMessage{Kind: busVisitor, Visitor: visitorID, Frame: b})
}

// deliverVisitor delivers a frame to a visitor's sockets on this node.
func (h *hub) deliverVisitor(visitorID string, b []byte, except *client) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.visitors[visitorID] {
		if c != except {
			c.enqueue(b)
		}
	}
}

// closeVisitor sends a last frame to a visitor's sockets on every node
// and closes them.
func (h *hub) closeVisitor(visitorID string, b []byte, code int, reason string) {
	h.closeVisitorHere(visitorID, b, code, reason)
	h.s.cluster.publish(visitorID, busMessage{Kind: busCloseVisitor, Visitor: visitorID, Frame: b, Code: code, Reason: reason})
}

func (h *hub) closeVisitorHere(visitorID string, b []byte, code int, reason string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.visitors[visitorID] {
		c.enqueue(b)
		c.close(code, reason)
	}
}

// toConvAgents routes a frame about a conversation to agents on every
// node: followers (subscribed or assignee) get msg when it is set;
// everyone else whose inbox scope covers the conversation gets summary()
// when it is set (followers too when msg is nil).
func (h *hub) toConvAgents(convID string, meta convMeta, msg []byte, summary func() []byte, except *client) {
	h.deliverConvAgents(convID, meta, msg, summary, except)
	if h.s.cluster.enabled {
		m := busMessage{Kind: busConversation, Conversation: convID, Meta: &meta, Frame: msg}
		if summary != nil {
			m.Summary = summary()
		}
		h.s.cluster.publish(convID, m)
	}
}

func (h *hub) deliverConvAgents(convID string, meta convMeta, msg []byte, summary func() []byte, except *client) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.agents {
		if c == except {
			continue
		}
		if !c.user.OnSite(meta.SiteID) {
			continue // staff see only their sites' conversations
		}
		follows := c.subs[convID] || (meta.Assignee != "" && meta.Assignee == c.user.ID)
		switch {
		case follows && msg != nil:
			c.enqueue(msg)
		case summary != nil && (follows || c.inScope(meta)):
			c.enqueue(summary())
		}
	}
}

func (c *client) inScope(meta convMeta) bool {
	if c.scope == "all" {
		return true
	}
	return meta.Assignee == "" || meta.Assignee == c.user.ID
}

func (h *hub) subscribe(c *client, convID string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if on {
		if c.subs == nil {
			c.subs = map[string]bool{}
		}
		if len(c.subs) < 500 {
			c.subs[convID] = true
		}
	} else {
		delete(c.subs, convID)
	}
}

func (h *hub) setScope(c *client, scope string) {
	h.mu.Lock()
	c.scope = scope
	h.mu.Unlock()
}

func (h *hub) visitorOnline(visitorID string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.visitors[visitorID]) > 0
}

// agentsOf returns the staff users currently connected.
func (h *hub) connectedUsers() map[string]access.User {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := map[string]access.User{}
	for c := range h.agents {
		out[c.user.ID] = c.user
	}
	return out
}

// visitorLang is the language of one of the visitor's open sockets, or ""
// when the visitor is not connected.
func (h *hub) visitorLang(visitorID string) string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.visitors[visitorID] {
		if c.lang != "" {
			return c.lang
		}
	}
	return ""
}

// closeUserHere closes every socket a staff user has on this node.
func (h *hub) closeUserHere(userID string, code int, reason string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.agents {
		if c.user.ID == userID {
			h.s.forgetStaff(userID) // routing reads the user's sites afresh (scope.go)
			// The console learns why before the close (staff_sockets.go).
			c.enqueue(encode(sessionEndedFrame{Type: "session_ended", Reason: reason}))
			c.close(code, reason)
		}
	}
}
