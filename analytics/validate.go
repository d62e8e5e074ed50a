package analytics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// StaffDirectory looks staff accounts up; *access.Store implements it.
type StaffDirectory interface {
	User(ctx context.Context, id string) (access.User, error)
}

// validator rejects events no legitimate producer writes: out of range
// times (check) and staff that do not exist. A staff id counts as existing
// when the staff directory has it, or when an earlier event with it was
// accepted (the store keeps those ids, so the history of a deleted
// account stays valid, also on replay).
type validator struct {
	staff StaffDirectory
	store Store

	mu     sync.Mutex
	seen   map[string]bool
	loaded bool
}

func newValidator(staff StaffDirectory, store Store) *validator {
	return &validator{staff: staff, store: store, seen: map[string]bool{}}
}

// staffRefs lists the staff ids an event names: an agent or moderator
// actor, and the agents an assignment or transfer names.
func staffRefs(e ingest.Event) []staffRef {
	var out []staffRef
	if e.Actor.Role == ingest.RoleAgent || e.Actor.Role == ingest.RoleModerator {
		out = append(out, staffRef{id: e.Actor.ID, what: "actor " + string(e.Actor.Role)})
	}
	switch e.Type {
	case ingest.ConversationAssigned:
		var p ingest.ConversationAssignedPayload
		if e.Into(&p) == nil {
			out = append(out, staffRef{id: p.AgentID, what: "assigned agent_id"})
		}
	case ingest.ConversationTransferred:
		var p ingest.ConversationTransferredPayload
		if e.Into(&p) == nil {
			if p.ToAgentID != "" {
				out = append(out, staffRef{id: p.ToAgentID, what: "to_agent_id"})
			}
			if p.FromAgentID != "" {
				out = append(out, staffRef{id: p.FromAgentID, what: "from_agent_id"})
			}
		}
	}
	return out
}

type staffRef struct{ id, what string }

// validate splits records into those to load and those to dead-letter. An
// error (the staff directory or store failing) means: retry the batch.
func (v *validator) validate(ctx context.Context, batch []ingest.Record) ([]ingest.Record, []ingest.Reject, error) {
	if err := v.load(ctx); err != nil {
		return nil, nil, err
	}
	good := make([]ingest.Record, 0, len(batch))
	var rejects []ingest.Reject
	var fresh []string
	known := map[string]bool{}
	for _, r := range batch {
		if reason := check(r.Event); reason != "" {
			rejects = append(rejects, ingest.Reject{Record: r, Reason: "analytics: " + reason})
			continue
		}
		reason := ""
		for _, ref := range staffRefs(r.Event) {
			ok, isNew, err := v.exists(ctx, ref.id, known)
			if err != nil {
				return nil, nil, err
			}
			if isNew {
				fresh = append(fresh, ref.id)
			}
			if !ok {
				reason = fmt.Sprintf("analytics: %s %q of %s is not a Parley staff account", ref.what, ref.id, r.Event.Type)
				break
			}
		}
		if reason != "" {
			rejects = append(rejects, ingest.Reject{Record: r, Reason: reason})
			continue
		}
		good = append(good, r)
	}
	if len(fresh) > 0 {
		sort.Strings(fresh)
		if err := v.store.AddStaffSeen(ctx, fresh); err != nil {
			return nil, nil, fmt.Errorf("record verified staff: %w", err)
		}
		v.mu.Lock()
		for _, id := range fresh {
			v.seen[id] = true
		}
		v.mu.Unlock()
	}
	return good, rejects, nil
}

// exists looks id up (known caches this batch's answers); isNew is true
// the first time the directory vouches for it.
func (v *validator) exists(ctx context.Context, id string, known map[string]bool) (ok, isNew bool, err error) {
	if ok, done := known[id]; done {
		return ok, false, nil
	}
	v.mu.Lock()
	seen := v.seen[id]
	v.mu.Unlock()
	if seen {
		known[id] = true
		return true, false, nil
	}
	if id == "" {
		known[id] = false
		return false, false, nil
	}
	_, err = v.staff.User(ctx, id)
	switch {
	case errors.Is(err, access.ErrNotFound):
		known[id] = false
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("look up staff %s: %w", id, err)
	}
	known[id] = true
	return true, true, nil
}

func (v *validator) load(ctx context.Context) error {
	v.mu.Lock()
	loaded := v.loaded
	v.mu.Unlock()
	if loaded {
		return nil
	}
	ids, err := v.store.StaffSeen(ctx)
	if err != nil {
		return fmt.Errorf("load verified staff: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range ids {
		v.seen[id] = true
	}
	v.loaded = true
	return nil
}
