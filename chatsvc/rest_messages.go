package chatsvc

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// postMessageRequest is the body of POST /api/chat/conversations/:id/messages.
type postMessageRequest struct {
	Text     string `json:"text"`
	ClientID string `json:"client_id"`
	Kind     string `json:"kind"`
	// As is who the message is from for API tokens: "agent" (AgentID
	// names which) or "bot". Signed-in agents always send as themselves.
	As      string `json:"as"`
	AgentID string `json:"agent_id"`
}

// postMessage sends a message into a conversation over REST, the same way
// the agent socket's send frame does: an agent's first text message takes
// an unassigned conversation, a resolved one reopens. API tokens with the
// messages:write scope send as a named agent or as the site's bot.
func (s *Service) postMessage(c *fiber.Ctx) error {
	var body postMessageRequest
	if err := c.BodyParser(&body); err != nil {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, "body must be JSON {text, client_id, kind?, as?, agent_id?}")
	}
	ctx := c.UserContext()
	convID := c.Params("id")
	if body.Kind == "" {
		body.Kind = ingest.KindText
	}
	if body.Kind != ingest.KindText && body.Kind != ingest.KindNote {
		return replyError(c, fiber.StatusBadRequest, CodeBadRequest, fmt.Sprintf("kind must be text or note, not %q", body.Kind))
	}
	if fe := s.checkText(inFrame{ClientID: body.ClientID, Text: body.Text}); fe != nil {
		return s.replyErr(c, fe)
	}
	_, u := staffAuthor(c)
	meta, err := s.convOnSite(ctx, u, convID)
	if err != nil {
		return s.replyErr(c, err)
	}
	author, err := s.restAuthor(c, body, meta.SiteID)
	if err != nil {
		return s.replyErr(c, err)
	}
	if ok, wait := s.agentLimit.allow(author.ID); !ok {
		return replyError(c, fiber.StatusTooManyRequests, CodeRateLimited, fmt.Sprintf("too many messages; retry in %s", (wait+time.Second).Truncate(time.Second)))
	}
	res, err := s.send(ctx, sendReq{Author: author, SiteID: meta.SiteID, ConversationID: convID, ClientID: body.ClientID, Kind: body.Kind, Text: body.Text})
	if err != nil {
		return s.replyErr(c, err)
	}
	status := fiber.StatusCreated
	if res.Duplicate {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(fiber.Map{"message": res.Msg.forAgent(), "duplicate": res.Duplicate})
}

// restAuthor decides who a REST message is from.
func (s *Service) restAuthor(c *fiber.Ctx, body postMessageRequest, siteID string) (Author, error) {
	author, u := staffAuthor(c)
	tok, isToken := access.TokenOf(c)
	if !isToken {
		if body.As != "" && body.As != "agent" || body.AgentID != "" && body.AgentID != u.ID {
			return Author{}, errf(CodeForbidden, "signed-in staff send as themselves; as and agent_id are for API tokens")
		}
		return author, nil
	}
	switch body.As {
	case "bot":
		if body.Kind == ingest.KindNote {
			return Author{}, errf(CodeBadRequest, "the bot does not write notes")
		}
		site, ok := s.sites.get(siteID)
		if !ok {
			return Author{}, errf(CodeNotFound, "site %s not found", siteID)
		}
		a := s.botAuthor(site)
		a.ID = access.TokenUserID(tok.ID)
		return a, nil
	case "agent":
		if body.AgentID == "" {
			return Author{}, errf(CodeBadRequest, "agent_id is required with as \"agent\"")
		}
		if err := s.checkAgent(c.UserContext(), body.AgentID, siteID); err != nil {
			return Author{}, err
		}
		return Author{Role: string(ingest.RoleAgent), ID: body.AgentID, Name: s.agentName(body.AgentID)}, nil
	}
	return Author{}, errf(CodeBadRequest, "as must be \"agent\" (with agent_id) or \"bot\" for API tokens, not %q", body.As)
}

// send runs a sendOp through the writer and waits for its commit.
func (s *Service) send(ctx context.Context, req sendReq) (sendResult, error) {
	type outcome struct {
		res sendResult
		err error
	}
	ch := make(chan outcome, 1)
	s.writer.submit(ctx, s.sendOp(req, func(r sendResult, err error) { ch <- outcome{r, err} }))
	select {
	case o := <-ch:
		return o.res, o.err
	case <-s.stopped:
		return sendResult{}, errStopped
	case <-ctx.Done():
		return sendResult{}, ctx.Err()
	}
}
