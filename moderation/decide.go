package moderation

import (
	"context"
	"database/sql"
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
	u, err := s.cfg.Guard.Store().User(ctx, userID)
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Item{}, fmt.Errorf("claim %s: %w", itemID, err)
	}
	defer tx.Rollback()
	it, err := getItem(ctx, tx, itemID)
	if err != nil {
		return Item{}, err
	}
	if it.Status != StatusOpen {
		return Item{}, fmt.Errorf("%w: item was already decided (%s)", ErrConflict, it.Status)
	}
	if claimedByOther(it, by.ID, now) {
		return Item{}, fmt.Errorf("%w: item is claimed by %s until %s", ErrConflict, s.who(ctx, it.ClaimedBy), it.ClaimUntil.Format(time.RFC3339))
	}
	until := now.Add(s.cfg.ClaimTTL)
	if _, err := tx.ExecContext(ctx, `UPDATE mod_items SET claimed_by = ?, claim_until = ? WHERE id = ?`, by.ID, ms(until), itemID); err != nil {
		return Item{}, fmt.Errorf("claim %s: %w", itemID, err)
	}
	if err := tx.Commit(); err != nil {
		return Item{}, fmt.Errorf("claim %s: %w", itemID, err)
	}
	it.ClaimedBy, it.ClaimUntil = by.ID, &until
	return it, nil
}

// Release gives up one's own claim.
func (s *Service) Release(ctx context.Context, itemID string, by access.User) (Item, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mod_items SET claimed_by = '', claim_until = 0
		WHERE id = ? AND claimed_by = ? AND status = 'open'`, itemID, by.ID)
	if err != nil {
		return Item{}, fmt.Errorf("release %s: %w", itemID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := getItem(ctx, s.db, itemID); err != nil {
			return Item{}, err
		}
		return Item{}, fmt.Errorf("%w: you do not hold a claim on this item", ErrConflict)
	}
	return getItem(ctx, s.db, itemID)
}

// Decide applies a moderator's decision: the item's status, a ban if
// asked, an audit row and a moderation.decision event in the outbox, all
// in one transaction.
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Item{}, fmt.Errorf("decide %s: %w", itemID, err)
	}
	defer tx.Rollback()
	it, err := getItem(ctx, tx, itemID)
	if err != nil {
		return Item{}, err
	}
	if it.Status != StatusOpen {
		return Item{}, fmt.Errorf("%w: item was already decided (%s by %s)", ErrConflict, it.Status, s.who(ctx, it.DecidedBy))
	}
	if claimedByOther(it, by.ID, now) {
		return Item{}, fmt.Errorf("%w: item is claimed by %s until %s", ErrConflict, s.who(ctx, it.ClaimedBy), it.ClaimUntil.Format(time.RFC3339))
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mod_items SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?,
		claimed_by = '', claim_until = 0 WHERE id = ? AND status = 'open'`, status, by.ID, ms(now), reason, itemID); err != nil {
		return Item{}, fmt.Errorf("decide %s: %w", itemID, err)
	}
	payload := ingest.ModerationDecisionPayload{
		ItemID: it.ID, MessageID: it.MessageID, VisitorID: it.VisitorID, Decision: d.Decision, Reason: reason,
	}
	detail := ""
	if d.Decision == ingest.DecisionBan {
		until := ingest.At(now.Add(d.BanFor))
		payload.BanUntil = &until
		detail = "until " + until.Format(time.RFC3339)
		if _, err := tx.ExecContext(ctx, `INSERT INTO mod_bans (site_id, visitor_id, until_ms, reason, banned_by, item_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, visitor_id) DO UPDATE SET until_ms = excluded.until_ms,
			reason = excluded.reason, banned_by = excluded.banned_by, item_id = excluded.item_id, created_at = excluded.created_at`,
			it.SiteID, it.VisitorID, ms(until.Time), reason, by.ID, it.ID, ms(now)); err != nil {
			return Item{}, fmt.Errorf("ban %s: %w", it.VisitorID, err)
		}
	}
	if err := insertAudit(ctx, tx, AuditEntry{At: now, ActorID: by.ID, ActorEmail: by.Email, Action: d.Decision,
		SiteID: it.SiteID, ItemID: it.ID, VisitorID: it.VisitorID, Reason: reason, Detail: detail}); err != nil {
		return Item{}, err
	}
	ev, err := ingest.New(ingest.ModerationDecision, it.SiteID, it.ConversationID,
		ingest.Actor{Role: ingest.RoleModerator, ID: by.ID}, now, payload)
	if err != nil {
		return Item{}, fmt.Errorf("decision event for %s: %w", it.ID, err)
	}
	if err := insertOutbox(ctx, tx, ev, now); err != nil {
		return Item{}, err
	}
	if err := tx.Commit(); err != nil {
		return Item{}, fmt.Errorf("decide %s: commit: %w", itemID, err)
	}
	s.metrics.decisions.WithLabelValues(d.Decision).Inc()
	s.metrics.reviewSeconds.Observe(now.Sub(it.CreatedAt).Seconds())
	s.metrics.backlog.Dec()
	s.wake()
	return getItem(ctx, s.db, itemID)
}

