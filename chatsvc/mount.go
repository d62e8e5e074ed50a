package chatsvc

import (
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// Mount registers chatsvc's routes: /widget.js, /widget/*, /api/chat/*,
// /ws/visitor, /ws/agent and /files/*.
func (s *Service) Mount(r fiber.Router) {
	g := s.cfg.Guard
	wsCfg := websocket.Config{
		HandshakeTimeout: 10e9,
		// Origins are checked by visitorUpgrade/agentUpgrade with precise errors.
		ReadBufferSize: 4096, WriteBufferSize: 4096,
		RecoverHandler: s.recoverSocket,
	}
	r.Get("/widget.js", s.serveWidgetJS)
	r.Get("/widget/:file", s.serveWidgetAsset)

	v := r.Group("/api/chat/visitor", s.visitorCORS)
	v.Post("/session", s.visitorSession)
	v.Get("/conversations/:id/messages", s.visitorAuth, s.visitorMessages)
	v.Post("/attachments", s.visitorAuth, s.visitorUpload)

	agent := g.Require(access.Agent)
	// Supervisors read transcripts (report drill-downs), agents' presence
	// (live overview) and canned replies (which they manage) without the agent role.
	staffRead := g.Require(access.Agent, access.Supervisor)
	r.Get("/api/chat/conversations", agent, s.listConversations)
	r.Get("/api/chat/conversations/:id", staffRead, s.getConversation)
	r.Get("/api/chat/conversations/:id/messages", staffRead, s.getMessages)
	r.Post("/api/chat/conversations/:id/assign", agent, s.assignConversation)
	r.Post("/api/chat/conversations/:id/transfer", agent, s.transferConversation)
	r.Post("/api/chat/conversations/:id/status", agent, s.setConversationStatus)
	r.Post("/api/chat/attachments", agent, s.staffUpload)
	r.Get("/api/chat/agents", staffRead, s.listAgents)
	r.Get("/api/chat/canned", staffRead, s.listCanned)
	sup := g.Require(access.Supervisor)
	r.Post("/api/chat/canned", sup, s.createCanned)
	r.Put("/api/chat/canned/:id", sup, s.updateCanned)
	r.Delete("/api/chat/canned/:id", sup, s.deleteCanned)
	admin := g.Require(access.Admin)
	r.Get("/api/chat/sites", admin, s.listSites)
	r.Post("/api/chat/sites", admin, s.createSite)
	r.Get("/api/chat/sites/:id", admin, s.getSite)
	r.Put("/api/chat/sites/:id", admin, s.updateSite)
	r.Delete("/api/chat/sites/:id", admin, s.deleteSite)
	r.Post("/api/chat/sites/:id/secret", admin, s.rotateSecret)

	r.Get("/files/:id/:name", s.serveFile)

	r.Get("/ws/visitor", s.visitorUpgrade, websocket.New(s.visitorSocket, wsCfg))
	r.Get("/ws/agent", agent, s.agentUpgrade, websocket.New(s.agentSocket, wsCfg))
}

// recoverSocket keeps a panic in one socket from killing the process.
func (s *Service) recoverSocket(c *websocket.Conn) {
	if err := recover(); err != nil {
		s.log.Error("panic in socket handler", "panic", err)
		_ = c.WriteMessage(websocket.TextMessage, errorBytes("", errf(CodeInternal, "internal error")))
	}
}
