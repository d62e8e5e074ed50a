package moderation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// Limits on moderator input.
const (
	MaxReasonRunes = 500
	MinBan         = time.Minute
	MaxBan         = 365 * 24 * time.Hour
)

// Decision is a moderator's action on an item.
type Decision struct {
	// Decision is approve, remove, ban or reviewed (ingest.Decision*).
	Decision string
	Reason   string
	// BanFor is the ban's length when Decision is ban. A ban also removes
	// the message.
	BanFor time.Duration
}

// decidedStatus maps a decision to the item status it leaves.
var decidedStatus = map[string]string{
	ingest.DecisionApprove:  StatusApproved,
	ingest.DecisionRemove:   StatusRemoved,
	ingest.DecisionBan:      StatusBanned,
	ingest.DecisionReviewed: StatusReviewed,
}

// inputError is a moderator's mistake, answered with 400.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

func checkReason(r string) (string, error) {
	r = strings.TrimSpace(r)
	if r == "" {
		return "", badInput("reason is required")
	}
	if n := utf8.RuneCountInString(r); n > MaxReasonRunes {
		return "", badInput("reason is %d characters; the limit is %d", n, MaxReasonRunes)
	}
	return r, nil
}

// claimedByOther reports a live claim by someone else.
func claimedByOther(it Item, userID string, now time.Time) bool {
	return it.ClaimedBy != "" && it.ClaimedBy != userID && it.ClaimUntil != nil && it.ClaimUntil.After(now)
}

func (s *Service) who(ctx context.Context, userID string) string {
	if s.cfg.Guard == nil {
		return userID
	}
	u, err := s.cfg.Guard.Directory().User(ctx, userID)
	if err != nil {
		return userID
	}
	return u.Email
}

// Claim gives an open item to a moderator for ClaimTTL. Claiming an item
// another moderator holds fails with ErrConflict; claiming one's own
// extends the claim.
func (s *Service) Claim(ctx context.Context, itemID string, by access.User) (Item, error) {
	now := time.Now()
	var it Item
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if it, err = tx.LockItem(ctx, itemID); err != nil {
			return err
		}
		if it.Status != StatusOpen {
			return fmt.Errorf("%w: item was already decided (%s)", ErrConflict, it.Status)
		}
		if claimedByOther(it, by.ID, now) {
			return fmt.Errorf("%w: item is claimed by %s until %s", ErrConflict, s.who(ctx, it.ClaimedBy), it.ClaimUntil.Format(time.RFC3339))
		}
		until := now.Add(s.cfg.ClaimTTL)
		if err := tx.ClaimItem(ctx, itemID, by.ID, until); err != nil {
			return err
		}
		it.ClaimedBy, it.ClaimUntil = by.ID, &until
		return nil
	})
	if err != nil {
		return Item{}, err
	}
	return it, nil
}

// Release gives up one's own claim.
func (s *Service) Release(ctx context.Context, itemID string, by access.User) (Item, error) {
	err := s.store.Update(ctx, func(tx Tx) error {
		it, err := tx.LockItem(ctx, itemID)
		if err != nil {
			return err
		}
		if it.Status != StatusOpen || it.ClaimedBy != by.ID {
			return fmt.Errorf("%w: you do not hold a claim on this item", ErrConflict)
		}
		return tx.ClaimItem(ctx, itemID, "", time.Time{})
	})
	if err != nil {
		return Item{}, err
	}
	return s.store.Item(ctx, itemID)
}

// Decide applies a moderator's decision: the item's status, a ban if
// asked, an audit row, a label (approve, remove and ban teach the model
// and feed the precision report) and a moderation.decision event in the
// outbox, all in one transaction.
func (s *Service) Decide(ctx context.Context, itemID string, by access.User, d Decision) (Item, error) {
	status, ok := decidedStatus[d.Decision]
	if !ok {
		return Item{}, badInput("decision %q is not approve, remove, ban or reviewed", d.Decision)
	}
	reason, err := checkReason(d.Reason)
	if err != nil {
		return Item{}, err
	}
	if d.Decision == ingest.DecisionBan && (d.BanFor < MinBan || d.BanFor > MaxBan) {
		return Item{}, badInput("ban duration %s is not between %s and %s", d.BanFor, MinBan, MaxBan)
	}
	now := time.Now()
	var it Item
	err = s.store.Update(ctx, func(tx Tx) error {
		var err error
		if it, err = tx.LockItem(ctx, itemID); err != nil {
			return err
		}
		if it.Status != StatusOpen {
			return fmt.Errorf("%w: item was already decided (%s by %s)", ErrConflict, it.Status, s.who(ctx, it.DecidedBy))
		}
		if claimedByOther(it, by.ID, now) {
			return fmt.Errorf("%w: item is claimed by %s until %s", ErrConflict, s.who(ctx, it.ClaimedBy), it.ClaimUntil.Format(time.RFC3339))
		}
		if err := tx.DecideItem(ctx, itemID, ItemDecision{Status: status, By: by.ID, Reason: reason, At: now}); err != nil {
			return err
		}
		payload := ingest.ModerationDecisionPayload{
			ItemID: it.ID, MessageID: it.MessageID, VisitorID: it.VisitorID, Decision: d.Decision, Reason: reason,
		}
		detail := ""
		if d.Decision == ingest.DecisionBan {
			until := ingest.At(now.Add(d.BanFor))
			payload.BanUntil = &until
			detail = "until " + until.Format(time.RFC3339)
			if err := tx.PutBan(ctx, Ban{SiteID: it.SiteID, VisitorID: it.VisitorID, Until: until.Time, Reason: reason,
				BannedBy: by.ID, ItemID: it.ID, CreatedAt: now}); err != nil {
				return err
			}
		}
		if err := tx.AddAudit(ctx, AuditEntry{At: now, ActorID: by.ID, ActorEmail: by.Email, Action: d.Decision,
			SiteID: it.SiteID, ItemID: it.ID, VisitorID: it.VisitorID, Reason: reason, Detail: detail}); err != nil {
			return err
		}
		if l, ok := labelOf(it, d.Decision, by.ID, now); ok {
			if err := tx.AddLabel(ctx, l); err != nil {
				return err
			}
		}
		ev, err := ingest.New(ingest.ModerationDecision, it.SiteID, it.ConversationID,
			ingest.Actor{Role: ingest.RoleModerator, ID: by.ID}, now, payload)
		if err != nil {
			return fmt.Errorf("decision event for %s: %w", it.ID, err)
		}
		return tx.AddEvent(ctx, ev, now)
	})
	if err != nil {
		return Item{}, err
	}
	s.metrics.decisions.WithLabelValues(d.Decision).Inc()
	s.metrics.reviewSeconds.Observe(now.Sub(it.CreatedAt).Seconds())
	s.metrics.backlog.Dec()
	s.wake()
	return s.store.Item(ctx, itemID)
}

