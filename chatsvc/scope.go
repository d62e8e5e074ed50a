package chatsvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/parleychat/parley/access"
)

// Staff are scoped to sites (access.User.Sites): admins see every site;
// agents, supervisors and moderators see and act only on their sites'
// conversations, agents, canned replies and sockets' frames. Routing gives
// a site's conversations only to agents on that site.

// onSite refuses a staff member acting on a site they do not work on.
func onSite(u access.User, siteID string) error {
	if u.OnSite(siteID) {
		return nil
	}
	return errf(CodeForbidden, "this conversation belongs to a site you do not work on")
}

// convOnSite loads a conversation's meta and checks the staff member's site.
func (s *Service) convOnSite(ctx context.Context, u access.User, convID string) (convMeta, error) {
	meta, err := s.convMeta(ctx, convID)
	if err != nil {
		return convMeta{}, err
	}
	return meta, onSite(u, meta.SiteID)
}

// staffTTL is how long a staff member's roles and sites are trusted from
// memory by routing; a change on this node forgets them at once.
const staffTTL = 30 * time.Second

// staffCache keeps staff accounts for routing decisions off the store.
type staffCache struct {
	mu    sync.Mutex
	users map[string]cachedStaff
}

type cachedStaff struct {
	u     access.User
	found bool
	at    time.Time
}

// staffMember returns a staff account, from memory when fresh. Only
// answers are kept: a store that is slow or down gives an error, and the
// last known account when there is one, so one slow read does not hide
// an agent from routing for staffTTL.
func (s *Service) staffMember(ctx context.Context, id string) (access.User, bool, error) {
	now := time.Now()
	s.staff.mu.Lock()
	c, ok := s.staff.users[id]
	s.staff.mu.Unlock()
	if ok && now.Sub(c.at) < staffTTL {
		return c.u, c.found, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	u, err := s.cfg.Guard.Directory().User(ctx, id)
	if err != nil && !errors.Is(err, access.ErrNotFound) {
		err = fmt.Errorf("read staff member %s: %w", id, err)
		if ok {
			return c.u, c.found, err
		}
		return access.User{}, false, err
	}
	c = cachedStaff{u: u, found: err == nil, at: now}
	s.staff.mu.Lock()
	if s.staff.users == nil || len(s.staff.users) > 10000 {
		s.staff.users = map[string]cachedStaff{}
	}
	s.staff.users[id] = c
	s.staff.mu.Unlock()
	return c.u, c.found, nil
}

// forgetStaff drops a cached account after its roles or sites changed.
func (s *Service) forgetStaff(id string) {
	s.staff.mu.Lock()
	delete(s.staff.users, id)
	s.staff.mu.Unlock()
}

// agentOnSite reports whether routing may give a site's conversation to an agent.
func (s *Service) agentOnSite(agentID, siteID string) bool {
	ok, _ := s.agentWorksOn(agentID, siteID)
	return ok
}

// agentWorksOn is agentOnSite with the error of a failed directory read
// (then the answer is the last known one, or no).
func (s *Service) agentWorksOn(agentID, siteID string) (bool, error) {
	u, ok, err := s.staffMember(context.Background(), agentID)
	return ok && u.Has(access.Agent) && u.OnSite(siteID), err
}

// agentAvailableOn reports whether an online agent works on the site, so
// a visitor is not told someone is there when only other sites' agents are.
func (s *Service) agentAvailableOn(siteID string) bool {
	for _, a := range s.hub.availableAgents() {
		if s.agentOnSite(a.ID, siteID) {
			return true
		}
	}
	return false
}
