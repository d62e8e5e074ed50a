package main

import (
	"sync"

	"github.com/parleychat/parley/access"
)

// socketCloser is a service holding staff sockets open beyond one request
// (chat's /ws/agent, analytics' /ws/analytics). Both methods act on this
// node only.
type socketCloser interface {
	CloseSessionSockets(sessionID, reason string)
	CloseUserSockets(userID, reason string)
}

// staffSockets tells every service holding staff sockets when access ends
// a session or changes a user (access.AccessListener): those of this node
// directly, and those of every other node through the live bus when nodes
// share PostgreSQL (nodeBus). The services also look sessions up again
// periodically, a backstop for a bus message a node missed.
type staffSockets struct {
	mu      sync.RWMutex
	closers []socketCloser
	bus     *nodeBus // nil when the node runs alone
}

func (s *staffSockets) add(c socketCloser) {
	s.mu.Lock()
	s.closers = append(s.closers, c)
	s.mu.Unlock()
}

func (s *staffSockets) SessionEnded(sessionID, reason string) {
	s.closeSessionHere(sessionID, reason)
	if s.bus != nil {
		s.bus.publishAccess(accessMessage{Kind: accessSession, Session: sessionID, Reason: reason})
	}
}

func (s *staffSockets) UserChanged(userID, reason string) {
	s.closeUserHere(userID, reason)
	if s.bus != nil {
		s.bus.publishAccess(accessMessage{Kind: accessUser, User: userID, Reason: reason})
	}
}

func (s *staffSockets) closeSessionHere(sessionID, reason string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.closers {
		c.CloseSessionSockets(sessionID, reason)
	}
}

func (s *staffSockets) closeUserHere(userID, reason string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.closers {
		c.CloseUserSockets(userID, reason)
	}
}

var _ access.AccessListener = (*staffSockets)(nil)
