package chatsvc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

func staffAuthor(c *fiber.Ctx) (Author, access.User) {
	u, _ := access.UserOf(c)
	return staffActor(u), u
}

func (s *Service) listConversations(c *fiber.Ctx) error {
	_, u := staffAuthor(c)
	f := ConversationFilter{
		Status: c.Query("status"), Scope: c.Query("scope"), Me: u.ID, SiteID: c.Query("site_id"),
		Sites: u.SiteScope(), VisitorID: c.Query("visitor_id"), Limit: c.QueryInt("limit", 50),
	}
	if f.SiteID != "" && !u.OnSite(f.SiteID) {
		return replyError(c, fiber.StatusForbidden, CodeForbidden, "you do not work on site "+truncate(f.SiteID, 64))
	}
	if b := c.Query("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			return replyError(c, fiber.StatusBadRequest, CodeBadRequest, fmt.Sprintf("before %q is not an RFC 3339 time", b))
		}
		f.Before = t
	}
	list, err := s.Conversations(c.UserContext(), f)
	if err != nil {
		return s.replyErr(c, err)
	}
	return c.JSON(fiber.Map{"conversations": list})
}

type conversationDetail struct {
	Conversation      Conversation   `json:"conversation"`
	Visitor           Visitor        `json:"visitor"`
	PastConversations []Conversation `json:"past_conversations"`
}

func (s *Service) getConversation(c *fiber.Ctx) error {
	ctx := c.UserContext()
	_, u := staffAuthor(c)
	conv, err := s.conversation(ctx, c.Params("id"))
	if err != nil {
		return s.replyErr(c, err)
	}
	if err := onSite(u, conv.SiteID); err != nil {
		return s.replyErr(c, err)
	}
	v, err := s.visitorDetail(ctx, conv.Visitor.ID)
	if err != nil {
		return s.replyErr(c, err)
	}
	past, err := s.Conversations(ctx, ConversationFilter{Status: "all", VisitorID: conv.Visitor.ID, Sites: u.SiteScope(), Limit: 20})
	if err != nil {
		return s.replyErr(c, err)
	}
	others := make([]Conversation, 0, len(past))
	for _, p := range past {
		if p.ID != conv.ID {
			others = append(others, p)
		}
	}
	return c.JSON(conversationDetail{Conversation: conv, Visitor: v, PastConversations: others})
}

func (s *Service) getMessages(c *fiber.Ctx) error {
	convID := c.Params("id")
	_, u := staffAuthor(c)
	if _, err := s.convOnSite(c.UserContext(), u, convID); err != nil {
		return s.replyErr(c, err)
	}
	msgs, err := s.messagesAfter(c.UserContext(), convID, int64(c.QueryInt("after_seq", 0)), clamp(c.QueryInt("limit", 200), 1, 500))
	if err != nil {
		return s.replyErr(c, err)
	}
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = m.forAgent()
	}
	return c.JSON(fiber.Map{"messages": out})
}

func (s *Service) assignConversation(c *fiber.Ctx) error {
	var body struct {
		AgentID string `json:"agent_id"`
	}
	if err := c.BodyParser(&body); err != nil {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "body must be JSON {agent_id}")
	}
	by, u := staffAuthor(c)
	convID := c.Params("id")
	meta, err := s.convOnSite(c.UserContext(), u, convID)
	if err != nil {
		return s.replyErr(c, err)
	}
	if !u.Has(access.Supervisor) {
		if body.AgentID != u.ID {
			return replyError(c, fiber.StatusForbidden, CodeForbidden, "agents may only assign conversations to themselves; supervisors may assign anyone")
		}
		if meta.Assignee != "" && meta.Assignee != u.ID {
			return replyError(c, fiber.StatusForbidden, CodeForbidden, "this conversation belongs to another agent; ask them or a supervisor to transfer it")
		}
	}
	if body.AgentID != "" {
		if err := s.checkAgent(c.UserContext(), body.AgentID, meta.SiteID); err != nil {
			return s.replyErr(c, err)
		}
	}
	var out Conversation
	if err := s.writer.doOn(c.UserContext(), convID, s.assignOp(convID, body.AgentID, by, &out)); err != nil {
		return s.replyErr(c, err)
	}
	return c.JSON(out)
}

// checkAgent verifies that id is a staff user with the agent role who
// works on siteID.
func (s *Service) checkAgent(ctx context.Context, id, siteID string) error {
	u, err := s.cfg.Guard.Directory().User(ctx, id)
	if errors.Is(err, access.ErrNotFound) {
		return errf(CodeBadRequest, "agent %s does not exist", id)
	}
	if err != nil {
		return err
	}
	if !u.Has(access.Agent) {
		return errf(CodeBadRequest, "user %s is not an agent", id)
	}
	if !u.OnSite(siteID) {
		return errf(CodeBadRequest, "agent %s does not work on this conversation's site", id)
	}
	s.rememberAgent(u)
	return nil
}

