package notifications

import (
	"context"
	"time"

	"github.com/parleychat/parley/ingest"
)

// consume runs the consumer group until ctx ends.
func (s *Service) consume(ctx context.Context) {
	ingest.RunConsumer(ctx, ingest.ConsumerConfig{
		Brokers: s.cfg.Brokers, GroupID: s.cfg.GroupID, Topics: []string{ingest.TopicChat},
		BatchSize: 1000, BatchWait: 50 * time.Millisecond, FetchMinBytes: ingest.PatientFetch, DeadLetter: s.cfg.DeadLetter,
		Registerer: s.cfg.Registerer, Logger: s.log,
	}, s.handle)
}

// handle records what a batch of events says about conversations and
// agents, and queues transcripts of resolved conversations for sites that
// send them. Both are idempotent, so a redelivered batch changes nothing.
func (s *Service) handle(ctx context.Context, batch []ingest.Record) ([]ingest.Reject, error) {
	var changes []Change
	var jobs []Job
	var rejects []ingest.Reject
	for _, r := range batch {
		e := r.Event
		c := Change{ConversationID: e.ConversationID, SiteID: e.SiteID, At: e.OccurredAt.Time}
		reject := func(err error) { rejects = append(rejects, ingest.Reject{Record: r, Reason: err.Error()}) }
		switch e.Type {
		case ingest.ConversationStarted:
			c.Kind = ChangeStarted
		case ingest.MessageSent:
			var p ingest.MessageSentPayload
			if err := e.Into(&p); err != nil {
				reject(err)
				continue
			}
			if p.Kind != ingest.KindText || p.Blocked {
				continue
			}
			c.Seq = p.Seq
			switch e.Actor.Role {
			case ingest.RoleAgent:
				c.Kind, c.Due = ChangeReply, c.At.Add(s.cfg.ReplyDelay)
			case ingest.RoleVisitor:
				c.Kind = ChangeVisitor
			default:
				continue
			}
		case ingest.MessageRead:
			if e.Actor.Role != ingest.RoleVisitor {
				continue
			}
			var p ingest.MessageReadPayload
			if err := e.Into(&p); err != nil {
				reject(err)
				continue
			}
			c.Kind, c.Seq = ChangeRead, p.UpToSeq
		case ingest.ConversationQueued:
			c.Kind = ChangeQueued
		case ingest.ConversationAssigned:
			var p ingest.ConversationAssignedPayload
			if err := e.Into(&p); err != nil {
				reject(err)
				continue
			}
			c.Kind, c.AgentID = ChangeAssigned, p.AgentID
		case ingest.ConversationTransferred:
			var p ingest.ConversationTransferredPayload
			if err := e.Into(&p); err != nil {
				reject(err)
				continue
			}
			if p.ToAgentID == "" {
				continue // a team transfer queues the conversation: conversation.queued follows
			}
			c.Kind, c.AgentID = ChangeAssigned, p.ToAgentID
		case ingest.ConversationResolved:
			c.Kind = ChangeResolved
			if site, ok := s.chat.Site(e.SiteID); ok && site.TranscriptOnResolve && s.cfg.SMTP.Enabled() {
				jobs = append(jobs, Job{Key: "transcript:" + e.ConversationID + ":" + e.ID, Kind: JobTranscript, ConversationID: e.ConversationID, DueAt: time.Now()})
			}
		case ingest.ConversationReopened:
			c.Kind = ChangeReopened
		case ingest.AgentPresence:
			var p ingest.AgentPresencePayload
			if err := e.Into(&p); err != nil {
				reject(err)
				continue
			}
			c = Change{Kind: ChangePresence, AgentID: e.Actor.ID, Status: p.Status, At: e.OccurredAt.Time}
		default:
			continue
		}
		changes = append(changes, c)
	}
	if err := s.store.Apply(ctx, changes); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if err := s.store.AddJob(ctx, j); err != nil {
			return nil, err
		}
	}
	return rejects, nil
}
