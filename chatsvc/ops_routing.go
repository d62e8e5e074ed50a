package chatsvc

import (
	"context"
	"sort"

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
	if !ok || c.AwaySent || site.Settings.Bot.AwayMessage == "" {
		return nil
	}
	if site.OpenAt(t.now) && t.w.s.hub.anyAvailable(c.TeamID) {
		return nil
	}
	c.AwaySent = true
	m, err := t.insertMessage(c, Message{Author: t.w.s.botAuthor(site), Kind: ingest.KindText, Text: site.Settings.Bot.AwayMessage, Status: MsgVisible}, nil)
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
		if c.Status == StatusResolved && reason == "timeout" {
			return nil
		}
		t.put(c)
		_, err = t.emit(ingest.VisitorLeft, c, ingest.Actor{Role: ingest.RoleVisitor, ID: visitorID}, &ingest.VisitorLeftPayload{Reason: reason})
		return err
	}
}

// agentOfflineOp sends the open conversations of an agent who went offline back to the queue.
func (s *Service) agentOfflineOp(agentID string) func(t *wtx) error {
	return func(t *wtx) error {
		var ids []string
		for id, c := range t.w.convs {
			if c.Assignee == agentID && c.Status != StatusResolved && c.Routing == RoutingAssigned {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			c, err := t.conv(id)
			if err != nil {
				return err
			}
			if c.Assignee != agentID {
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

// dispatch assigns queued conversations to online agents with room,
// round robin, until nobody can take the next one.
func (w *writer) dispatch(ctx context.Context) {
	if w.queueDirty {
		if eff := w.rebuildQueue(); len(eff) > 0 {
			w.fan <- eff
		}
	}
	if len(w.queue) == 0 {
		return
	}
	agents := w.s.hub.availableAgents()
	if len(agents) == 0 {
		return
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].ID < agents[j].ID })
	load := make(map[string]int, len(w.load))
	for a, n := range w.load {
		load[a] = n
	}
	type pick struct{ conv, agent string }
	var picks []pick
	last := w.rrLast
	for _, id := range w.queue {
		c := w.convs[id]
		limit := w.s.cfg.AgentLimit
		if site, ok := w.s.sites.get(c.SiteID); ok {
			limit = site.agentLimit(limit)
		}
		start := sort.Search(len(agents), func(i int) bool { return agents[i].ID > last })
		for k := 0; k < len(agents); k++ {
			a := agents[(start+k)%len(agents)]
			if c.TeamID != "" && a.TeamID != c.TeamID {
				continue
			}
			if load[a.ID] >= limit {
				continue
			}
			picks = append(picks, pick{id, a.ID})
			load[a.ID]++
			last = a.ID
			break
		}
	}
	if len(picks) == 0 {
		return
	}
	w.rrLast = last
	ops := make([]*op, 0, len(picks))
	for _, p := range picks {
		p := p
		ops = append(ops, &op{fn: func(t *wtx) error {
			c, err := t.conv(p.conv)
			if err != nil {
				return err
			}
			if c.Routing != RoutingQueued || c.Status == StatusResolved {
				return nil
			}
			if err := t.assign(c, p.agent, "auto", Author{}); err != nil {
				return err
			}
			t.announce(c)
			return nil
		}})
	}
	w.runBatch(ctx, ops)
}
