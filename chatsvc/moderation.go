package chatsvc

import (
	"context"
	"errors"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/parleychat/parley/ingest"
)

// InlineVerdict is the moderator's fast judgement of a visitor message.
type InlineVerdict struct {
	Action     string // "allow", "flag", "block" or "redact" (ingest.Action*)
	Categories []string
	Spans      []ingest.Span
	Severity   int
	Redacted   string // the text to deliver when Action is redact
	Reason     string // kept with a blocked message; the sender is told the catalog's reason in their language
}

// InlineModerator judges a visitor message before delivery. It must be
// fast (no network); cmd/parley adapts the moderation package to it.
type InlineModerator interface {
	CheckInline(ctx context.Context, siteID, visitorID, text string) InlineVerdict
}

// BanChecker says whether a visitor is banned and until when.
type BanChecker interface {
	Banned(ctx context.Context, siteID, visitorID string) (until time.Time, banned bool)
}

func banKey(site, visitor string) string { return site + "|" + visitor }

func (s *Service) loadBans(ctx context.Context) error {
	bans, err := s.store.ActiveBans(ctx, time.Now())
	if err != nil {
		return err
	}
	for _, b := range bans {
		s.bans[banKey(b.SiteID, b.VisitorID)] = ban{Until: b.Until, Reason: b.Reason}
	}
	return nil
}

// banned checks the bans learnt from Kafka, then the BanChecker.
func (s *Service) banned(ctx context.Context, siteID, visitorID string, ask bool) (ban, bool) {
	s.bansMu.RLock()
	b, ok := s.bans[banKey(siteID, visitorID)]
	s.bansMu.RUnlock()
	if ok && time.Now().Before(b.Until) {
		return b, true
	}
	if ask && s.cfg.Bans != nil {
		if until, yes := s.cfg.Bans.Banned(ctx, siteID, visitorID); yes && time.Now().Before(until) {
			return ban{Until: until}, true
		}
	}
	return ban{}, false
}