func (s *Service) transferConversation(c *fiber.Ctx) error {
	var body struct {
		ToAgentID string `json:"to_agent_id"`
		ToTeamID  string `json:"to_team_id"`
		Note      string `json:"note"`
	}
	if err := c.BodyParser(&body); err != nil {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "body must be JSON {to_agent_id?, to_team_id?, note?}")
	}
	if body.ToAgentID == "" && body.ToTeamID == "" {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "set to_agent_id or to_team_id")
	}
	if n := utf8.RuneCountInString(body.Note); n > s.cfg.Limits.MaxMessageChars {
		return replyError(c, fiber.StatusBadRequest, CodeMessageTooLong, fmt.Sprintf("note of %d characters exceeds %d", n, s.cfg.Limits.MaxMessageChars))
	}
	by, u := staffAuthor(c)
	convID := c.Params("id")
	meta, err := s.convOnSite(c.UserContext(), u, convID)
	if err != nil {
		return s.replyErr(c, err)
	}
	if !u.Has(access.Supervisor) && meta.Assignee != "" && meta.Assignee != u.ID {
		return replyError(c, fiber.StatusForbidden, CodeForbidden, "only the assigned agent or a supervisor may transfer this conversation")
	}
	if body.ToAgentID != "" {
		if err := s.checkAgent(c.UserContext(), body.ToAgentID, meta.SiteID); err != nil {
			return s.replyErr(c, err)
		}
	}
	var out Conversation
	if err := s.writer.doOn(c.UserContext(), convID, s.transferOp(convID, by, body.ToAgentID, body.ToTeamID, body.Note, &out)); err != nil {
		return s.replyErr(c, err)
	}
	return c.JSON(out)
}

func (s *Service) setConversationStatus(c *fiber.Ctx) error {
	var body struct {
		Status string `json:"status"`
	}
	if err := c.BodyParser(&body); err != nil {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "body must be JSON {status}")
	}
	by, u := staffAuthor(c)
	if _, err := s.convOnSite(c.UserContext(), u, c.Params("id")); err != nil {
		return s.replyErr(c, err)
	}
	var out Conversation
	if err := s.writer.doOn(c.UserContext(), c.Params("id"), s.statusOp(c.Params("id"), by, body.Status, &out)); err != nil {
		return s.replyErr(c, err)
	}
	return c.JSON(out)
}

func (s *Service) listAgents(c *fiber.Ctx) error {
	_, me := staffAuthor(c)
	users, err := s.cfg.Guard.Directory().Users(c.UserContext())
	if err != nil {
		return s.replyErr(c, err)
	}
	out := []AgentInfo{}
	for _, u := range users {
		if !u.Has(access.Agent) || !me.SharesSite(u) {
			continue
		}
		info, _ := s.hub.agentInfo(u.ID)
		info.Name, info.TeamID = u.Name, u.TeamID
		out = append(out, info)
	}
	return c.JSON(fiber.Map{"agents": out})
}

func (s *Service) staffUpload(c *fiber.Ctx) error {
	_, u := staffAuthor(c)
	return s.upload(c, u.ID, "")
}

// Canned replies.

// Canned is a saved answer an agent inserts with /shortcut.
type Canned struct {
	ID       string `json:"id"`
	SiteID   string `json:"site_id"`
	Shortcut string `json:"shortcut"`
	Text     string `json:"text"`
}

var shortcutPattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

func (s *Service) listCanned(c *fiber.Ctx) error {
	_, u := staffAuthor(c)
	site := c.Query("site_id")
	if site != "" && !u.OnSite(site) {
		return replyError(c, fiber.StatusForbidden, CodeForbidden, "you do not work on site "+truncate(site, 64))
	}
	all, err := s.store.CannedReplies(c.UserContext(), site)
	if err != nil {
		return s.replyErr(c, err)
	}
	out := []Canned{}
	for _, r := range all {
		if r.SiteID == "" || u.OnSite(r.SiteID) {
			out = append(out, r)
		}
	}
	return c.JSON(fiber.Map{"canned": out})
}

// cannedScope refuses a canned reply change outside the staff member's
// sites: site replies need the site, global ones (no site) an admin.
func cannedScope(u access.User, siteID string) error {
	if siteID == "" && !u.IsAdmin() {
		return errf(CodeForbidden, "only admins manage canned replies for every site; set site_id to one of your sites")
	}
	if !u.OnSite(siteID) {
		return errf(CodeForbidden, "you do not work on site %s", siteID)
	}
	return nil
}

// cannedSite returns the site of a stored canned reply.
func (s *Service) cannedSite(ctx context.Context, id string) (string, error) {
	all, err := s.store.CannedReplies(ctx, "")
	if err != nil {
		return "", err
	}
	for _, r := range all {
		if r.ID == id {
			return r.SiteID, nil
		}
	}
	return "", errf(CodeNotFound, "canned reply %s not found", id)
}

