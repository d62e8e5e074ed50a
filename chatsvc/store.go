package chatsvc

import (
	"context"
	"errors"
	"time"

	"github.com/parleychat/parley/ingest"
)

// ChatStore keeps the chat domain's rows: sites, visitors, conversations,
// messages, attachments, canned replies, bans and the outbox. Its methods
// are domain operations; all SQL lives in its two implementations,
// store_sqlite.go (chat.db, the embedded default) and store_postgres.go
// (PostgreSQL schema "chat"), and store_test.go runs one conformance suite
// on both.
//
// Conversation state changes go through the writer, which runs many
// operations in one ChatTx (group commit); everything else is a single
// statement or its own short transaction.
type ChatStore interface {
	// Begin starts the writer's batch transaction.
	Begin(ctx context.Context) (ChatTx, error)
	// OpenConversations returns every conversation that is not resolved:
	// the writer's working set.
	OpenConversations(ctx context.Context) ([]*convState, error)
	// Conversation returns one conversation, or ErrNotFound.
	Conversation(ctx context.Context, id string) (*convState, error)
	// ConversationRows lists conversations with their visitor's name and
	// email, newest change first (the filter is validated by the caller).
	ConversationRows(ctx context.Context, f ConversationFilter) ([]ConversationRow, error)
	// LatestConversationRow returns the visitor's newest conversation, or nil.
	LatestConversationRow(ctx context.Context, visitorID string) (*ConversationRow, error)
	// MessagesAfter returns up to limit messages with seq > after, in order.
	MessagesAfter(ctx context.Context, conversationID string, after int64, limit int) ([]Message, error)

	// VisitorExists reports whether a visitor id is known.
	VisitorExists(ctx context.Context, id string) (bool, error)
	// InsertVisitor stores a new anonymous visitor.
	InsertVisitor(ctx context.Context, v VisitorRecord) error
	// EnsureExternalVisitor returns the id of the visitor a site knows as
	// v.ExternalID, storing v as that visitor when there is none yet;
	// concurrent callers get the same id.
	EnsureExternalVisitor(ctx context.Context, v VisitorRecord) (string, error)
	// TouchVisitor records a visitor's connection.
	TouchVisitor(ctx context.Context, id, ip, userAgent string, at time.Time) error
	// SetVisitorPage records the page a visitor chats from.
	SetVisitorPage(ctx context.Context, id string, p VisitorPage, at time.Time) error
	// Visitor returns what agents see of a visitor; ok is false when unknown.
	Visitor(ctx context.Context, id string) (v Visitor, ok bool, err error)

	// Sites returns every site.
	Sites(ctx context.Context) ([]Site, error)
	// InsertSite stores a new site and its site.updated event at once.
	InsertSite(ctx context.Context, site Site, event ingest.OutboxRecord) error
	// UpdateSite replaces a site's name, origins, identity flag and
	// settings and stores its event at once (ErrNotFound).
	UpdateSite(ctx context.Context, site Site, event ingest.OutboxRecord) error
	// SetSiteSecret replaces a site's identity secret (ErrNotFound).
	SetSiteSecret(ctx context.Context, id, secret string) error
	// SetWebhookSecret replaces the secret that signs a site's bot
	// webhook requests (ErrNotFound).
	SetWebhookSecret(ctx context.Context, id, secret string) error
	// DeleteSite removes a site and stores its event at once (ErrNotFound);
	// its conversations stay for reporting.
	DeleteSite(ctx context.Context, id string, event ingest.OutboxRecord) error
	// AppendOutbox stores events that belong to no state change (a node's
	// site snapshot at start).
	AppendOutbox(ctx context.Context, events []ingest.OutboxRecord) error

	// CannedReplies lists canned replies ordered by shortcut; siteID ""
	// lists all, otherwise the site's own and the global ones.
	CannedReplies(ctx context.Context, siteID string) ([]Canned, error)
	// InsertCanned stores a canned reply (errShortcutTaken).
	InsertCanned(ctx context.Context, r Canned) error
	// UpdateCanned replaces a canned reply (ErrNotFound, errShortcutTaken).
	UpdateCanned(ctx context.Context, r Canned) error
	// DeleteCanned removes a canned reply; a missing one is no error.
	DeleteCanned(ctx context.Context, id string) error

	// InsertAttachment records an uploaded file not yet sent in a conversation.
	InsertAttachment(ctx context.Context, a AttachmentRecord) error
	// Attachment returns an attachment's record, or ErrNotFound.
	Attachment(ctx context.Context, id string) (AttachmentRecord, error)
	// AttachmentBytes sums the sizes of the attachments an uploader
	// stored, and of those stored for a site (0 when siteID is "").
	AttachmentBytes(ctx context.Context, uploaderID, siteID string) (uploader, site int64, err error)
	// DeleteUnboundAttachments removes up to limit attachment records
	// never sent in a conversation and uploaded before before, and
	// returns their ids (the caller deletes the files).
	DeleteUnboundAttachments(ctx context.Context, before time.Time, limit int) ([]string, error)

	// ActiveBans returns the bans that end after now.
	ActiveBans(ctx context.Context, now time.Time) ([]BanRecord, error)
	// PutBan stores or replaces a visitor's ban on a site.
	PutBan(ctx context.Context, b BanRecord) error
	// DeleteBan lifts a ban; a missing one is no error.
	DeleteBan(ctx context.Context, siteID, visitorID string) error
	// PutIPBan bans a network address from a site until b.Until (a
	// later end already stored is kept).
	PutIPBan(ctx context.Context, b IPBanRecord) error
	// IPBan returns the address's ban on the site when it ends after now.
	IPBan(ctx context.Context, siteID, ip string, now time.Time) (IPBanRecord, bool, error)
	// DeleteIPBans lifts an address's ban on a site; a missing one is no error.
	DeleteIPBans(ctx context.Context, siteID, ip string) error

	// The outbox as ingest's relay sees it.
	ingest.Outbox

	// QueuedConversations returns every conversation waiting in the queue,
	// oldest first (the router's view across nodes).
	QueuedConversations(ctx context.Context) ([]*convState, error)
	// AgentLoads counts each agent's open conversations assigned to them.
	AgentLoads(ctx context.Context) (map[string]int, error)
	// ReportPresence replaces what node reports about its agents with
	// agents, all stamped at (a heartbeat).
	ReportPresence(ctx context.Context, node string, agents []NodePresence, at time.Time) error
	// FreshPresence returns every node's reports newer than since.
	FreshPresence(ctx context.Context, since time.Time) ([]NodePresence, error)
	// AgentStatuses returns each agent's last recorded effective status.
	AgentStatuses(ctx context.Context) (map[string]string, error)
	// TryLead takes the named leadership when nobody holds it; ok is false
	// when another node does. The lease ends when released or when the
	// holder's connection dies (a crashed node frees it).
	TryLead(ctx context.Context, name string) (lease Lease, ok bool, err error)

	// SigningKey returns the key that signs visitor tokens, storing
	// candidate as that key when there is none yet, so every node sharing
	// the store signs and verifies with the same key.
	SigningKey(ctx context.Context, candidate []byte) ([]byte, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// Maintain runs the store's own upkeep until ctx ends (SQLite: WAL
	// checkpoints off the writer's path; PostgreSQL: nothing).
	Maintain(ctx context.Context)
}

// ChatTx is one batch transaction of the writer. Reads see the
// transaction's own writes. A method that fails leaves the transaction
// usable only for Rollback. A store may hold writes back and send them
// together (PostgreSQL does, to save round trips): a write's refusal
// (errConflict, a resent client id) then comes from the next read or from
// Commit instead of the write itself.
type ChatTx interface {
	// Conversation returns a conversation, or ErrNotFound.
	Conversation(ctx context.Context, id string) (*convState, error)
	// LockConversations reads conversations (unknown ids are left out) and
	// keeps other nodes from changing them until the transaction ends, so
	// a batch redone after losing a race cannot lose it again on them.
	// Stores written by one process only read.
	LockConversations(ctx context.Context, ids []string) ([]*convState, error)
	// TryLockConversations is LockConversations without waiting: the
	// conversations another transaction holds are left out too, so a
	// batch can go on with the others instead of queueing behind it.
	TryLockConversations(ctx context.Context, ids []string) ([]*convState, error)
	// NewestConversationOf returns the id of a visitor's newest conversation, or "".
	NewestConversationOf(ctx context.Context, visitorID string) (string, error)
	// VisitorSummary returns what summaries show of a visitor (zero when unknown).
	VisitorSummary(ctx context.Context, id string) (visitorState, error)
	// InsertConversation stores a new conversation (version 1).
	InsertConversation(ctx context.Context, c *convState) error
	// UpdateConversation stores c if the stored row still has c.Version,
	// and sets c.Version to the new version; a row changed meanwhile (by
	// another node) gives errConflict. change says which columns may differ
	// from the committed row (a store may leave the others unwritten).
	UpdateConversation(ctx context.Context, c *convState, change convChange) error
	// InsertMessage stores a message with its attachments; a client id the
	// author already used gives a *resendError, a sequence number already
	// taken (another node wrote the conversation) gives errConflict.
	InsertMessage(ctx context.Context, m Message, atts []ingest.Attachment) error
	// MessageByClientID returns the author's message with that client id.
	MessageByClientID(ctx context.Context, authorID, clientID string) (Message, bool, error)
	// MessageByID returns a message.
	MessageByID(ctx context.Context, id string) (Message, bool, error)
	// SetMessageStatus changes a message's status.
	SetMessageStatus(ctx context.Context, id, status string) error
	// Attachment returns an attachment's record, or ErrNotFound.
	Attachment(ctx context.Context, id string) (AttachmentRecord, error)
	// BindAttachment marks an attachment as sent in a conversation.
	BindAttachment(ctx context.Context, id, conversationID string) error
	// AppendOutbox stores an event to relay after the commit.
	AppendOutbox(ctx context.Context, event ingest.OutboxRecord) error
	// UpdateVisitorProfile sets a visitor's name and email, and their
	// pre-chat fields unless fields is nil.
	UpdateVisitorProfile(ctx context.Context, id, name, email string, fields map[string]string) error
	// AssignedConversations lists the open conversations assigned to agentID.
	AssignedConversations(ctx context.Context, agentID string) ([]string, error)
	// SetAgentStatus records an agent's effective status and returns the
	// one it replaces ("" when none was recorded).
	SetAgentStatus(ctx context.Context, agentID, status string, at time.Time) (string, error)
	// ExpiredConversations lists up to limit resolved conversations of a
	// site last changed before cutoff, oldest first.
	ExpiredConversations(ctx context.Context, siteID string, cutoff time.Time, limit int) ([]ExpiredConversation, error)
	// DeleteConversation removes a conversation, its messages and its
	// attachment records, and returns the attachment ids whose files the
	// caller must delete.
	DeleteConversation(ctx context.Context, id string) ([]string, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context)
}

// NodePresence is what one chat node reports about one agent: their
// status there (online or away while they have a socket or are within the
// grace period) and the team they route for.
type NodePresence struct {
	AgentID, Node, Status, TeamID, Name string
	At                                  time.Time
}

// Lease is a held leadership.
type Lease interface {
	// Lost is closed when the leadership ends without Release.
	Lost() <-chan struct{}
	Release()
}

// ConversationRow is a conversation with what summaries show of its visitor.
type ConversationRow struct {
	Conv    convState
	Visitor visitorState
}

// VisitorRecord is a new visitor.
type VisitorRecord struct {
	ID, SiteID, ExternalID string
	Verified               bool
	IP, UserAgent          string
	CreatedAt              time.Time
}

// VisitorPage is where a visitor chats from, as the widget reports it.
type VisitorPage struct {
	URL, Title, Referrer, Timezone, Locale string
}

// AttachmentRecord is an uploaded file's row.
type AttachmentRecord struct {
	ingest.Attachment
	UploaderID     string
	ConversationID string
	// SiteID is the uploading visitor's site ("" for staff uploads).
	SiteID    string
	CreatedAt time.Time
}

// IPBanRecord bans a network address from a site for a while.
type IPBanRecord struct {
	SiteID, IP string
	Until      time.Time
	Reason     string
}

// BanRecord is a visitor's ban on a site.
type BanRecord struct {
	SiteID, VisitorID string
	Until             time.Time
	Reason            string
}

// ExpiredConversation is a conversation retention may delete.
type ExpiredConversation struct {
	ID, VisitorID string
}

// ErrNotFound marks a missing row.
var ErrNotFound = errors.New("not found")

// errShortcutTaken refuses a canned reply whose shortcut the site (or the
// global set) already has.
var errShortcutTaken = errors.New("shortcut taken")

// errConflict marks a write that lost a race with another node: the
// writer forgets what it cached of the conversation involved and redoes
// the batch.
var errConflict = errors.New("conversation changed by another node")

// conflictError is errConflict about one conversation.
type conflictError struct{ conversationID string }

func (e *conflictError) Error() string {
	return "conversation " + e.conversationID + " changed by another node"
}

func (e *conflictError) Is(target error) bool { return target == errConflict }
