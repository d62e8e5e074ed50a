package moderation

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parleychat/parley/ingest"
)

// job is one chat message of a batch, judged before the transaction so
// that no policy load or classifier call happens while it is open.
type job struct {
	rec      ingest.Record
	msg      ingest.MessageSentPayload
	moderate bool
	engine   *Engine
	verdict  Verdict
}

// handle is the worker's consumer handler. For every text message it
// stores the conversation context; for visitors' messages it applies the
// full policy (including flood over moderation.db), queues flagged and
// blocked messages, and writes a moderation.verdict event to the outbox,
// all in one transaction. Each message event is handled once: its id is
// recorded, and the verdict's and item's ids derive from it.
//
// Agents' and bots' messages are context only: staff are not moderated.
func (s *Service) handle(ctx context.Context, batch []ingest.Record) ([]ingest.Reject, error) {
	var rejects []ingest.Reject
	var jobs []job
	for _, r := range batch {
		if r.Event.Type != ingest.MessageSent {
			continue
		}
		j := job{rec: r}
		if err := r.Event.Into(&j.msg); err != nil {
			rejects = append(rejects, ingest.Reject{Record: r, Reason: err.Error()})
			continue
		}
		if j.msg.Kind != ingest.KindText {
			continue // private staff notes are neither shown to visitors nor moderated
		}
		if r.Event.Actor.Role == ingest.RoleVisitor {
			j.moderate = true
			j.engine = s.engineFor(ctx, r.Event.SiteID)
			j.verdict = j.engine.Check(j.msg.Text)
			if c := s.classifierFor(j.engine.policy); c != nil {
				spans, err := runClassifier(ctx, c, j.engine.policy.Classifier, j.msg.Text)
				if err != nil {
					s.log.Warn("classifier failed; judging by rules alone", "event", r.Event.ID, "err", err)
				} else if len(spans) > 0 {
					j.verdict = j.engine.Combine(j.msg.Text, j.verdict, spans...)
				}
			}
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return rejects, nil
	}
	now := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("moderation batch: begin: %w", err)
	}
	defer tx.Rollback()
	var created []Item
	var judged []string
	for _, j := range jobs {
		e := j.rec.Event
		var done int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_processed WHERE event_id = ?`, e.ID).Scan(&done); err != nil {
			return nil, fmt.Errorf("moderation batch: event %s: %w", e.ID, err)
		}
		if done > 0 {
			continue // handled before a crash or rebalance: same verdict, once
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mod_context (site_id, conversation_id, seq, event_id, message_id, role, actor_id, text, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.SiteID, e.ConversationID, j.msg.Seq, e.ID, j.msg.MessageID,
			string(e.Actor.Role), e.Actor.ID, j.msg.Text, ms(e.OccurredAt.Time)); err != nil {
			return nil, fmt.Errorf("moderation batch: context of %s: %w", e.ID, err)
		}
		if j.moderate {
			it, err := s.judge(ctx, tx, j, now)
			if err != nil {
				return nil, err
			}
			if it != nil {
				created = append(created, *it)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO mod_processed (event_id, at) VALUES (?, ?)`, e.ID, ms(now)); err != nil {
			return nil, fmt.Errorf("moderation batch: mark %s: %w", e.ID, err)
		}
		if j.moderate {
			judged = append(judged, j.verdict.Action)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("moderation batch: commit: %w", err)
	}
	for _, a := range judged {
		s.metrics.checks.WithLabelValues("worker", a).Inc()
	}
	for _, it := range created {
		for _, c := range it.Categories {
			s.metrics.items.WithLabelValues(c).Inc()
		}
	}
	if len(created) > 0 {
		s.metrics.backlog.Add(float64(len(created)))
	}
	s.wake()
	return rejects, nil
}

// judge adds flood to a visitor message's verdict, queues it when flagged
// or blocked, and writes its verdict event to the outbox.
func (s *Service) judge(ctx context.Context, tx *sql.Tx, j job, now time.Time) (*Item, error) {
	e := j.rec.Event
	text := j.msg.Text
	flood, err := sqlFlood(ctx, tx, e.SiteID, e.Actor.ID, e.ID, text, e.OccurredAt.Time, j.engine.policy.Flood)
	if err != nil {
		return nil, fmt.Errorf("moderation batch: %w", err)
	}
	v := j.verdict
	if len(flood) > 0 {
		v = j.engine.Combine(text, v, flood...)
	}
	if j.msg.Blocked && !v.Queued() {
		// the inline check stopped it (often its per-process flood count):
		// the sender was told, so a moderator reviews it whatever the
		// full policy says now
		v = j.engine.Combine(text, v, ingest.Span{Start: 0, End: len(text), Category: CatInlineBlock, Rule: "inline:block"})
		v.Action = ActionBlock
	}
	var created *Item
	itemID := ""
	if v.Queued() {
		it := Item{
			ID: derivedID(e.ID, "item"), MessageEventID: e.ID, SiteID: e.SiteID, ConversationID: e.ConversationID,
			MessageID: j.msg.MessageID, MessageSeq: j.msg.Seq, VisitorID: e.Actor.ID, ActorRole: string(e.Actor.Role),
			Text: text, Action: v.Action, Categories: v.Categories, Spans: v.Spans, Severity: v.Severity,
			Status: StatusOpen, MessageAt: e.OccurredAt.Time, CreatedAt: now,
		}
		inserted, err := insertItem(ctx, tx, it)
		if err != nil {
			return nil, err
		}
		if inserted {
			created = &it
		}
		itemID = it.ID
	}
	ev, err := ingest.New(ingest.ModerationVerdict, e.SiteID, e.ConversationID,
		ingest.Actor{Role: ingest.RoleSystem, ID: "moderation"}, now, ingest.ModerationVerdictPayload{
			MessageEventID: e.ID, MessageID: j.msg.MessageID, Stage: "worker", Action: v.Action,
			Categories: v.Categories, Spans: v.Spans, Severity: v.Severity, ItemID: itemID,
		})
	if err != nil {
		return nil, fmt.Errorf("moderation batch: verdict of %s: %w", e.ID, err)
	}
	ev.ID = derivedID(e.ID, "verdict")
	if err := insertOutbox(ctx, tx, ev, now); err != nil {
		return nil, err
	}
	return created, nil
}
