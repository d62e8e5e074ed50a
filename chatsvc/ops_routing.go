package chatsvc

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/parleychat/parley/ingest"
)

var systemActor = ingest.Actor{Role: ingest.RoleSystem, ID: "chatsvc"}

// enqueue puts c in the waiting queue with a conversation.queued event and,
// when nobody can answer soon, the site's away message.
func (t *wtx) enqueue(c *convState, reason string) error {
	c.Routing, c.Assignee, c.QueuedAt = RoutingQueued, "", nowMs(t.now)
	t.put(c)
	t.queued = true
	pos := 1
	for _, id := range t.w.queue {
		if q, ok := t.w.convs[id]; ok && q.TeamID == c.TeamID && id != c.ID {
			pos++
		}
	}
	if _, err := t.emit(ingest.ConversationQueued, c, systemActor, &ingest.ConversationQueuedPayload{Reason: reason, Position: pos, TeamID: c.TeamID}); err != nil {
		return err
	}
	site, ok := t.w.s.sites.get(c.SiteID)
	if !ok || c.AwaySent {
		return nil
	}
	away := site.Settings.texts(t.w.s.visitorLang(site, c.VisitorID)).AwayMessage
	if away == "" || site.OpenAt(t.now) && t.w.s.hub.anyAvailable(c.TeamID) {
		return nil
	}
	c.AwaySent = true
	m, err := t.insertMessage(c, Message{Author: t.w.s.botAuthor(site), Kind: ingest.KindText, Text: away, Status: MsgVisible}, nil)
	if err != nil {
		return err
	}
	t.deliver(c, m, nil)
	return nil
}

// reopen makes a resolved conversation open again.
func (t *wtx) reopen(c *convState, by Author) error {
	reason := "agent"
	if by.Role == string(ingest.RoleVisitor) {
		reason = "visitor_message"
	}
	c.Status, c.ResolvedAt, c.UpdatedAt = StatusOpen, 0, nowMs(t.now)
	c.CSATRating, c.CSATComment, c.CSATAt = 0, "", 0
	t.put(c)
	if _, err := t.emit(ingest.ConversationReopened, c, eventActor(by), &ingest.ConversationReopenedPayload{Reason: reason}); err != nil {
		return err
	}
	if c.Routing == RoutingAssigned && c.Assignee != "" && t.w.s.hub.agentStatus(c.Assignee) != StatusOffline {
		return nil
	}
	if by.Role == string(ingest.RoleAgent) {
		return nil // the agent's own message assigns it to them
	}
	if c.Routing == RoutingBot {
		return nil
	}
	return t.enqueue(c, "reopened")
}

// assign gives c to agentID with a conversation.assigned event.
func (t *wtx) assign(c *convState, agentID, reason string, by Author) error {
	c.Routing, c.Assignee, c.UpdatedAt = RoutingAssigned, agentID, nowMs(t.now)
	t.put(c)
	actor := systemActor
	if by.ID != "" {
		actor = eventActor(by)
	}
	_, err := t.emit(ingest.ConversationAssigned, c, actor, &ingest.ConversationAssignedPayload{AgentID: agentID, TeamID: c.TeamID, Reason: reason})
	return err
}

// assignOp is a manual assignment; empty agentID sends c back to the queue.
func (s *Service) assignOp(convID, agentID string, by Author, out *Conversation) func(t *wtx) error {
	return func(t *wtx) error {
		c, err := t.conv(convID)
		if err != nil {
			return err
		}
		if c.Status == StatusResolved {
			return errf(CodeConflict, "conversation %s is resolved; reopen it first", convID)
		}
		if err := mayAct(c, &by); err != nil {
			return err
		}
		t.put(c)
		if agentID == "" {
			if err := t.enqueue(c, "manual"); err != nil {
				return err
			}
		} else if agentID != c.Assignee {
			if err := t.assign(c, agentID, "manual", by); err != nil {
				return err
			}
		}
		t.announce(c)
		v, _ := t.visitor(c.VisitorID)
		*out = s.summary(c, v)
		return nil
	}
}