// LiftBan ends a visitor's ban early and records who did it and why.
func (s *Service) LiftBan(ctx context.Context, siteID, visitorID string, by access.User, reason string) error {
	reason, err := checkReason(reason)
	if err != nil {
		return err
	}
	now := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("lift ban: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM mod_bans WHERE site_id = ? AND visitor_id = ?`, siteID, visitorID)
	if err != nil {
		return fmt.Errorf("lift ban: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("ban of %s on %s: %w", visitorID, siteID, ErrNotFound)
	}
	if err := insertAudit(ctx, tx, AuditEntry{At: now, ActorID: by.ID, ActorEmail: by.Email, Action: "lift_ban",
		SiteID: siteID, VisitorID: visitorID, Reason: reason}); err != nil {
		return err
	}
	return tx.Commit()
}

// Bans lists a site's bans (all sites when siteID is empty), newest first.
func (s *Service) Bans(ctx context.Context, siteID string, activeOnly bool) ([]Ban, error) {
	q := `SELECT site_id, visitor_id, until_ms, reason, banned_by, item_id, created_at FROM mod_bans WHERE 1 = 1`
	var args []any
	if siteID != "" {
		q += ` AND site_id = ?`
		args = append(args, siteID)
	}
	if activeOnly {
		q += ` AND until_ms > ?`
		args = append(args, ms(time.Now()))
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at DESC LIMIT 1000`, args...)
	if err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	defer rows.Close()
	out := []Ban{}
	for rows.Next() {
		var b Ban
		var until, created int64
		if err := rows.Scan(&b.SiteID, &b.VisitorID, &until, &b.Reason, &b.BannedBy, &b.ItemID, &created); err != nil {
			return nil, fmt.Errorf("list bans: %w", err)
		}
		b.Until, b.CreatedAt = fromMS(until), fromMS(created)
		out = append(out, b)
	}
	return out, rows.Err()
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Policy{}, fmt.Errorf("save policy of %s: %w", siteID, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO mod_policies (site_id, doc, updated_at, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (site_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		siteID, string(canon), ms(now), by.ID); err != nil {
		return Policy{}, fmt.Errorf("save policy of %s: %w", siteID, err)
	}
	if err := insertAudit(ctx, tx, AuditEntry{At: now, ActorID: by.ID, ActorEmail: by.Email, Action: "policy_update",
		SiteID: siteID, Detail: fmt.Sprintf("%d terms, %d regexes", e.Terms(), len(p.Regexes))}); err != nil {
		return Policy{}, err
	}
	if err := tx.Commit(); err != nil {
		return Policy{}, fmt.Errorf("save policy of %s: %w", siteID, err)
	}
	s.mu.Lock()
	s.engines[siteID] = cachedEngine{engine: e, at: now}
	s.mu.Unlock()
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
	var doc string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT doc, updated_at, updated_by FROM mod_policies WHERE site_id = ?`, siteID).Scan(&doc, &at, &info.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		info.Policy = DefaultPolicy()
		return info, nil
	}
	if err != nil {
		return info, fmt.Errorf("load policy of %s: %w", siteID, err)
	}
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		return info, fmt.Errorf("stored policy of %s: %w", siteID, err)
	}
	t := fromMS(at)
	info.Policy, info.Stored, info.UpdatedAt = p, true, &t
	return info, nil
}