// consumeModeration applies moderation verdicts and decisions from Kafka;
// every chat node reads every event (its own consumer group).
func (s *Service) consumeModeration(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		c, err := ingest.NewConsumer(ingest.ConsumerConfig{
			Brokers: s.cfg.Brokers, GroupID: "parley-chat-" + s.cfg.NodeID, Topics: []string{ingest.TopicModeration},
			BatchSize: 500, BatchWait: 20 * time.Millisecond, DeadLetter: s.cfg.Producer,
			Registerer: s.cfg.Registerer, Logger: s.log,
		})
		if err == nil {
			err = c.Run(ctx, s.handleModeration)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("moderation consumer stopped; restarting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// handleModeration is idempotent: hiding a hidden message or storing the
// same ban twice changes nothing.
func (s *Service) handleModeration(ctx context.Context, batch []ingest.Record) ([]ingest.Reject, error) {
	var rejects []ingest.Reject
	for _, r := range batch {
		e := r.Event
		switch e.Type {
		case ingest.ModerationVerdict:
			var p ingest.ModerationVerdictPayload
			if err := e.Into(&p); err != nil {
				rejects = append(rejects, ingest.Reject{Record: r, Reason: err.Error()})
				continue
			}
			if p.Action == ingest.ActionBlock {
				if err := s.setMessageStatus(ctx, p.MessageID, MsgHidden); err != nil {
					return rejects, err
				}
			}
		case ingest.ModerationDecision:
			var p ingest.ModerationDecisionPayload
			if err := e.Into(&p); err != nil {
				rejects = append(rejects, ingest.Reject{Record: r, Reason: err.Error()})
				continue
			}
			var err error
			switch p.Decision {
			case ingest.DecisionRemove:
				err = s.setMessageStatus(ctx, p.MessageID, MsgHidden)
			case ingest.DecisionApprove:
				err = s.setMessageStatus(ctx, p.MessageID, MsgVisible)
			case ingest.DecisionBan:
				if p.MessageID != "" {
					err = s.setMessageStatus(ctx, p.MessageID, MsgHidden)
				}
				if err == nil && p.BanUntil != nil {
					err = s.Ban(ctx, e.SiteID, p.VisitorID, p.BanUntil.Time, p.Reason)
				}
			case ingest.DecisionUnban:
				err = s.LiftBan(ctx, e.SiteID, p.VisitorID)
			}
			if err != nil {
				return rejects, err
			}
		}
	}
	return rejects, nil
}

// Ban stores a ban, tells the visitor's sockets and closes them.
func (s *Service) Ban(ctx context.Context, siteID, visitorID string, until time.Time, reason string) error {
	if visitorID == "" {
		return nil
	}
	if err := s.store.PutBan(ctx, BanRecord{SiteID: siteID, VisitorID: visitorID, Until: until, Reason: reason}); err != nil {
		return err
	}
	s.bansMu.Lock()
	s.bans[banKey(siteID, visitorID)] = ban{Until: until, Reason: reason}
	s.bansMu.Unlock()
	if err := s.banAddress(ctx, siteID, visitorID, until, reason); err != nil {
		return err
	}
	if time.Now().Before(until) {
		s.hub.closeVisitor(visitorID, encode(bannedFrame{Type: "banned", Until: ingest.At(until), Reason: reason}),
			websocket.ClosePolicyViolation, "banned")
	}
	return nil
}

// LiftBan forgets a visitor's ban, stored and cached, so they may write
// again at once.
func (s *Service) LiftBan(ctx context.Context, siteID, visitorID string) error {
	if visitorID == "" {
		return nil
	}
	if err := s.store.DeleteBan(ctx, siteID, visitorID); err != nil {
		return err
	}
	if err := s.liftAddressBan(ctx, siteID, visitorID); err != nil {
		return err
	}
	s.bansMu.Lock()
	delete(s.bans, banKey(siteID, visitorID))
	s.bansMu.Unlock()
	return nil
}

// setMessageStatus hides or restores a message and tells every screen
// showing it. Unknown messages (another node's database) are ignored.
func (s *Service) setMessageStatus(ctx context.Context, messageID, status string) error {
	if messageID == "" {
		return nil
	}
	err := s.writer.do(ctx, func(t *wtx) error {
		m, found, err := t.tx.MessageByID(t.ctx, messageID)
		if err != nil || !found {
			return err
		}
		if m.Status == status || (status == MsgHidden && m.Status == MsgBlocked) {
			return nil
		}
		c, err := t.conv(m.ConversationID)
		if err != nil {
			return err
		}
		if err := t.tx.SetMessageStatus(t.ctx, messageID, status); err != nil {
			return err
		}
		// The inbox preview must not keep showing a removed message (and
		// shows it again when a moderator restores it).
		if m.Kind == ingest.KindText && c.LastAt == m.CreatedAt.UnixMilli() && c.LastRole == m.Author.Role {
			if status == MsgHidden && c.LastPreview == preview(m.Text) {
				c.LastPreview = ""
				t.put(c)
			} else if status == MsgVisible && c.LastPreview == "" {
				c.LastPreview = preview(m.Text)
				t.put(c)
			}
		}
		m.Status = status
		meta := c.meta()
		t.after(func() {
			var b []byte
			if status == MsgHidden {
				b = encode(hiddenFrame{Type: "message_hidden", ConversationID: m.ConversationID, MessageID: m.ID, Seq: m.Seq})
				s.hub.toVisitor(meta.VisitorID, b, nil)
				s.hub.toConvAgents(m.ConversationID, meta, b, nil, nil)
				return
			}
			b = encode(refMessage{Type: "message_restored", Message: m})
			if vm, ok := m.forVisitor(meta.VisitorID); ok {
				s.hub.toVisitor(meta.VisitorID, encode(refMessage{Type: "message_restored", Message: vm}), nil)
			}
			s.hub.toConvAgents(m.ConversationID, meta, b, nil, nil)
		})
		return nil
	})
	if errors.Is(err, errStopped) {
		return err
	}
	var fe *frameError
	if errors.As(err, &fe) {
		return nil // e.g. the conversation is gone: nothing to hide
	}
	return err
}

type refMessage struct {
	Type    string  `json:"type"`
	Message Message `json:"message"`
}
