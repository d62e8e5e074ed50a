package chatsvc

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/ingest"
)

const (
	localSite    = "chatsvc.site"
	localVisitor = "chatsvc.visitor"
)

// visitorUpgrade authenticates /ws/visitor before the upgrade: token,
// site, Origin and ban, each with a precise HTTP error.
func (s *Service) visitorUpgrade(c *fiber.Ctx) error {
	if !isUpgrade(c) {
		return replyError(c, fiber.StatusUpgradeRequired, CodeBadRequest, "this endpoint only accepts WebSocket upgrades")
	}
	if ok, wait := s.ipLimit.allow(c.IP()); !ok {
		return replyError(c, fiber.StatusTooManyRequests, CodeRateLimited, fmt.Sprintf("too many connections from your address; retry in %s", wait.Round(time.Second)+time.Second))
	}
	claims, err := verifyToken(s.cfg.Secret, c.Query("token"), time.Now())
	if err != nil {
		return replyError(c, fiber.StatusUnauthorized, CodeInvalidToken, err.Error())
	}
	if full := s.sockets.full(s.cfg.Limits, c.IP(), claims.Visitor); full != "" {
		return replyError(c, fiber.StatusTooManyRequests, CodeRateLimited, socketsFullMessage(full))
	}
	site, ok := s.sites.get(claims.Site)
	if !ok {
		return replyError(c, fiber.StatusUnauthorized, CodeInvalidToken, "the token's site no longer exists")
	}
	origin := c.Get(fiber.HeaderOrigin)
	if !site.AllowsOrigin(origin) {
		return replyError(c, fiber.StatusForbidden, CodeOriginNotAllowed, fmt.Sprintf("origin %q is not allowed for site %s", origin, site.Name))
	}
	if identityMissing(site, claims) {
		return replyError(c, fiber.StatusUnauthorized, CodeIdentity, "this site admits verified visitors only; start a verified session")
	}
	if b, banned := s.addressBanned(c.UserContext(), site.ID, c.IP()); banned {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Code: CodeBanned, Message: "you are banned from this chat", Until: ingest.At(b.Until).Format(time.RFC3339)})
	}
	if b, banned := s.banned(c.UserContext(), site.ID, claims.Visitor, true); banned {
		return c.Status(fiber.StatusForbidden).JSON(apiError{Code: CodeBanned, Message: "you are banned from this chat", Until: ingest.At(b.Until).Format(time.RFC3339)})
	}
	// The database work happens here, on the server's worker goroutine,
	// so that the socket's own goroutine keeps a small stack while idle.
	v := visitorConn{
		site: site, visitorID: claims.Visitor, ip: c.IP(), origin: strings.Clone(origin),
		ua: truncate(string(c.Request().Header.UserAgent()), 512),
		// The widget asks for the language it resolved (GET /api/chat/visitor/i18n);
		// a language the site does not offer falls back to the site's default.
		lang: site.Settings.matchLanguage([]string{truncate(c.Query("lang"), 35)}),
	}
	ctx := c.UserContext()
	hello := visitorHello{Type: "hello", VisitorID: v.visitorID, Online: s.online(site), Site: site.public(v.lang), Limits: s.limitsView()}
	if conv, err := s.latestConversation(ctx, v.visitorID); err != nil {
		s.log.Warn("hello: load conversation", "visitor", v.visitorID, "err", err)
	} else if conv != nil {
		hello.Conversation = conv
	}
	v.hello = encode(hello)
	if err := s.store.TouchVisitor(ctx, v.visitorID, v.ip, v.ua, time.Now()); err != nil {
		s.log.Warn("touch visitor", "visitor", v.visitorID, "err", err)
	}
	return s.upgrade(c, func(conn *websocket.Conn) { s.visitorSocket(conn, &v) })
}

// visitorConn is what visitorUpgrade learnt about a visitor socket.
type visitorConn struct {
	site      *Site
	visitorID string
	ip        string
	origin    string
	ua        string
	lang      string
	hello     []byte
}

type visitorHello struct {
	Type         string        `json:"type"`
	VisitorID    string        `json:"visitor_id"`
	Online       bool          `json:"online"`
	Site         publicSite    `json:"site"`
	Conversation *Conversation `json:"conversation"`
	Limits       clientLimits  `json:"limits"`
}

type publicSite struct {
	Name           string   `json:"name"`
	Color          string   `json:"color,omitempty"`
	Greeting       string   `json:"greeting,omitempty"`
	ReplyTime      string   `json:"reply_time,omitempty"`
	Avatars        []string `json:"avatars,omitempty"`
	Prechat        Prechat  `json:"prechat"`
	OfflineMessage string   `json:"offline_message,omitempty"`
	// Lang is the language of these texts and of what the server says to
	// this visitor (bot answers, block reasons); Dir is its direction.
	Lang string `json:"lang"`
	Dir  string `json:"dir"`
}

