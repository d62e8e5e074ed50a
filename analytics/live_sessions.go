package analytics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"

	"github.com/parleychat/parley/access"
)

// A /ws/analytics socket ends with its session: cmd/parley calls
// CloseSessionSockets and CloseUserSockets when access reports a change
// (on every node), and each live socket looks its session up again every
// Config.StaffRecheck.

// liveSocket is one open /ws/analytics connection.
type liveSocket struct {
	userID, session string
	// end closes once with the reason the socket must close.
	end    chan string
	closed sync.Once
}

func (l *liveSocket) stop(reason string) {
	l.closed.Do(func() { l.end <- reason; close(l.end) })
}

// liveSockets indexes open live sockets for closing.
type liveSockets struct {
	mu  sync.Mutex
	all map[*liveSocket]struct{}
}

func (ls *liveSockets) add(l *liveSocket) {
	ls.mu.Lock()
	if ls.all == nil {
		ls.all = map[*liveSocket]struct{}{}
	}
	ls.all[l] = struct{}{}
	ls.mu.Unlock()
}

func (ls *liveSockets) remove(l *liveSocket) {
	ls.mu.Lock()
	delete(ls.all, l)
	ls.mu.Unlock()
}

func (ls *liveSockets) stopWhere(match func(*liveSocket) bool, reason string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for l := range ls.all {
		if match(l) {
			l.stop(reason)
		}
	}
}

// CloseUserSockets closes the live sockets of userID on this node.
func (s *Service) CloseUserSockets(userID, reason string) {
	s.liveSocks.stopWhere(func(l *liveSocket) bool { return l.userID == userID }, reason)
}

// CloseSessionSockets closes the live sockets opened with sessionID on this node.
func (s *Service) CloseSessionSockets(sessionID, reason string) {
	if sessionID != "" {
		s.liveSocks.stopWhere(func(l *liveSocket) bool { return l.session == sessionID }, reason)
	}
}

// liveSessionGone reports why the socket's session no longer admits the
// live overview ("" while it does; a store error keeps the socket).
func (s *Service) liveSessionGone(ctx context.Context, userID, session string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := s.cfg.Guard.Directory().CheckUserSession(ctx, session, userID)
	switch {
	case errors.Is(err, access.ErrAccountDeleted):
		return access.ReasonAccountDeleted
	case errors.Is(err, access.ErrNoSession):
		return "session ended"
	case err != nil:
		s.log.Warn("live socket session re-check failed", "err", err)
		return ""
	case !u.Has(access.Supervisor):
		return "supervisor role removed"
	}
	return ""
}

func closeLive(conn *websocket.Conn, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, reason), time.Now().Add(time.Second))
}