// transferOp moves c to another agent or to a team's queue, keeping the
// note as a private note.
func (s *Service) transferOp(convID string, by Author, toAgent, toTeam, note string, out *Conversation) func(t *wtx) error {
	return func(t *wtx) error {
		c, err := t.conv(convID)
		if err != nil {
			return err
		}
		if c.Status == StatusResolved {
			return errf(CodeConflict, "conversation %s is resolved; reopen it first", convID)
		}
		if err := mayAct(c, &by); err != nil {
			return err
		}
		t.put(c)
		from := c.Assignee
		if _, err := t.emit(ingest.ConversationTransferred, c, eventActor(by), &ingest.ConversationTransferredPayload{
			FromAgentID: from, ToAgentID: toAgent, ToTeamID: toTeam, Note: note,
		}); err != nil {
			return err
		}
		if toTeam != "" {
			c.TeamID = toTeam
		}
		if toAgent != "" {
			if err := t.assign(c, toAgent, "transfer", by); err != nil {
				return err
			}
		} else if err := t.enqueue(c, "transfer"); err != nil {
			return err
		}
		if note != "" {
			m, err := t.insertMessage(c, Message{Author: by, Kind: ingest.KindNote, Text: note, Status: MsgVisible}, nil)
			if err != nil {
				return err
			}
			t.deliver(c, m, nil)
		}
		t.announce(c)
		v, _ := t.visitor(c.VisitorID)
		*out = s.summary(c, v)
		return nil
	}
}

// statusOp resolves, reopens or sets a conversation pending.
func (s *Service) statusOp(convID string, by Author, status string, out *Conversation) func(t *wtx) error {
	return func(t *wtx) error {
		c, err := t.conv(convID)
		if err != nil {
			return err
		}
		if err := mayAct(c, &by); err != nil {
			return err
		}
		t.put(c)
		if err := t.setStatus(c, by, status, "agent"); err != nil {
			return err
		}
		v, _ := t.visitor(c.VisitorID)
		*out = s.summary(c, v)
		return nil
	}
}

func (t *wtx) setStatus(c *convState, by Author, status, reason string) error {
	if c.Status == status {
		return nil
	}
	switch status {
	case StatusResolved:
		c.Status, c.ResolvedAt, c.UpdatedAt = StatusResolved, nowMs(t.now), nowMs(t.now)
		if _, err := t.emit(ingest.ConversationResolved, c, eventActor(by), &ingest.ConversationResolvedPayload{Reason: reason}); err != nil {
			return err
		}
	case StatusOpen:
		if c.Status == StatusResolved {
			if err := t.reopen(c, by); err != nil {
				return err
			}
		}
		c.Status = StatusOpen
	case StatusPending:
		if c.Status == StatusResolved {
			return errf(CodeConflict, "conversation %s is resolved; reopen it first", c.ID)
		}
		c.Status = StatusPending
	default:
		return errf(CodeBadRequest, "status must be open, pending or resolved, not %q", status)
	}
	c.UpdatedAt = nowMs(t.now)
	t.queued = true // a resolved conversation frees a place; queue positions move
	t.announce(c)
	return nil
}