type clientLimits struct {
	MaxMessageChars    int   `json:"max_message_chars"`
	MaxAttachmentBytes int64 `json:"max_attachment_bytes"`
	MaxFrameBytes      int   `json:"max_frame_bytes"`
}

func (s *Service) limitsView() clientLimits {
	l := s.cfg.Limits
	return clientLimits{MaxMessageChars: l.MaxMessageChars, MaxAttachmentBytes: l.MaxAttachmentBytes, MaxFrameBytes: l.MaxFrameBytes}
}

// online reports whether someone can answer now: inside business hours
// and with an online agent or the site's bot.
func (s *Service) online(site *Site) bool {
	if !site.OpenAt(time.Now()) {
		return false
	}
	return site.Settings.Bot.Enabled || s.agentAvailableOn(site.ID)
}

func (s *Service) visitorSocket(conn *websocket.Conn, v *visitorConn) {
	cl := newClient(s, conn)
	cl.site, cl.visitorID, cl.ip, cl.origin, cl.lang = v.site, v.visitorID, v.ip, v.origin, v.lang
	cl.budget, cl.receipts = newFrameBudget(s.visitorRates), receiptMarks{}
	if full := s.sockets.acquire(s.cfg.Limits, v.ip, v.visitorID); full != "" {
		// Another socket took the last place since the upgrade's check.
		cl.fail("", errf(CodeRateLimited, "%s", socketsFullMessage(full)))
		cl.close(closeQueue, "too many connections")
		cl.writers.Wait()
		return
	}
	defer s.sockets.release(v.ip, v.visitorID)
	// Nothing else knows the client yet (it is in no hub list and its ping
	// timer starts in serve), so the hello is written here, on the socket's
	// own goroutine. Queuing it would start a writer goroutine per socket
	// that lingers, and whose stack, allocated among the readers' stacks
	// and freed 2 s later, leaves their spans half used (docs/benchmarks.md,
	// idle sockets).
	if err := cl.writeFrames([][]byte{v.hello}); err != nil {
		return
	}
	v.hello = nil
	s.hub.addVisitor(cl)
	defer s.hub.removeVisitor(cl)
	start := startInfo{UserAgent: v.ua}
	ctx := context.Background()
	cl.serve(func(data []byte, binary bool) { s.visitorFrame(ctx, cl, &start, data, binary) })
}

