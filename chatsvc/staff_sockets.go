package chatsvc

import (
	"context"
	"errors"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/parleychat/parley/access"
)

// Staff sockets end with their session: a signed-out, deleted or changed
// user must not keep reading visitors' messages. cmd/parley calls
// CloseSessionSockets and CloseUserSockets when access reports a change
// (access.AccessListener; on every node, through its live bus), and every
// open agent socket's session is looked up again every
// Config.StaffRecheck, a backstop for a notice a node missed.

// closeSessionEnded is the close code of a staff socket whose session
// ended or whose access changed; the console signs in again.
const closeSessionEnded = websocket.ClosePolicyViolation

// sessionEndedFrame tells a staff socket why it is being closed.
type sessionEndedFrame struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// CloseUserSockets (roles, password or account changed, or the user was
// deleted) is cluster.go's: hub.closeUserHere sends session_ended first.

// CloseSessionSockets closes every agent socket opened with the session
// sessionID (access.SessionIDOf) on this node: the user signed out.
func (s *Service) CloseSessionSockets(sessionID, reason string) {
	if sessionID == "" {
		return
	}
	s.closeStaff(func(c *client) bool { return c.session == sessionID }, reason)
}

func (s *Service) closeStaff(match func(*client) bool, reason string) {
	for _, c := range s.hub.staffClients(match) {
		c.enqueue(encode(sessionEndedFrame{Type: "session_ended", Reason: reason}))
		c.close(closeSessionEnded, reason)
	}
}

// staffClients returns the agent sockets match selects.
func (h *hub) staffClients(match func(*client) bool) []*client {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*client
	for c := range h.agents {
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}

// recheckStaffSessions looks every open agent socket's session up again
// every Config.StaffRecheck until ctx ends.
func (s *Service) recheckStaffSessions(ctx context.Context) {
	tick := time.NewTicker(s.cfg.StaffRecheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.recheckStaffOnce(ctx)
		}
	}
}

func (s *Service) recheckStaffOnce(ctx context.Context) {
	checked := map[string]string{} // session → reason to close ("" keeps it)
	dir := s.cfg.Guard.Directory()
	for _, c := range s.hub.staffClients(func(*client) bool { return true }) {
		reason, done := checked[c.session]
		if !done {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			u, err := dir.CheckUserSession(cctx, c.session, c.user.ID)
			cancel()
			switch {
			case errors.Is(err, access.ErrAccountDeleted):
				reason = access.ReasonAccountDeleted
			case errors.Is(err, access.ErrNoSession):
				reason = "session ended"
			case err != nil:
				// The staff store is unreachable: keep the socket (the next
				// pass looks again) rather than drop every agent at once.
				s.log.Warn("staff session re-check failed", "err", err)
			case !u.Has(access.Agent):
				reason = "agent role removed"
			}
			checked[c.session] = reason
		}
		if reason != "" {
			c.enqueue(encode(sessionEndedFrame{Type: "session_ended", Reason: reason}))
			c.close(closeSessionEnded, reason)
		}
	}
}
