package chatsvc

import (
	"context"
	"database/sql"
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
	return Author{Role: string(ingest.RoleAgent), ID: u.ID, Name: u.Name}, u
}

func (s *Service) listConversations(c *fiber.Ctx) error {
	_, u := staffAuthor(c)
	f := ConversationFilter{
		Status: c.Query("status"), Scope: c.Query("scope"), Me: u.ID, SiteID: c.Query("site_id"),
		VisitorID: c.Query("visitor_id"), Limit: c.QueryInt("limit", 50),
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
	conv, err := s.conversation(ctx, c.Params("id"))
	if err != nil {
		return s.replyErr(c, err)
	}
	v, err := s.visitorDetail(ctx, conv.Visitor.ID)
	if err != nil {
		return s.replyErr(c, err)
	}
	past, err := s.Conversations(ctx, ConversationFilter{Status: "all", VisitorID: conv.Visitor.ID, Limit: 20})
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
	if _, err := s.convMeta(c.UserContext(), convID); err != nil {
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
	meta, err := s.convMeta(c.UserContext(), convID)
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
		if err := s.checkAgent(c.UserContext(), body.AgentID); err != nil {
			return s.replyErr(c, err)
		}
	}
	var out Conversation
	if err := s.writer.do(c.UserContext(), s.assignOp(convID, body.AgentID, by, &out)); err != nil {
		return s.replyErr(c, err)
	}
	return c.JSON(out)
}

// checkAgent verifies that id is a staff user with the agent role.
func (s *Service) checkAgent(ctx context.Context, id string) error {
	u, err := s.cfg.Guard.Store().User(ctx, id)
	if errors.Is(err, access.ErrNotFound) {
		return errf(CodeBadRequest, "agent %s does not exist", id)
	}
	if err != nil {
		return err
	}
	if !u.Has(access.Agent) {
		return errf(CodeBadRequest, "user %s is not an agent", id)
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
	meta, err := s.convMeta(c.UserContext(), convID)
	if err != nil {
		return s.replyErr(c, err)
	}
	if !u.Has(access.Supervisor) && meta.Assignee != "" && meta.Assignee != u.ID {
		return replyError(c, fiber.StatusForbidden, CodeForbidden, "only the assigned agent or a supervisor may transfer this conversation")
	}
	if body.ToAgentID != "" {
		if err := s.checkAgent(c.UserContext(), body.ToAgentID); err != nil {
			return s.replyErr(c, err)
		}
	}
	var out Conversation
	if err := s.writer.do(c.UserContext(), s.transferOp(convID, by, body.ToAgentID, body.ToTeamID, body.Note, &out)); err != nil {
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
	by, _ := staffAuthor(c)
	var out Conversation
	if err := s.writer.do(c.UserContext(), s.statusOp(c.Params("id"), by, body.Status, &out)); err != nil {
		return s.replyErr(c, err)
	}
	return c.JSON(out)
}

func (s *Service) listAgents(c *fiber.Ctx) error {
	users, err := s.cfg.Guard.Store().Users(c.UserContext())
	if err != nil {
		return s.replyErr(c, err)
	}
	out := []AgentInfo{}
	for _, u := range users {
		if !u.Has(access.Agent) {
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
	return s.upload(c, u.ID)
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
	q := `SELECT id, site_id, shortcut, text FROM canned_replies`
	var args []any
	if site := c.Query("site_id"); site != "" {
		q += ` WHERE site_id = '' OR site_id = ?`
		args = append(args, site)
	}
	rows, err := s.db.QueryContext(c.UserContext(), q+` ORDER BY shortcut, site_id`, args...)
	if err != nil {
		return s.replyErr(c, fmt.Errorf("list canned replies: %w", err))
	}
	defer rows.Close()
	out := []Canned{}
	for rows.Next() {
		var r Canned
		if err := rows.Scan(&r.ID, &r.SiteID, &r.Shortcut, &r.Text); err != nil {
			return s.replyErr(c, fmt.Errorf("list canned replies: %w", err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return s.replyErr(c, fmt.Errorf("list canned replies: %w", err))
	}
	return c.JSON(fiber.Map{"canned": out})
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
	r.ID = ingest.NewID()
	if _, err := s.db.ExecContext(c.UserContext(), `INSERT INTO canned_replies (id, site_id, shortcut, text) VALUES (?, ?, ?, ?)`, r.ID, r.SiteID, r.Shortcut, r.Text); err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return replyError(c, fiber.StatusConflict, "shortcut_taken", fmt.Sprintf("/%s already exists for this site", r.Shortcut))
		}
		return s.replyErr(c, fmt.Errorf("create canned reply: %w", err))
	}
	return c.Status(fiber.StatusCreated).JSON(r)
}

func (s *Service) updateCanned(c *fiber.Ctx) error {
	r, err := s.parseCanned(c)
	if err != nil {
		return s.replyErr(c, err)
	}
	r.ID = c.Params("id")
	res, err := s.db.ExecContext(c.UserContext(), `UPDATE canned_replies SET site_id = ?, shortcut = ?, text = ? WHERE id = ?`, r.SiteID, r.Shortcut, r.Text, r.ID)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return replyError(c, fiber.StatusConflict, "shortcut_taken", fmt.Sprintf("/%s already exists for this site", r.Shortcut))
		}
		return s.replyErr(c, fmt.Errorf("update canned reply: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "canned reply "+r.ID+" not found")
	}
	return c.JSON(r)
}

func (s *Service) deleteCanned(c *fiber.Ctx) error {
	if _, err := s.db.ExecContext(c.UserContext(), `DELETE FROM canned_replies WHERE id = ?`, c.Params("id")); err != nil {
		return s.replyErr(c, fmt.Errorf("delete canned reply: %w", err))
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// Files.

func (s *Service) serveFile(c *fiber.Ctx) error {
	id := c.Params("id")
	if !keyPattern.MatchString(id) {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "file not found")
	}
	var name, ct string
	var size int64
	err := s.db.QueryRowContext(c.UserContext(), `SELECT name, content_type, size FROM attachments WHERE id = ?`, id).Scan(&name, &ct, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "file not found")
	}
	if err != nil {
		return s.replyErr(c, fmt.Errorf("read attachment %s: %w", id, err))
	}
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
