package chatsvc

import (
	"context"
	"sync"
	"time"

	"github.com/parleychat/parley/access"
)

// staffLookup finds a staff member by id (access.Directory).
type staffLookup interface {
	User(ctx context.Context, id string) (access.User, error)
}

// presenceScope decides whose presence a staff member sees: an agent's
// only when they share a site (admins and every-site staff see everyone),
// as the REST agent list does. Users are read from the directory and kept
// for staffScopeTTL: a change of someone's sites also ends their sessions,
// so a stale entry only shows or hides a presence line for that long.
type presenceScope struct {
	dir   staffLookup
	mu    sync.Mutex
	users map[string]scopedUser
}

type scopedUser struct {
	user  access.User
	known bool
	at    time.Time
}

const staffScopeTTL = 10 * time.Second

func newPresenceScope(dir staffLookup) *presenceScope {
	return &presenceScope{dir: dir, users: map[string]scopedUser{}}
}

// user returns the staff member id, or false when the directory does not
// know them or cannot be read (then only admins see their presence).
func (p *presenceScope) user(id string) (access.User, bool) {
	p.mu.Lock()
	e, ok := p.users[id]
	p.mu.Unlock()
	if ok && time.Since(e.at) < staffScopeTTL {
		return e.user, e.known
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	u, err := p.dir.User(ctx, id)
	e = scopedUser{user: u, known: err == nil, at: time.Now()}
	p.mu.Lock()
	if len(p.users) > 10000 {
		clear(p.users)
	}
	p.users[id] = e
	p.mu.Unlock()
	return e.user, e.known
}

// sees reports whether viewer may see the presence of agent id.
func (p *presenceScope) sees(viewer access.User, id string) bool {
	if viewer.IsAdmin() || viewer.ID == id {
		return true
	}
	subject, known := p.user(id)
	return known && viewer.SharesSite(subject)
}
