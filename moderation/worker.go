package moderation

import (
	"context"
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
// full policy (including flood over the store), queues flagged and
// blocked messages, and writes a moderation.verdict event to the outbox,
// all in one transaction. Each message event is handled once: its id is
// recorded first, for the whole batch (a concurrent worker on the same
// event waits for it and then skips), and the verdict's and item's ids
// derive from it.
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
			j.verdict = newDomainSpam(s.workerDomains, j.engine, r.Event.SiteID, j.msg.Text, j.engine.Check(j.msg.Text), r.Event.OccurredAt.Time)
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return rejects, nil
	}
	s.classify(ctx, jobs)
	now := time.Now()
	var created []Item
	var judged []string
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.rec.Event.ID
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		created, judged = created[:0], judged[:0]
		fresh, err := tx.MarkProcessed(ctx, ids, now)
		if err != nil {
			return fmt.Errorf("moderation batch: %w", err)
		}
		type judging struct {
			job
			mark int // index into marks, -1 when the policy counts no flood
		}
		var toJudge []judging
		var marks []FloodMark
		for _, j := range jobs {
			e := j.rec.Event
			if !fresh[e.ID] {
				continue // handled before a crash or rebalance, by another worker, or earlier in this batch: same verdict, once
			}
			delete(fresh, e.ID)
			if err := tx.AddContext(ctx, ContextEntry{SiteID: e.SiteID, ConversationID: e.ConversationID, EventID: e.ID,
				ContextMessage: ContextMessage{Seq: j.msg.Seq, MessageID: j.msg.MessageID, Role: string(e.Actor.Role),
					ActorID: e.Actor.ID, Text: j.msg.Text, At: e.OccurredAt.Time}}); err != nil {
				return fmt.Errorf("moderation batch: %w", err)
			}
			if !j.moderate {
				continue
			}
			mark := -1
			if m, ok := floodMark(e.SiteID, e.Actor.ID, e.ID, j.msg.Text, e.OccurredAt.Time, j.engine.policy.Flood); ok {
				mark, marks = len(marks), append(marks, m)
			}
			toJudge = append(toJudge, judging{j, mark})
		}
		var counts []FloodCount
		if len(marks) > 0 {
			var err error
			if counts, err = tx.ObserveFloods(ctx, marks); err != nil {
				return fmt.Errorf("moderation batch: %w", err)
			}
		}
		for _, j := range toJudge {
			var flood []ingest.Span
			if j.mark >= 0 {
				flood = judgeFlood(j.engine.policy.Flood, j.msg.Text, counts[j.mark].Recent, counts[j.mark].Same)
			}
			it, err := s.judge(ctx, tx, j.job, flood, now)
			if err != nil {
				return err
			}
			if it != nil {
				created = append(created, *it)
			}
			judged = append(judged, j.verdict.Action)
		}
		return nil
	})
	if err != nil {
		return nil, err
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

// judge adds flood (the batch's stored flood history found) to a visitor
// message's verdict, queues it when flagged or blocked, and writes its
// verdict event to the outbox.
func (s *Service) judge(ctx context.Context, tx Tx, j job, flood []ingest.Span, now time.Time) (*Item, error) {
	e := j.rec.Event
	text := j.msg.Text
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
			Text: text, Action: v.Action, Categories: v.Categories, Spans: v.Spans, Sources: v.Sources, Severity: v.Severity,
			Status: StatusOpen, MessageAt: e.OccurredAt.Time, CreatedAt: now,
		}
		inserted, err := tx.AddItem(ctx, it)
		if err != nil {
			return nil, err
		}
		if inserted {
			created = &it
		}
		itemID = it.ID
	}
	if v.Action == ActionAllow {
		// Nothing to hide, queue or count: an allowed message gets no
		// verdict event (the processed marker keeps the worker idempotent).
		// Half of all events otherwise, read by every chat node and loaded
		// by analytics only to be skipped.
		return created, nil
	}
	ev, err := ingest.New(ingest.ModerationVerdict, e.SiteID, e.ConversationID,
		ingest.Actor{Role: ingest.RoleSystem, ID: "moderation"}, now, ingest.ModerationVerdictPayload{
			MessageEventID: e.ID, MessageID: j.msg.MessageID, Stage: "worker", Action: v.Action,
			Categories: v.Categories, Spans: v.Spans, Severity: v.Severity, ItemID: itemID, Sources: v.Sources,
		})
	if err != nil {
		return nil, fmt.Errorf("moderation batch: verdict of %s: %w", e.ID, err)
	}
	ev.ID = derivedID(e.ID, "verdict")
	if err := tx.AddEvent(ctx, ev, now); err != nil {
		return nil, err
	}
	return created, nil
}
