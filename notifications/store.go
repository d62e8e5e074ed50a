package notifications

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"
)

// Store keeps what notifications decide from: conversations as the
// pipeline reports them, agents' presence, preferences, unsubscribes, jobs
// and the mail outbox. All SQL lives in store_sqlite.go and
// store_postgres.go; store_test.go runs one conformance suite on both.
type Store interface {
	// Apply records a batch of changes learnt from events, at once.
	Apply(ctx context.Context, changes []Change) error

	// ClaimDueReplies leases conversations whose reply notice is due.
	ClaimDueReplies(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ReplyDue, error)
	// FinishReply stores the mail (nil: nothing to send), marks replies up
	// to seq handled, and ends the lease, at once. Replies after seq that
	// arrived meanwhile are due at nextDue.
	FinishReply(ctx context.Context, convID string, seq int64, nextDue time.Time, mail *Mail) error

	// ClaimJobs leases due jobs (transcripts).
	ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Job, error)
	// FinishJob stores the mail (nil: nothing to send) and deletes the job, at once.
	FinishJob(ctx context.Context, key string, mail *Mail) error
	// AddJob stores a job unless one with its key exists.
	AddJob(ctx context.Context, j Job) error

	// ClaimDigests leases agents who are away, want a digest and are due one.
	ClaimDigests(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]DigestDue, error)
	// Waiting lists open conversations an agent should hear about: unassigned
	// ones waiting in the queue, and the agent's own whose visitor wrote last.
	Waiting(ctx context.Context, agentID string, limit int) ([]Waiting, error)
	// FinishDigest stores the mail (nil: nothing new), sets when the agent
	// is looked at again, and ends the lease, at once.
	FinishDigest(ctx context.Context, agentID string, at, next time.Time, mail *Mail) error

	// ClaimMail leases pending mail that is due.
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Mail, error)
	// MailSent marks a mail sent.
	MailSent(ctx context.Context, id string, at time.Time) error
	// MailFailed records a failed try: retried at next, or failed for good.
	MailFailed(ctx context.Context, id string, at time.Time, errText string, next time.Time, giveUp bool) error
	// Mails lists mail in one status (all when empty), newest first.
	Mails(ctx context.Context, status string, limit int) ([]Mail, error)

	// Unsubscribe stops mail to email about a site's conversations.
	Unsubscribe(ctx context.Context, siteID, email string, at time.Time) error
	// Unsubscribed reports whether email opted out of a site's mail.
	Unsubscribed(ctx context.Context, siteID, email string) (bool, error)

	// Preferences returns a user's preferences; ok is false when unset.
	Preferences(ctx context.Context, userID string) (p Preferences, ok bool, err error)
	// SetPreferences stores a user's preferences.
	SetPreferences(ctx context.Context, userID string, p Preferences, at time.Time) error

	// SigningKey returns the key that signs reply and unsubscribe tokens,
	// storing candidate when there is none, so every node signs alike.
	SigningKey(ctx context.Context, candidate []byte) ([]byte, error)

	Ping(ctx context.Context) error
}

// Change kinds, each from one event type.
const (
	ChangeStarted  = "started"  // conversation.started
	ChangeReply    = "reply"    // message.sent by an agent (text, delivered)
	ChangeVisitor  = "visitor"  // message.sent by the visitor
	ChangeRead     = "read"     // message.read by the visitor
	ChangeQueued   = "queued"   // conversation.queued
	ChangeAssigned = "assigned" // conversation.assigned, or transferred to an agent
	ChangeResolved = "resolved" // conversation.resolved
	ChangeReopened = "reopened" // conversation.reopened
	ChangePresence = "presence" // agent.presence
)

// Change is one fact learnt from an event. Applying a change twice is
// harmless (sequence numbers only grow; times are the event's own).
type Change struct {
	Kind           string
	ConversationID string
	SiteID         string
	At             time.Time
	Seq            int64
	// AgentID: the assignee, or the agent whose presence changed.
	AgentID string
	// Status: the agent's presence.
	Status string
	// Due: when a reply notice is due (ChangeReply).
	Due time.Time
}

// newConversations lists, sorted by id and once each, the conversations
// changes are about, with the site and time of the first change to each:
// the rows a store creates, when missing, before applying the changes.
func newConversations(changes []Change) (ids, sites []string, ats []time.Time) {
	first := map[string]int{}
	for i, c := range changes {
		if c.Kind == ChangePresence {
			continue
		}
		if _, ok := first[c.ConversationID]; !ok {
			first[c.ConversationID] = i
		}
	}
	ids = slices.Sorted(maps.Keys(first))
	for _, id := range ids {
		c := changes[first[id]]
		sites, ats = append(sites, c.SiteID), append(ats, c.At)
	}
	return ids, sites, ats
}

// ReplyDue is a conversation whose newest agent replies may need mailing.
type ReplyDue struct {
	ConversationID, SiteID string
	VisitorReadSeq         int64
	EmailedSeq             int64
	LastReplySeq           int64
}

// Job kinds.
const JobTranscript = "transcript"

// Job is work to do for a conversation once (its key makes it unique).
type Job struct {
	Key            string
	Kind           string
	ConversationID string
	// To overrides the recipient (a transcript sent on an agent's request
	// to another address); empty means the visitor.
	To    string
	DueAt time.Time
}

// DigestDue is an away agent who may get a digest.
type DigestDue struct {
	AgentID      string
	AwaySince    time.Time
	LastDigestAt time.Time
}

// Waiting is a conversation that waits for an agent.
type Waiting struct {
	ConversationID, SiteID string
	// Since is when it started waiting: queued, or the visitor's last message.
	Since time.Time
	Mine  bool
}

// Mail statuses.
const (
	MailPending = "pending"
	MailSent    = "sent"
	MailFailed  = "failed"
)

// Mail is one rendered message in the outbox.
type Mail struct {
	ID string `json:"id"`
	// Key makes queuing idempotent: a second mail with the key is dropped.
	Key     string    `json:"key"`
	Kind    string    `json:"kind"`
	To      string    `json:"to"`
	Message []byte    `json:"-"`
	Status  string    `json:"status"`
	Tries   int       `json:"attempts"`
	NextAt  time.Time `json:"next_at"`
	Error   string    `json:"last_error"`
	Created time.Time `json:"created_at"`
	SentAt  time.Time `json:"sent_at"`
}

// Preferences are one staff member's notification settings.
type Preferences struct {
	// Sound plays a chime for new visitor messages in the console.
	Sound bool `json:"sound"`
	// Desktop notifications, when the browser allows them.
	DesktopNewConversation bool `json:"desktop_new_conversation"`
	DesktopMention         bool `json:"desktop_mention"`
	DesktopTransfer        bool `json:"desktop_transfer"`
	// DigestAfterMinutes mails a digest of waiting conversations after the
	// agent has been away that long, then at most hourly; 0 sends none.
	DigestAfterMinutes int `json:"digest_after_minutes"`
	// QueueAlertMinutes alerts supervisors on the live overview when a
	// conversation waits longer (fractions allowed); 0 turns the alert off.
	QueueAlertMinutes float64 `json:"queue_alert_minutes"`
}

// DefaultPreferences apply until a user saves their own.
var DefaultPreferences = Preferences{Sound: true, DesktopNewConversation: true, DesktopMention: true, DesktopTransfer: true, QueueAlertMinutes: 5}

// ErrNotFound marks a missing row.
var ErrNotFound = errors.New("not found")
