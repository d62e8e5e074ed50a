package chatsvc

import (
	"context"
	"fmt"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// agentUpgrade runs after guard.Require(access.Agent): it checks the
// Origin (own origin or Config.StaffOrigins) against cross-site socket hijacking.
func (s *Service) agentUpgrade(c *fiber.Ctx) error {
	if !isUpgrade(c) {
		return replyError(c, fiber.StatusUpgradeRequired, CodeBadRequest, "this endpoint only accepts WebSocket upgrades")
	}
	if !s.staffOriginOK(c) {
		return replyError(c, fiber.StatusForbidden, CodeOriginNotAllowed, fmt.Sprintf("origin %q is not allowed for the agent socket", c.Get(fiber.HeaderOrigin)))
	}
	u, ok := access.UserOf(c)
	if !ok {
		return replyError(c, fiber.StatusUnauthorized, CodeForbidden, "sign in first")
	}
	ip, session := c.IP(), access.SessionIDOf(c)
	return s.upgrade(c, func(conn *websocket.Conn) { s.agentSocket(conn, u, ip, session) })
}

type agentHello struct {
	Type       string       `json:"type"`
	User       access.User  `json:"user"`
	Presence   string       `json:"presence"`
	InboxScope string       `json:"inbox_scope"`
	Agents     []AgentInfo  `json:"agents"`
	Limits     clientLimits `json:"limits"`
}

func (s *Service) agentSocket(conn *websocket.Conn, u access.User, ip, session string) {
	cl := newClient(s, conn)
	cl.user, cl.ip, cl.session = u, ip, session
	cl.budget, cl.receipts = newFrameBudget(s.agentRates), receiptMarks{}
	ctx := context.Background()
	// Routing may give the agent a conversation the moment they are
	// registered; that frame must come after the hello.
	cl.holdForHello()
	info := s.hub.addAgent(cl)
	defer s.hub.removeAgent(cl)
	cl.sendHello(encode(agentHello{Type: "hello", User: u, Presence: info.Status, InboxScope: "mine", Agents: s.hub.agentInfosFor(u), Limits: s.limitsView()}))
	cl.serve(func(data []byte, binary bool) { s.agentFrame(ctx, cl, data, binary) })
}

func (s *Service) agentFrame(ctx context.Context, cl *client, data []byte, binary bool) {
	if binary {
		cl.fail("", errf(CodeUnsupportedFrame, "binary frames are not supported; send JSON text frames"))
		return
	}
	f, fe := decodeFrame(data, s.cfg.Limits.MaxFrameBytes)
	if fe != nil {
		cl.fail(f.Ref, fe)
		return
	}
	if !cl.spend(f) {
		return
	}
	author := staffActor(cl.user)
	switch f.Type {
	case "ping":
		cl.enqueue(encode(refFrame{Type: "pong", Ref: f.Ref}))
	case "presence":
		switch f.Status {
		case StatusOnline, StatusAway, StatusOffline:
		default:
			cl.fail(f.Ref, errf(CodeBadRequest, "status must be online, away or offline, not %q", f.Status))
			return
		}
		s.hub.setPresence(cl.user.ID, f.Status)
		replyOK(cl, f.Ref)(nil)
	case "inbox":
		if f.Scope != "mine" && f.Scope != "all" {
			cl.fail(f.Ref, errf(CodeBadRequest, "scope must be mine or all, not %q", f.Scope))
			return
		}
		s.hub.setScope(cl, f.Scope)
		replyOK(cl, f.Ref)(nil)
	case "subscribe", "resume":
		if f.ConversationID == "" {
			cl.fail(f.Ref, errf(CodeBadRequest, "conversation_id is required"))
			return
		}
		if _, err := s.convOnSite(ctx, cl.user, f.ConversationID); err != nil {
			cl.fail(f.Ref, asFrameError(s, err))
			return
		}
		if f.Type == "subscribe" {
			s.hub.subscribe(cl, f.ConversationID, true)
		}
		s.sendBacklog(ctx, cl, f.Ref, f.ConversationID, f.AfterSeq, "")
	case "unsubscribe":
		s.hub.subscribe(cl, f.ConversationID, false)
		replyOK(cl, f.Ref)(nil)
	case "send":
		if fe := s.checkText(f); fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		kind := f.Kind
		if kind == "" {
			kind = ingest.KindText
		}
		if kind != ingest.KindText && kind != ingest.KindNote {
			cl.fail(f.Ref, errf(CodeBadRequest, "kind must be text or note, not %q", kind))
			return
		}
		if f.ConversationID == "" {
			cl.fail(f.Ref, errf(CodeBadRequest, "conversation_id is required"))
			return
		}
		if ok, wait := s.agentLimit.allow(cl.user.ID); !ok {
			cl.fail(f.Ref, errf(CodeRateLimited, "too many messages; retry in %s", (wait+time.Second).Truncate(time.Second)))
			return
		}
		meta, err := s.convOnSite(ctx, cl.user, f.ConversationID)
		if err != nil {
			cl.fail(f.Ref, asFrameError(s, err))
			return
		}
		s.hub.subscribe(cl, f.ConversationID, true)
		req := sendReq{Author: author, SiteID: meta.SiteID, ConversationID: f.ConversationID, ClientID: f.ClientID,
			Kind: kind, Text: f.Text, Attachments: f.Attachments, Origin: cl}
		s.writer.submit(ctx, s.sendOp(req, ackTo(cl, f)))
	case "typing":
		meta, err := s.convOnSite(ctx, cl.user, f.ConversationID)
		if err != nil {
			cl.fail(f.Ref, asFrameError(s, err))
			return
		}
		if cl.allowTyping(time.Now()) {
			b := encode(typingFrame{Type: "typing", ConversationID: f.ConversationID, Role: "agent", Name: cl.user.Name, Typing: f.Typing})
			s.hub.toVisitor(meta.VisitorID, b, nil)
			s.hub.toConvAgents(f.ConversationID, meta, b, nil, cl)
		}
	case "delivered":
		meta, err := s.convOnSite(ctx, cl.user, f.ConversationID)
		if err != nil {
			cl.fail(f.Ref, asFrameError(s, err))
			return
		}
		if f.UpToSeq >= 1 && cl.receipts.forward(f.ConversationID, f.UpToSeq) {
			s.hub.toVisitor(meta.VisitorID, encode(receiptFrame{Type: "receipt", ConversationID: f.ConversationID, Kind: "delivered", Role: "agent", UpToSeq: f.UpToSeq}), nil)
		}
	case "read":
		if _, err := s.convOnSite(ctx, cl.user, f.ConversationID); err != nil {
			cl.fail(f.Ref, asFrameError(s, err))
			return
		}
		s.writer.submit(ctx, &op{fn: s.readOp(author, f.ConversationID, f.UpToSeq), done: replyOK(cl, f.Ref), conv: f.ConversationID, kind: opRead})
	default:
		cl.fail(f.Ref, errf(CodeUnknownType, "unknown frame type %q", f.Type))
	}
}
