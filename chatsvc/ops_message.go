package chatsvc

import (
	"errors"
	"strings"

	"github.com/parleychat/parley/ingest"
)

// startInfo describes the visitor when their message starts a conversation.
type startInfo struct {
	Name, Email, PageURL, Referrer, UserAgent string
	Fields                                    map[string]string
}

// sendReq is one message to store and deliver.
type sendReq struct {
	Author         Author
	SiteID         string
	ConversationID string
	ClientID       string
	Kind           string
	Text           string
	Attachments    []string
	Verdict        InlineVerdict
	// Channel of a conversation this message starts (widget by default);
	// offline_form always starts a new conversation.
	Channel string
	Start   startInfo
	// Origin is the connection that sent it; it gets the ack instead of the message.
	Origin *client
}

// sendResult is what the sender learns.
type sendResult struct {
	Msg        Message
	Duplicate  bool
	Redacted   bool
	Blocked    bool
	Reason     string
	Categories []string
}

func viewAttachments(list []ingest.Attachment) []AttachmentView {
	out := make([]AttachmentView, len(list))
	for i, a := range list {
		out[i] = AttachmentView{Attachment: a, URL: attachmentURL(a.ID, a.Name)}
	}
	return out
}

// sendOp stores a message (starting, reopening or assigning the
// conversation as needed) and delivers it after the commit.
func (s *Service) sendOp(req sendReq, done func(sendResult, error)) *op {
	var res sendResult
	return &op{
		conv: req.ConversationID, kind: opMessage,
		fn: func(t *wtx) error {
			res = sendResult{}
			// A client id is looked up first only for authors seen resending;
			// for everyone else the unique index on (author_id, client_id)
			// catches a resend and the writer redoes the batch with lookups
			// (see writer.runBatch).
			checked := req.ClientID != "" && t.w.checksClientIDs(req.Author.ID)
			if checked {
				if found, err := t.duplicate(req, &res); found || err != nil {
					return err
				}
			}
			err := t.send(req, &res)
			var fe *frameError
			if err != nil && req.ClientID != "" && !checked && errors.As(err, &fe) {
				// A resend of a stored message gets its ack, never a refusal.
				if found, lerr := t.duplicate(req, &res); found || lerr != nil {
					return lerr
				}
			}
			return err
		},
		done: func(err error) { done(res, err) },
	}
}

// duplicate looks for the message the author already sent with req's
// client id; found fills res with it.
func (t *wtx) duplicate(req sendReq, res *sendResult) (bool, error) {
	m, found, err := t.tx.MessageByClientID(t.ctx, req.Author.ID, req.ClientID)
	if err != nil || !found {
		return false, err
	}
	*res = sendResult{Msg: m, Duplicate: true, Blocked: m.Status == MsgBlocked, Reason: m.reason, Categories: m.categories}
	return true, nil
}

// send is sendOp's work once the client id is known to be new (or will be
// caught by the unique index).
func (t *wtx) send(req sendReq, res *sendResult) error {
	c, isNew, err := t.targetConv(req)
	if err != nil {
		return err
	}
	if req.Kind != ingest.KindNote {
		if err := mayAct(c, &req.Author); err != nil {
			return err
		}
	}
	if isNew && req.Verdict.Action == ingest.ActionBlock {
		// A blocked first message starts no conversation: nothing is
		// stored, queued or published; the sender is told it was blocked.
		res.Blocked, res.Reason, res.Categories = true, blockReason(req.Verdict), req.Verdict.Categories
		return nil
	}
	atts, err := t.checkAttachments(req.Author.ID, c, req.Attachments)
	if err != nil {
		return err
	}
	// Checks are done; writes follow.
	if isNew {
		if err := t.startConv(c, req); err != nil {
			return err
		}
	} else {
		t.put(c)
	}
	changed := isNew
	if req.Author.Role == string(ingest.RoleVisitor) {
		c.VisitorLeft = false // back in the conversation: a later leave is news
	}
	if c.Status == StatusResolved && req.Kind != ingest.KindNote {
		if err := t.reopen(c, req.Author); err != nil {
			return err
		}
		changed = true
	}
	if c.Status == StatusPending && req.Author.Role == string(ingest.RoleVisitor) {
		c.Status = StatusOpen
		changed = true
	}
	if req.Author.Role == string(ingest.RoleAgent) && req.Kind == ingest.KindText && c.Assignee == "" {
		if err := t.assign(c, req.Author.ID, "manual", req.Author); err != nil {
			return err
		}
		changed = true
	}
	m := Message{
		ConversationID: c.ID, ClientID: req.ClientID, Author: req.Author, Kind: req.Kind,
		Text: req.Text, Status: MsgVisible, Attachments: viewAttachments(atts),
	}
	v := req.Verdict
	switch v.Action {
	case ingest.ActionBlock:
		m.Status, m.reason, m.categories = MsgBlocked, blockReason(v), v.Categories
		res.Blocked, res.Reason, res.Categories = true, m.reason, v.Categories
	case ingest.ActionRedact:
		if v.Redacted != "" && v.Redacted != m.Text {
			m.Text, res.Redacted = v.Redacted, true
		}
	}
	m, err = t.insertMessage(c, m, atts)
	if err != nil {
		return err
	}
	res.Msg = m
	t.deliver(c, m, req.Origin)
	if changed {
		t.announce(c)
	}
	if c.Routing == RoutingBot && req.Author.Role == string(ingest.RoleVisitor) && m.Status == MsgVisible {
		job := botJob{SiteID: c.SiteID, ConversationID: c.ID, VisitorID: c.VisitorID, Text: m.Text, First: isNew}
		t.after(func() { t.w.s.bot.enqueue(job) })
	}
	return nil
}