// readOp records that the reader has read up to upTo.
func (s *Service) readOp(by Author, convID string, upTo int64) func(t *wtx) error {
	return func(t *wtx) error {
		c, err := t.conv(convID)
		if err != nil {
			return err
		}
		isVisitor := by.Role == string(ingest.RoleVisitor)
		if isVisitor && c.VisitorID != by.ID {
			return errf(CodeNotFound, "conversation %s not found", convID)
		}
		if upTo < 1 || upTo > c.LastSeq {
			return errf(CodeBadRequest, "up_to_seq %d is not between 1 and %d", upTo, c.LastSeq)
		}
		if isVisitor && upTo <= c.VisitorReadSeq || !isVisitor && upTo <= c.AgentReadSeq {
			return nil // already known: idempotent
		}
		t.put(c)
		if isVisitor {
			c.VisitorReadSeq = upTo
		} else {
			c.AgentReadSeq = upTo
		}
		if _, err := t.emit(ingest.MessageRead, c, eventActor(by), &ingest.MessageReadPayload{UpToSeq: upTo}); err != nil {
			return err
		}
		frame := encode(receiptFrame{Type: "receipt", ConversationID: c.ID, Kind: "read", Role: by.Role, UpToSeq: upTo})
		meta := c.meta()
		t.after(func() {
			if isVisitor {
				s.hub.toConvAgents(c.ID, meta, frame, nil, nil)
			} else {
				s.hub.toVisitor(meta.VisitorID, frame, nil)
				s.hub.toConvAgents(c.ID, meta, frame, nil, nil)
			}
		})
		return nil
	}
}

// csatOp stores the visitor's rating of a resolved conversation.
func (s *Service) csatOp(visitorID, convID string, rating int, comment string) func(t *wtx) error {
	return func(t *wtx) error {
		c, err := t.conv(convID)
		if err != nil {
			return err
		}
		if c.VisitorID != visitorID {
			return errf(CodeNotFound, "conversation %s not found", convID)
		}
		if c.Status != StatusResolved {
			return errf(CodeConflict, "conversation %s is not resolved yet", convID)
		}
		if c.CSATRating != 0 {
			return errf(CodeConflict, "conversation %s already has a rating", convID)
		}
		if rating < 1 || rating > 5 {
			return errf(CodeBadRequest, "rating %d is not between 1 and 5", rating)
		}
		if len([]rune(comment)) > 2000 {
			return errf(CodeBadRequest, "comment is longer than 2000 characters")
		}
		t.put(c)
		c.CSATRating, c.CSATComment, c.CSATAt = rating, comment, nowMs(t.now)
		if _, err := t.emit(ingest.CSATSubmitted, c, ingest.Actor{Role: ingest.RoleVisitor, ID: visitorID}, &ingest.CSATSubmittedPayload{Rating: rating, Comment: comment}); err != nil {
			return err
		}
		t.announce(c)
		return nil
	}
}

// leaveOp records that the visitor left the conversation.
func (s *Service) leaveOp(visitorID, convID, reason string) func(t *wtx) error {
	return func(t *wtx) error {
		if convID == "" {
			id, err := t.currentConv(visitorID)
			if err != nil || id == "" {
				return err
			}
			convID = id
		}
		c, err := t.conv(convID)
		if err != nil {
			return err
		}
		if c.VisitorID != visitorID {
			return errf(CodeNotFound, "conversation %s not found", convID)
		}
		if c.Status == StatusResolved && reason == "timeout" || c.VisitorLeft {
			return nil // no change: nothing to report
		}
		c.VisitorLeft = true
		t.put(c)
		_, err = t.emit(ingest.VisitorLeft, c, ingest.Actor{Role: ingest.RoleVisitor, ID: visitorID}, &ingest.VisitorLeftPayload{Reason: reason})
		return err
	}
}

// agentOfflineOp sends the open conversations of an agent who went offline back to the queue.
func (s *Service) agentOfflineOp(agentID string) func(t *wtx) error {
	return func(t *wtx) error {
		ids, err := t.tx.AssignedConversations(t.ctx, agentID)
		if err != nil {
			return err
		}
		// Conversations this batch assigned to the agent are not stored yet.
		for id, c := range t.batch.convs {
			if c.Assignee == agentID && c.Status != StatusResolved && c.Routing == RoutingAssigned && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			c, err := t.conv(id)
			if err != nil {
				return err
			}
			if c.Assignee != agentID || c.Status == StatusResolved || c.Routing != RoutingAssigned {
				continue
			}
			if err := t.enqueue(c, "agent_offline"); err != nil {
				return err
			}
			t.announce(c)
		}
		return nil
	}
}

