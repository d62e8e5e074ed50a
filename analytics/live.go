package analytics

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
)

// checkOrigin admits a WebSocket upgrade only from this server's own
// origin or a configured one, so another site cannot ride a supervisor's
// cookie; it also refuses upgrades once MaxLive connections are open.
func (s *Service) checkOrigin(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.NewError(fiber.StatusUpgradeRequired, "websocket upgrade required")
	}
	origin := c.Get(fiber.HeaderOrigin)
	if !s.originAllowed(origin, c.Hostname()) {
		return fiber.NewError(fiber.StatusForbidden, "origin not allowed")
	}
	if _, err := locationParam(c); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	if s.liveConns.Load() >= int64(s.cfg.MaxLive) {
		return fiber.NewError(fiber.StatusTooManyRequests, "too many live analytics connections")
	}
	u, _ := access.UserOf(c)
	c.Locals("analytics.user", u.ID)
	c.Locals("analytics.session", access.SessionIDOf(c))
	c.Locals("analytics.sites", u.SiteScope())
	return c.Next()
}

func (s *Service) originAllowed(origin, host string) bool {
	if origin == "" {
		return false
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == origin {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, host)
}

// live pushes the overview every OverviewEvery until the client goes, the
// service stops, or a write fails. Client messages are read and dropped
// (the read loop notices the close).
func (s *Service) live(conn *websocket.Conn) {
	defer conn.Close()
	if s.liveConns.Add(1) > int64(s.cfg.MaxLive) {
		s.liveConns.Add(-1)
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "too many live connections"), time.Now().Add(time.Second))
		return
	}
	defer s.liveConns.Add(-1)
	ls := &liveSocket{userID: conn.Locals("analytics.user").(string), session: conn.Locals("analytics.session").(string), end: make(chan string, 1)}
	s.liveSocks.add(ls)
	defer s.liveSocks.remove(ls)
	checked := time.Now()
	loc, _ := locationParam(conn)
	site := conn.Query("site")
	sites, _ := conn.Locals("analytics.sites").([]string)
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		conn.SetReadLimit(1024)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(s.cfg.OverviewEvery)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.QueryTimeout)
		o, err := s.overviewIn(ctx, site, sites, loc)
		cancel()
		var msg any = o
		if err != nil {
			s.log.Warn("live overview failed", "err", err)
			msg = fiber.Map{"error": "analytics store unavailable"}
		}
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := conn.WriteJSON(msg); err != nil {
			return
		}
		if time.Since(checked) >= s.cfg.StaffRecheck {
			checked = time.Now()
			if reason := s.liveSessionGone(s.ctx, ls.userID, ls.session); reason != "" {
				ls.stop(reason)
			}
		}
		select {
		case reason := <-ls.end:
			closeLive(conn, reason)
			return
		case <-gone:
			return
		case <-s.ctx.Done():
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server stopping"), time.Now().Add(time.Second))
			return
		case <-tick.C:
		}
	}
}