func blockReason(v InlineVerdict) string {
	if v.Reason != "" {
		return v.Reason
	}
	if len(v.Categories) > 0 {
		return "This message was not delivered because it was flagged as " + strings.Join(v.Categories, ", ") + "."
	}
	return "This message was not delivered because it breaks the site's rules."
}

// targetConv finds the conversation a message goes to, or a new one.
func (t *wtx) targetConv(req sendReq) (*convState, bool, error) {
	isVisitor := req.Author.Role == string(ingest.RoleVisitor)
	id := req.ConversationID
	if isVisitor && id == "" && req.Channel != ingest.ChannelOffline {
		cur, err := t.currentConv(req.Author.ID)
		if err != nil {
			return nil, false, err
		}
		id = cur
	}
	if id == "" {
		if !isVisitor {
			return nil, false, errf(CodeBadRequest, "conversation_id is required")
		}
		return t.newConv(req), true, nil
	}
	c, err := t.conv(id)
	if err != nil {
		return nil, false, err
	}
	if isVisitor && c.VisitorID != req.Author.ID {
		return nil, false, errf(CodeNotFound, "conversation %s not found", id)
	}
	if isVisitor && c.Status == StatusResolved && t.now.Sub(msTime(c.ResolvedAt).Time) > t.w.s.cfg.ReopenWindow {
		return t.newConv(req), true, nil
	}
	if req.Kind == ingest.KindNote && isVisitor {
		return nil, false, errf(CodeForbidden, "visitors cannot send notes")
	}
	return c, false, nil
}

func (t *wtx) newConv(req sendReq) *convState {
	ch := req.Channel
	if ch == "" {
		ch = ingest.ChannelWidget
	}
	ms := nowMs(t.now)
	return &convState{
		ID: ingest.NewID(), SiteID: req.SiteID, VisitorID: req.Author.ID, Channel: ch,
		Status: StatusOpen, Routing: RoutingQueued, CreatedAt: ms, UpdatedAt: ms,
	}
}

// startConv inserts a new conversation, its conversation.started event and
// routes it to the bot or the queue.
func (t *wtx) startConv(c *convState, req sendReq) error {
	site, ok := t.w.s.sites.get(c.SiteID)
	if !ok {
		return errf(CodeNotFound, "site %s not found", c.SiteID)
	}
	useBot := site.Settings.Bot.Enabled && c.Channel == ingest.ChannelWidget
	if useBot {
		c.Routing = RoutingBot
	}
	if err := t.tx.InsertConversation(t.ctx, c); err != nil {
		return err
	}
	t.put(c)
	v, err := t.visitor(c.VisitorID)
	if err != nil {
		return err
	}
	st := req.Start
	if st.Name == "" {
		st.Name = v.Name
	}
	if st.Email == "" {
		st.Email = v.Email
	}
	actor := ingest.Actor{Role: ingest.RoleVisitor, ID: c.VisitorID}
	if _, err := t.emit(ingest.ConversationStarted, c, actor, &ingest.ConversationStartedPayload{
		Channel: c.Channel, VisitorID: c.VisitorID, VisitorName: st.Name, Email: st.Email,
		PageURL: st.PageURL, Referrer: st.Referrer, UserAgent: st.UserAgent, Fields: st.Fields,
	}); err != nil {
		return err
	}
	if !useBot {
		return t.enqueue(c, "new")
	}
	return nil
}