// agentCandidate is an agent the dispatcher may give a conversation to.
type agentCandidate struct {
	ID, TeamID string
}

// assignmentPick is one queued conversation given to one agent.
type assignmentPick struct{ conv, agent string }

// planAssignments gives queued conversations (in queue order) to agents
// with room, round robin after the agent last picked, until nobody can
// take the next one. A node alone plans from memory; a cluster's leader
// from the store. onSite says whether an agent works on a site (scope.go).
func planAssignments(queue []*convState, agents []agentCandidate, loads map[string]int, limitFor func(siteID string) int, onSite func(agentID, siteID string) bool, last string) ([]assignmentPick, string) {
	if len(queue) == 0 || len(agents) == 0 {
		return nil, last
	}
	agents = slices.Clone(agents)
	sort.Slice(agents, func(i, j int) bool { return agents[i].ID < agents[j].ID })
	load := make(map[string]int, len(loads))
	for a, n := range loads {
		load[a] = n
	}
	var picks []assignmentPick
	for _, c := range queue {
		limit := limitFor(c.SiteID)
		start := sort.Search(len(agents), func(i int) bool { return agents[i].ID > last })
		for k := 0; k < len(agents); k++ {
			a := agents[(start+k)%len(agents)]
			if c.TeamID != "" && a.TeamID != c.TeamID {
				continue
			}
			if !onSite(a.ID, c.SiteID) {
				continue
			}
			if load[a.ID] >= limit {
				continue
			}
			picks = append(picks, assignmentPick{c.ID, a.ID})
			load[a.ID]++
			last = a.ID
			break
		}
	}
	return picks, last
}

// agentLimitFor is how many conversations an agent takes at once on a site.
func (s *Service) agentLimitFor(siteID string) int {
	limit := s.cfg.AgentLimit
	if site, ok := s.sites.get(siteID); ok {
		limit = site.agentLimit(limit)
	}
	return limit
}

// autoAssign gives a still-queued conversation to an agent, as routing decided.
func (s *Service) autoAssign(t *wtx, convID, agentID string) error {
	c, err := t.conv(convID)
	if err != nil {
		return err
	}
	if c.Routing != RoutingQueued || c.Status == StatusResolved {
		return nil
	}
	if err := t.assign(c, agentID, "auto", Author{}); err != nil {
		return err
	}
	t.announce(c)
	return nil
}

// routingRetry is how soon routing runs again after a failed staff read.
const routingRetry = time.Second

// dispatch assigns queued conversations to online agents with room,
// round robin, until nobody can take the next one. In a cluster the
// leader routes instead (cluster.go), from every node's view.
func (w *writer) dispatch(ctx context.Context) {
	if w.s.cluster.enabled {
		return
	}
	if w.queueDirty {
		if eff := w.rebuildQueue(); len(eff) > 0 {
			w.fan <- eff
		}
	}
	if len(w.queue) == 0 {
		return
	}
	queue := make([]*convState, len(w.queue))
	for i, id := range w.queue {
		queue[i] = w.convs[id]
	}
	var lookupErr error
	onSite := func(agentID, siteID string) bool {
		ok, err := w.s.agentWorksOn(agentID, siteID)
		if err != nil && lookupErr == nil {
			lookupErr = err
		}
		return ok
	}
	picks, last := planAssignments(queue, w.s.hub.availableAgents(), w.load, w.s.agentLimitFor, onSite, w.rrLast)
	if lookupErr != nil {
		// Nothing else may wake the writer while the queue waits: try again soon.
		w.s.log.Warn("routing could not read a staff member; retrying", "err", lookupErr)
		time.AfterFunc(routingRetry, w.poke)
	}
	if len(picks) == 0 {
		return
	}
	w.rrLast = last
	ops := make([]*op, 0, len(picks))
	for _, p := range picks {
		p := p
		ops = append(ops, &op{fn: func(t *wtx) error { return w.s.autoAssign(t, p.conv, p.agent) }})
	}
	w.runBatch(ctx, ops)
}