// LiftBan ends a visitor's ban early, records who did it and why, and
// publishes an unban decision so chat nodes drop the ban they hold, all
// in one transaction. The event is keyed by the conversation of the item
// that led to the ban, so it follows the ban's event on its partition.
func (s *Service) LiftBan(ctx context.Context, siteID, visitorID string, by access.User, reason string) error {
	reason, err := checkReason(reason)
	if err != nil {
		return err
	}
	now := time.Now()
	err = s.store.Update(ctx, func(tx Tx) error {
		b, err := tx.DeleteBan(ctx, siteID, visitorID)
		if err != nil {
			return err
		}
		conv := unbanKey(visitorID)
		if b.ItemID != "" {
			it, err := tx.LockItem(ctx, b.ItemID)
			switch {
			case err == nil:
				conv = it.ConversationID
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		if err := tx.AddAudit(ctx, AuditEntry{At: now, ActorID: by.ID, ActorEmail: by.Email, Action: "lift_ban",
			SiteID: siteID, VisitorID: visitorID, Reason: reason}); err != nil {
			return err
		}
		ev, err := ingest.New(ingest.ModerationDecision, siteID, conv, ingest.Actor{Role: ingest.RoleModerator, ID: by.ID}, now,
			ingest.ModerationDecisionPayload{VisitorID: visitorID, Decision: ingest.DecisionUnban, Reason: reason})
		if err != nil {
			return fmt.Errorf("unban event for %s: %w", visitorID, err)
		}
		return tx.AddEvent(ctx, ev, now)
	})
	if err != nil {
		return err
	}
	s.metrics.decisions.WithLabelValues(ingest.DecisionUnban).Inc()
	s.wake()
	return nil
}

// unbanKey is the conversation_id of an unban whose ban names no item.
func unbanKey(visitorID string) string { return "visitor:" + visitorID }

// Bans lists a site's bans (all sites when siteID is empty), newest first.
func (s *Service) Bans(ctx context.Context, siteID string, activeOnly bool) ([]Ban, error) {
	f := BanFilter{SiteID: siteID, Limit: 1000}
	if activeOnly {
		f.After = time.Now()
	}
	return s.store.Bans(ctx, f)
}

// SavePolicy validates, compiles and stores a site's policy, with an
// audit row. The compiled engine replaces the cached one at once.
func (s *Service) SavePolicy(ctx context.Context, siteID string, doc []byte, by access.User) (Policy, error) {
	p, err := ParsePolicy(doc)
	if err != nil {
		return Policy{}, err
	}
	e, err := NewEngine(p)
	if err != nil {
		return Policy{}, err
	}
	canon, err := jsonMarshal(p)
	if err != nil {
		return Policy{}, err
	}
	now := time.Now()
	err = s.store.Update(ctx, func(tx Tx) error {
		if err := tx.PutPolicy(ctx, siteID, StoredPolicy{Doc: canon, UpdatedAt: now, UpdatedBy: by.ID}); err != nil {
			return err
		}
		return tx.AddAudit(ctx, AuditEntry{At: now, ActorID: by.ID, ActorEmail: by.Email, Action: "policy_update",
			SiteID: siteID, Detail: fmt.Sprintf("%d terms, %d regexes", e.Terms(), len(p.Regexes))})
	})
	if err != nil {
		return Policy{}, err
	}
	s.inline.remember(siteID, e, now)
	return p, nil
}

// PolicyInfo is a site's policy and where it came from.
type PolicyInfo struct {
	SiteID    string     `json:"site_id"`
	Policy    Policy     `json:"policy"`
	Stored    bool       `json:"stored"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	UpdatedBy string     `json:"updated_by,omitempty"`
}

// SitePolicy returns the site's saved policy, or the default one.
func (s *Service) SitePolicy(ctx context.Context, siteID string) (PolicyInfo, error) {
	info := PolicyInfo{SiteID: siteID}
	sp, err := s.store.Policy(ctx, siteID)
	if errors.Is(err, ErrNotFound) {
		info.Policy = DefaultPolicy()
		return info, nil
	}
	if err != nil {
		return info, err
	}
	p, err := ParsePolicy(sp.Doc)
	if err != nil {
		return info, fmt.Errorf("stored policy of %s: %w", siteID, err)
	}
	t := sp.UpdatedAt
	info.Policy, info.Stored, info.UpdatedAt, info.UpdatedBy = p, true, &t, sp.UpdatedBy
	return info, nil
}