func (s *Service) parseCanned(c *fiber.Ctx) (Canned, error) {
	var r Canned
	if err := c.BodyParser(&r); err != nil {
		return r, errf(CodeBadRequest, "body must be JSON {site_id?, shortcut, text}")
	}
	r.Shortcut = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(r.Shortcut)), "/")
	if !shortcutPattern.MatchString(r.Shortcut) {
		return r, errf(CodeBadRequest, "shortcut %q must be 1 to 32 of a-z, 0-9, _ and -", r.Shortcut)
	}
	if strings.TrimSpace(r.Text) == "" || utf8.RuneCountInString(r.Text) > s.cfg.Limits.MaxMessageChars {
		return r, errf(CodeBadRequest, "text must be 1 to %d characters", s.cfg.Limits.MaxMessageChars)
	}
	if r.SiteID != "" {
		if _, ok := s.sites.get(r.SiteID); !ok {
			return r, errf(CodeBadRequest, "site %s does not exist", r.SiteID)
		}
	}
	return r, nil
}

func (s *Service) createCanned(c *fiber.Ctx) error {
	r, err := s.parseCanned(c)
	if err != nil {
		return s.replyErr(c, err)
	}
	{
		_, u := staffAuthor(c)
		if err := cannedScope(u, r.SiteID); err != nil {
			return s.replyErr(c, err)
		}
	}
	r.ID = ingest.NewID()
	if err := s.store.InsertCanned(c.UserContext(), r); err != nil {
		if errors.Is(err, errShortcutTaken) {
			return replyError(c, fiber.StatusConflict, "shortcut_taken", fmt.Sprintf("/%s already exists for this site", r.Shortcut))
		}
		return s.replyErr(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(r)
}

func (s *Service) updateCanned(c *fiber.Ctx) error {
	r, err := s.parseCanned(c)
	if err != nil {
		return s.replyErr(c, err)
	}
	r.ID = c.Params("id")
	_, u := staffAuthor(c)
	old, err := s.cannedSite(c.UserContext(), r.ID)
	if err != nil {
		return s.replyErr(c, err)
	}
	for _, site := range []string{old, r.SiteID} {
		if err := cannedScope(u, site); err != nil {
			return s.replyErr(c, err)
		}
	}
	switch err := s.store.UpdateCanned(c.UserContext(), r); {
	case errors.Is(err, errShortcutTaken):
		return replyError(c, fiber.StatusConflict, "shortcut_taken", fmt.Sprintf("/%s already exists for this site", r.Shortcut))
	case errors.Is(err, ErrNotFound):
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "canned reply "+r.ID+" not found")
	case err != nil:
		return s.replyErr(c, err)
	}
	return c.JSON(r)
}

func (s *Service) deleteCanned(c *fiber.Ctx) error {
	_, u := staffAuthor(c)
	site, err := s.cannedSite(c.UserContext(), c.Params("id"))
	var fe *frameError
	if errors.As(err, &fe) && fe.Code == CodeNotFound {
		return c.SendStatus(fiber.StatusNoContent) // deleting a missing reply changes nothing
	}
	if err != nil {
		return s.replyErr(c, err)
	}
	if err := cannedScope(u, site); err != nil {
		return s.replyErr(c, err)
	}
	if err := s.store.DeleteCanned(c.UserContext(), c.Params("id")); err != nil {
		return s.replyErr(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// Files.

func (s *Service) serveFile(c *fiber.Ctx) error {
	id := c.Params("id")
	if !keyPattern.MatchString(id) {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "file not found")
	}
	a, err := s.store.Attachment(c.UserContext(), id)
	if errors.Is(err, ErrNotFound) {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "file not found")
	}
	if err != nil {
		return s.replyErr(c, err)
	}
	name, ct, size := a.Name, a.ContentType, a.Size
	r, err := s.files.Open(c.UserContext(), id)
	if err != nil {
		return s.replyErr(c, err)
	}
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	c.Set(fiber.HeaderCacheControl, "private, max-age=86400, immutable")
	disposition := "attachment"
	if inlineType(ct) {
		disposition = "inline"
		c.Set(fiber.HeaderContentType, ct)
	} else {
		c.Set(fiber.HeaderContentType, "application/octet-stream")
	}
	c.Set(fiber.HeaderContentDisposition, contentDisposition(disposition, name))
	return c.SendStream(r, int(size))
}

// contentDisposition quotes a file name safely: an ASCII fallback with
// anything risky replaced, and the exact name in RFC 5987 form.
func contentDisposition(kind, name string) string {
	var ascii strings.Builder
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == ';' || r == '%' || r == '<' || r == '>' {
			ascii.WriteByte('_')
			continue
		}
		ascii.WriteRune(r)
	}
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, ascii.String(), rfc5987(name))
}

func rfc5987(s string) string {
	const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if strings.IndexByte(unreserved, ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
