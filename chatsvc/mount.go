package chatsvc

import (
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// Mount registers chatsvc's routes: /widget.js, /widget/*, /api/chat/*,
// /ws/visitor, /ws/agent and /files/*.
func (s *Service) Mount(r fiber.Router) {
	g := s.cfg.Guard
	r.Get("/widget.js", s.serveWidgetJS)
	r.Get("/widget/:file", s.serveWidgetAsset)

	v := r.Group("/api/chat/visitor", s.visitorCORS)
	v.Post("/session", s.visitorSession)
	v.Get("/i18n", s.serveVisitorI18n)
	v.Get("/conversations/:id/messages", s.visitorAuth, s.visitorMessages)
	v.Post("/attachments", s.visitorAuth, s.visitorUpload)

	agent := g.Require(access.Agent)
	// Supervisors read transcripts (report drill-downs), agents' presence
	// (live overview) and canned replies (which they manage) without the agent role.
	staffRead := g.Require(access.Agent, access.Supervisor)
	r.Get("/api/chat/conversations", agent, s.listConversations)
	r.Get("/api/chat/conversations/:id", staffRead, s.getConversation)
	r.Get("/api/chat/conversations/:id/messages", staffRead, s.getMessages)
	r.Post("/api/chat/conversations/:id/messages", agent, s.postMessage)
	r.Post("/api/chat/conversations/:id/assign", agent, s.assignConversation)
	r.Post("/api/chat/conversations/:id/transfer", agent, s.transferConversation)
	r.Post("/api/chat/conversations/:id/status", agent, s.setConversationStatus)
	r.Post("/api/chat/attachments", agent, s.staffUpload)
	r.Get("/api/chat/agents", staffRead, s.listAgents)
	r.Get("/api/chat/canned", staffRead, s.listCanned)
	r.Get("/api/chat/my-sites", g.Require(), s.mySites)
	sup := g.Require(access.Supervisor)
	r.Post("/api/chat/canned", sup, s.createCanned)
	r.Put("/api/chat/canned/:id", sup, s.updateCanned)
	r.Delete("/api/chat/canned/:id", sup, s.deleteCanned)
	admin := g.Require(access.Admin)
	r.Get("/api/chat/languages", admin, s.listLanguages)
	r.Get("/api/chat/sites", admin, s.listSites)
	r.Post("/api/chat/sites", admin, s.createSite)
	r.Get("/api/chat/sites/:id", admin, s.getSite)
	r.Put("/api/chat/sites/:id", admin, s.updateSite)
	r.Delete("/api/chat/sites/:id", admin, s.deleteSite)
	r.Post("/api/chat/sites/:id/secret", admin, s.rotateSecret)
	r.Post("/api/chat/sites/:id/webhook-secret", admin, s.rotateWebhookSecret)

	r.Get("/files/:id/:name", s.serveFile)

	r.Get("/ws/visitor", s.visitorUpgrade)
	r.Get("/ws/agent", agent, s.agentUpgrade)
}