// checkAttachments loads the attachments a message refers to; each must be
// the author's own upload and not yet sent in another conversation.
func (t *wtx) checkAttachments(authorID string, c *convState, ids []string) ([]ingest.Attachment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > 10 {
		return nil, errf(CodeBadRequest, "a message carries at most 10 attachments, not %d", len(ids))
	}
	out := make([]ingest.Attachment, 0, len(ids))
	for _, id := range ids {
		a, err := t.tx.Attachment(t.ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && a.UploaderID != authorID) {
			return nil, errf(CodeNotFound, "attachment %s not found", id)
		}
		if err != nil {
			return nil, err
		}
		if a.ConversationID != "" && (c == nil || a.ConversationID != c.ID) {
			return nil, errf(CodeBadRequest, "attachment %s belongs to another conversation", id)
		}
		if t.w.s.uploadExpired(a, t.now) {
			return nil, errf(CodeBadRequest, "attachment %s was uploaded too long ago and is being removed; upload it again", id)
		}
		out = append(out, a.Attachment)
	}
	return out, nil
}

// insertMessage gives m the next seq, stores it with its message.sent event
// and updates the conversation's last-message fields.
func (t *wtx) insertMessage(c *convState, m Message, atts []ingest.Attachment) (Message, error) {
	c.LastSeq++
	m.Seq = c.LastSeq
	m.ID = ingest.NewID()
	m.ConversationID = c.ID
	m.CreatedAt = ingest.At(t.now)
	ms := nowMs(t.now)
	c.UpdatedAt = ms
	if m.Status == MsgVisible && m.Kind == ingest.KindText {
		c.LastRole, c.LastPreview, c.LastAt = m.Author.Role, preview(m.Text), ms
		if m.Text == "" && len(atts) > 0 {
			c.LastPreview = "📎 " + preview(atts[0].Name)
		}
	}
	e, err := t.emit(ingest.MessageSent, c, eventActor(m.Author), &ingest.MessageSentPayload{
		MessageID: m.ID, ClientMessageID: m.ClientID, Seq: m.Seq, Kind: m.Kind, Text: m.Text,
		Attachments: atts, Blocked: m.Status == MsgBlocked,
	})
	if err != nil {
		return Message{}, err
	}
	m.eventID = e.ID
	if err := t.tx.InsertMessage(t.ctx, m, atts); err != nil {
		return Message{}, err
	}
	for _, a := range atts {
		if err := t.tx.BindAttachment(t.ctx, a.ID, c.ID); err != nil {
			return Message{}, err
		}
	}
	t.w.s.metrics.messages.WithLabelValues(m.Author.Role).Inc()
	return m, nil
}

// deliver sends a committed message to everyone who may see it, except
// the connection that sent it: the visitor (not notes), agents following
// the conversation (the message) and other agents in scope (the summary).
func (t *wtx) deliver(c *convState, m Message, except *client) {
	s := t.w.s
	snap := *c
	v, _ := t.visitor(c.VisitorID)
	t.after(func() {
		meta := snap.meta()
		var msg []byte
		if vm, ok := m.forVisitor(meta.VisitorID); ok {
			b := encode(messageFrame{Type: "message", Message: vm})
			s.hub.toVisitor(meta.VisitorID, b, except)
			if m.Status == MsgVisible {
				msg = b // a visible message looks the same to both sides
			}
		}
		if msg == nil {
			msg = encode(messageFrame{Type: "message", Message: m.forAgent()})
		}
		s.hub.toConvAgents(snap.ID, meta, msg, s.summaryFunc(&snap, v), except)
	})
}

// announce pushes the conversation's new summary to its visitor and agents.
func (t *wtx) announce(c *convState) {
	s := t.w.s
	snap := *c
	v, _ := t.visitor(c.VisitorID)
	t.after(func() {
		b := encode(conversationFrame{Type: "conversation", Conversation: s.summary(&snap, v)})
		s.hub.toVisitor(snap.VisitorID, b, nil)
		s.hub.toConvAgents(snap.ID, snap.meta(), nil, func() []byte { return b }, nil)
	})
}

// summaryFunc encodes a conversation frame once, on first use.
func (s *Service) summaryFunc(c *convState, v visitorState) func() []byte {
	var b []byte
	return func() []byte {
		if b == nil {
			b = encode(conversationFrame{Type: "conversation", Conversation: s.summary(c, v)})
		}
		return b
	}
}