// public is what a visitor's widget learns about the site, its texts in lang.
func (site *Site) public(lang string) publicSite {
	st := site.Settings
	tx := st.texts(lang)
	return publicSite{Name: site.Name, Color: st.Color, Greeting: tx.Greeting, ReplyTime: tx.ReplyTime, Avatars: st.Avatars,
		Prechat: st.Prechat, OfflineMessage: tx.OfflineMessage, Lang: lang, Dir: textDirection(lang)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// visitorFrame handles one frame from a visitor socket.
func (s *Service) visitorFrame(ctx context.Context, cl *client, start *startInfo, data []byte, binary bool) {
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
	author := Author{Role: string(ingest.RoleVisitor), ID: cl.visitorID}
	switch f.Type {
	case "ping":
		cl.enqueue(encode(refFrame{Type: "pong", Ref: f.Ref}))
	case "send":
		s.visitorSend(ctx, cl, f, *start, ingest.ChannelWidget)
	case "offline_message":
		if fe := s.updateVisitorProfile(ctx, cl.visitorID, f.Name, f.Email, f.Fields); fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		st := *start
		st.Name, st.Email, st.Fields = f.Name, f.Email, f.Fields
		f.ConversationID = ""
		s.visitorSend(ctx, cl, f, st, ingest.ChannelOffline)
	case "typing":
		meta, fe := s.visitorConv(ctx, cl, f.ConversationID)
		if fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		if cl.allowTyping(time.Now()) {
			s.hub.toConvAgents(f.ConversationID, meta, encode(typingFrame{Type: "typing", ConversationID: f.ConversationID, Role: "visitor", Typing: f.Typing}), nil, nil)
		}
	case "delivered":
		meta, fe := s.visitorConv(ctx, cl, f.ConversationID)
		if fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		if f.UpToSeq < 1 {
			cl.fail(f.Ref, errf(CodeBadRequest, "up_to_seq must be at least 1"))
			return
		}
		if cl.receipts.forward(f.ConversationID, f.UpToSeq) {
			s.hub.toConvAgents(f.ConversationID, meta, encode(receiptFrame{Type: "receipt", ConversationID: f.ConversationID, Kind: "delivered", Role: "visitor", UpToSeq: f.UpToSeq}), nil, nil)
		}
	case "read":
		if _, fe := s.visitorConv(ctx, cl, f.ConversationID); fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		s.writer.submit(ctx, &op{fn: s.readOp(author, f.ConversationID, f.UpToSeq), done: replyOK(cl, f.Ref), conv: f.ConversationID, kind: opRead})
	case "resume":
		if _, fe := s.visitorConv(ctx, cl, f.ConversationID); fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		s.sendBacklog(ctx, cl, f.Ref, f.ConversationID, f.AfterSeq, cl.visitorID)
	case "csat":
		if _, fe := s.visitorConv(ctx, cl, f.ConversationID); fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		s.writer.submit(ctx, &op{fn: s.csatOp(cl.visitorID, f.ConversationID, f.Rating, f.Comment), done: replyOK(cl, f.Ref)})
	case "leave":
		s.writer.submit(ctx, &op{fn: s.leaveOp(cl.visitorID, f.ConversationID, "closed"), done: replyOK(cl, f.Ref)})
	case "context":
		if f.Timezone != "" && !browserTimezone(f.Timezone) {
			cl.fail(f.Ref, errf(CodeBadRequest, "timezone %q is not an IANA time zone a browser knows (e.g. Europe/Paris)", truncate(f.Timezone, 64)))
			return
		}
		start.PageURL, start.Referrer = truncate(f.PageURL, 2048), truncate(f.Referrer, 2048)
		page := VisitorPage{URL: start.PageURL, Title: truncate(f.Title, 512), Referrer: start.Referrer, Timezone: truncate(f.Timezone, 64), Locale: truncate(f.Locale, 35)}
		if err := s.store.SetVisitorPage(ctx, cl.visitorID, page, time.Now()); err != nil {
			s.log.Warn("store visitor context", "visitor", cl.visitorID, "err", err)
			cl.fail(f.Ref, errf(CodeInternal, "could not store the context; retry"))
			return
		}
		replyOK(cl, f.Ref)(nil)
	case "prechat":
		if fe := s.updateVisitorProfile(ctx, cl.visitorID, f.Name, f.Email, f.Fields); fe != nil {
			cl.fail(f.Ref, fe)
			return
		}
		start.Name, start.Email, start.Fields = f.Name, f.Email, f.Fields
		replyOK(cl, f.Ref)(nil)
	default:
		cl.fail(f.Ref, errf(CodeUnknownType, "unknown frame type %q", f.Type))
	}
}

// replyOK answers a frame that carried a ref with ok, or its error.
func replyOK(cl *client, ref string) func(error) {
	return func(err error) {
		if err != nil {
			cl.fail(ref, asFrameError(cl.s, err))
			return
		}
		if ref != "" {
			cl.enqueue(encode(refFrame{Type: "ok", Ref: ref}))
		}
	}
}

func asFrameError(s *Service, err error) *frameError {
	if fe, ok := err.(*frameError); ok {
		return fe
	}
	if err == errStopped {
		return errf(CodeInternal, "the server is restarting; retry")
	}
	s.log.Error("operation failed", "err", err)
	return errf(CodeInternal, "could not store the change; retry")
}

// visitorConv checks that a conversation is the visitor's.
func (s *Service) visitorConv(ctx context.Context, cl *client, id string) (convMeta, *frameError) {
	if id == "" {
		return convMeta{}, errf(CodeBadRequest, "conversation_id is required")
	}
	meta, err := s.convMeta(ctx, id)
	if err != nil {
		if fe, ok := err.(*frameError); ok {
			return convMeta{}, fe
		}
		return convMeta{}, asFrameError(s, err)
	}
	if meta.VisitorID != cl.visitorID {
		return convMeta{}, errf(CodeNotFound, "conversation %s not found", id)
	}
	return meta, nil
}

// checkText validates a message's text and attachments list.
func (s *Service) checkText(f inFrame) *frameError {
	if f.ClientID == "" {
		return errf(CodeBadRequest, "client_id is required")
	}
	if len(f.ClientID) > 64 {
		return errf(CodeBadRequest, "client_id is longer than 64 bytes")
	}
	if strings.TrimSpace(f.Text) == "" && len(f.Attachments) == 0 {
		return errf(CodeBadRequest, "text is empty and there are no attachments")
	}
	if n := utf8.RuneCountInString(f.Text); n > s.cfg.Limits.MaxMessageChars {
		return errf(CodeMessageTooLong, "message of %d characters exceeds %d", n, s.cfg.Limits.MaxMessageChars)
	}
	return nil
}

func (s *Service) visitorSend(ctx context.Context, cl *client, f inFrame, start startInfo, channel string) {
	if fe := s.checkText(f); fe != nil {
		cl.fail(f.Ref, fe)
		return
	}
	if b, banned := s.banned(ctx, cl.site.ID, cl.visitorID, false); banned {
		cl.fail(f.Ref, errf(CodeBanned, "you are banned until %s", ingest.At(b.Until).Format("2006-01-02T15:04:05.000Z07:00")))
		return
	}
	if ok, wait := s.visitorLimit.allow(cl.visitorID); !ok {
		cl.fail(f.Ref, errf(CodeRateLimited, "too many messages; retry in %s", (wait+time.Second).Truncate(time.Second)))
		return
	}
	verdict := InlineVerdict{Action: ingest.ActionAllow}
	if s.cfg.Moderator != nil && f.Text != "" {
		verdict = s.cfg.Moderator.CheckInline(ctx, cl.site.ID, cl.visitorID, f.Text)
	}
	req := sendReq{
		Author: Author{Role: string(ingest.RoleVisitor), ID: cl.visitorID}, SiteID: cl.site.ID,
		ConversationID: f.ConversationID, ClientID: f.ClientID, Kind: ingest.KindText, Text: f.Text,
		Attachments: f.Attachments, Verdict: verdict, Channel: channel, Start: start, Origin: cl,
	}
	s.writer.submit(ctx, s.sendOp(req, ackTo(cl, f)))
}

// ackTo answers a send with ack, blocked or error.
func ackTo(cl *client, f inFrame) func(sendResult, error) {
	return func(r sendResult, err error) {
		if err != nil {
			cl.fail(f.Ref, asFrameError(cl.s, err))
			return
		}
		m := r.Msg
		if r.Blocked {
			site := cl.site
			if cur, ok := cl.s.sites.get(site.ID); ok {
				site = cur // the site's overrides as they are now
			}
			cl.enqueue(encode(blockedFrame{Type: "blocked", Ref: f.Ref, ClientID: f.ClientID, ConversationID: m.ConversationID,
				MessageID: m.ID, Seq: m.Seq, Reason: site.Settings.blockedReason(cl.lang, r.Categories), Categories: r.Categories}))
			return
		}
		cl.enqueue(encode(ackFrame{Type: "ack", Ref: f.Ref, ClientID: f.ClientID, ConversationID: m.ConversationID,
			MessageID: m.ID, Seq: m.Seq, CreatedAt: m.CreatedAt, Duplicate: r.Duplicate, Redacted: r.Redacted, Text: m.Text}))
	}
}

// sendBacklog answers resume/subscribe with the messages after afterSeq,
// in frames of at most 200 messages. visitorID filters for a visitor.
func (s *Service) sendBacklog(ctx context.Context, cl *client, ref, convID string, afterSeq int64, visitorID string) {
	for {
		msgs, err := s.messagesAfter(ctx, convID, afterSeq, 200)
		if err != nil {
			cl.fail(ref, asFrameError(s, err))
			return
		}
		out := make([]Message, 0, len(msgs))
		for _, m := range msgs {
			if visitorID != "" {
				if vm, ok := m.forVisitor(visitorID); ok {
					out = append(out, vm)
				}
			} else {
				out = append(out, m.forAgent())
			}
		}
		complete := len(msgs) < 200
		cl.enqueue(encode(messagesFrame{Type: "messages", Ref: ref, ConversationID: convID, Messages: out, Complete: complete}))
		if complete {
			return
		}
		afterSeq = msgs[len(msgs)-1].Seq
	}
}

// updateVisitorProfile stores the pre-chat form through the writer (the
// writer caches names for summaries).
func (s *Service) updateVisitorProfile(ctx context.Context, visitorID, name, email string, fields map[string]string) *frameError {
	name, email = strings.TrimSpace(name), strings.TrimSpace(email)
	if utf8.RuneCountInString(name) > 200 {
		return errf(CodeBadRequest, "name is longer than 200 characters")
	}
	if email != "" {
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
			return errf(CodeBadRequest, "email %q is not an address", email)
		}
	}
	if len(fields) > 20 {
		return errf(CodeBadRequest, "at most 20 custom fields")
	}
	for k, v := range fields {
		if len(k) > 64 || utf8.RuneCountInString(v) > 1000 {
			return errf(CodeBadRequest, "field %q is too long", truncate(k, 64))
		}
	}
	err := s.writer.do(ctx, func(t *wtx) error {
		v, err := t.visitor(visitorID)
		if err != nil {
			return err
		}
		if name != "" {
			v.Name = name
		}
		if email != "" {
			v.Email = email
		}
		if len(fields) == 0 {
			fields = nil // keep the fields stored before
		}
		if err := t.tx.UpdateVisitorProfile(t.ctx, visitorID, v.Name, v.Email, fields); err != nil {
			return err
		}
		t.vis[visitorID] = v
		return nil
	})
	if err != nil {
		return asFrameError(s, err)
	}
	return nil
}
