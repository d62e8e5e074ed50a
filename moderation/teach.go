package moderation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley/access"
)

// Moderators teach the engine from a review item in one click: the term
// or domain a span of the item matched goes on the site's allow list
// ("never flag this again") or block list ("always block this"). The
// change edits the site's policy like a policy save: validated, compiled,
// stored with an audit row, and applied to this node's inline checks at
// once (other nodes within PolicyTTL).

// Lists a list action can put a term or domain on.
const (
	ListAllow = "allow"
	ListBlock = "block"
)

// What a list action changes: a term (allow, block.custom) or a domain
// (links.allow_domains, links.block_domains).
const (
	ListKindTerm   = "term"
	ListKindDomain = "domain"
)

// ListChange is a moderator's list action on an item.
type ListChange struct {
	// List is "allow" or "block".
	List string `json:"list"`
	// Match is the term or domain one of the item's spans matched (the
	// span's "match").
	Match string `json:"match"`
	// Reason is optional; the audit log keeps it.
	Reason string `json:"reason,omitempty"`
}

// ListResult is what a list action changed, and the site's new policy.
type ListResult struct {
	SiteID string `json:"site_id"`
	List   string `json:"list"`
	Kind   string `json:"kind"`
	Value  string `json:"value"`
	// RemovedFrom names the opposite list the value was taken off
	// ("block" when allowing a term the site blocked), if any.
	RemovedFrom string `json:"removed_from,omitempty"`
	Policy      Policy `json:"policy"`
}

// TeachList puts the term or domain an item's span matched on the site's
// allow or block list. Allowing takes it off the site's block lists and
// blocking off its allow list, so the list chosen last wins. A value
// already on the list is a conflict.
func (s *Service) TeachList(ctx context.Context, itemID string, by access.User, ch ListChange) (ListResult, error) {
	if ch.List != ListAllow && ch.List != ListBlock {
		return ListResult{}, badInput("list must be %q or %q", ListAllow, ListBlock)
	}
	value := strings.TrimSpace(ch.Match)
	if value == "" {
		return ListResult{}, badInput("match is required: the term or domain of one of the item's spans")
	}
	reason := strings.TrimSpace(ch.Reason)
	if n := utf8.RuneCountInString(reason); n > MaxReasonRunes {
		return ListResult{}, badInput("reason is %d characters; the limit is %d", n, MaxReasonRunes)
	}
	now := time.Now()
	res := ListResult{List: ch.List, Value: value}
	var engine *Engine
	err := s.store.Update(ctx, func(tx Tx) error {
		it, err := tx.LockItem(ctx, itemID)
		if err != nil {
			return err
		}
		res.SiteID = it.SiteID
		if res.Kind, err = matchKind(it, value); err != nil {
			return err
		}
		p, err := lockedPolicy(ctx, tx, it.SiteID)
		if err != nil {
			return err
		}
		if res.RemovedFrom, err = applyList(&p, res.List, res.Kind, value); err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return err
		}
		if engine, err = NewEngine(p); err != nil {
			return err
		}
		canon, err := jsonMarshal(p)
		if err != nil {
			return err
		}
		if err := tx.PutPolicy(ctx, it.SiteID, StoredPolicy{Doc: canon, UpdatedAt: now, UpdatedBy: by.ID}); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s %s %q", res.List, res.Kind, value)
		if res.RemovedFrom != "" {
			detail += " (taken off the " + res.RemovedFrom + " list)"
		}
		res.Policy = p
		return tx.AddAudit(ctx, AuditEntry{At: now, ActorID: by.ID, ActorEmail: by.Email, Action: res.List + "_" + res.Kind,
			SiteID: it.SiteID, ItemID: it.ID, VisitorID: it.VisitorID, Reason: reason, Detail: detail})
	})
	if err != nil {
		return ListResult{}, err
	}
	s.inline.remember(res.SiteID, engine, now)
	return res, nil
}

// matchKind finds the span of it that matched value: a link span names a
// domain, any other a list term. Spans without a match (grammar rules,
// the model, PII) cannot be taught this way.
func matchKind(it Item, value string) (string, error) {
	var have []string
	for _, sp := range it.Spans {
		if sp.Match == "" {
			continue
		}
		if sp.Match == value {
			if strings.HasPrefix(sp.Rule, "link:") {
				return ListKindDomain, nil
			}
			return ListKindTerm, nil
		}
		if !slices.Contains(have, sp.Match) {
			have = append(have, sp.Match)
		}
	}
	if len(have) == 0 {
		return "", badInput("item %s matched no list term or domain (its spans come from rules without a term, the model or PII detectors)", it.ID)
	}
	return "", badInput("item %s has no span that matched %q; it matched %s", it.ID, value, quoteList(have))
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// lockedPolicy reads the site's policy under the transaction's lock; a
// site that saved none has the default.
func lockedPolicy(ctx context.Context, tx Tx, siteID string) (Policy, error) {
	sp, err := tx.LockPolicy(ctx, siteID)
	if errors.Is(err, ErrNotFound) {
		return DefaultPolicy(), nil
	}
	if err != nil {
		return Policy{}, err
	}
	p, err := ParsePolicy(sp.Doc)
	if err != nil {
		return Policy{}, fmt.Errorf("stored policy of %s: %w", siteID, err)
	}
	return p, nil
}

// applyList puts value on a list of p and takes it off the opposite one;
// it returns the opposite list's name when value was there.
func applyList(p *Policy, list, kind, value string) (string, error) {
	removed := false
	drop := func(l []string) []string {
		out := slices.DeleteFunc(l, func(v string) bool { return strings.EqualFold(strings.TrimSpace(v), value) })
		if len(out) != len(l) {
			removed = true
		}
		return out
	}
	has := func(l []string) bool {
		return slices.ContainsFunc(l, func(v string) bool { return strings.EqualFold(strings.TrimSpace(v), value) })
	}
	already := func(where string) error {
		return fmt.Errorf("%w: %q is already on the site's %s", ErrConflict, value, where)
	}
	switch {
	case kind == ListKindTerm && list == ListAllow:
		if has(p.Allow) {
			return "", already("allow list")
		}
		p.Allow = append(p.Allow, value)
		for cat := range p.Block {
			p.Block[cat] = drop(p.Block[cat])
		}
	case kind == ListKindTerm && list == ListBlock:
		if has(p.Block[CatCustom]) {
			return "", already("block list")
		}
		if p.Block == nil {
			p.Block = map[string][]string{}
		}
		p.Block[CatCustom] = append(p.Block[CatCustom], value)
		p.Allow = drop(p.Allow)
	case kind == ListKindDomain && list == ListAllow:
		if has(p.Links.AllowDomains) {
			return "", already("allowed domains")
		}
		p.Links.AllowDomains = append(p.Links.AllowDomains, value)
		p.Links.BlockDomains = drop(p.Links.BlockDomains)
	default:
		if has(p.Links.BlockDomains) {
			return "", already("blocked domains")
		}
		p.Links.BlockDomains = append(p.Links.BlockDomains, value)
		p.Links.AllowDomains = drop(p.Links.AllowDomains)
	}
	if !removed {
		return "", nil
	}
	if list == ListAllow {
		return ListBlock, nil
	}
	return ListAllow, nil
}
