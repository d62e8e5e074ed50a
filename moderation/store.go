package moderation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/parleychat/parley/ingest"
)

// RuleStore is what the inline check reads: each site's policy and the
// bans. A chat node that runs no moderation workers needs only this
// (InlineChecker).
type RuleStore interface {
	// Policy returns a site's saved policy document, or ErrNotFound.
	Policy(ctx context.Context, siteID string) (StoredPolicy, error)
	// Ban returns a visitor's ban on a site (lifted bans are gone;
	// expired ones stay until lifted), or ErrNotFound.
	Ban(ctx context.Context, siteID, visitorID string) (Ban, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// Store keeps moderation's state: policies, the review queue with its
// context and audit log, bans, the workers' flood and processed-event
// records, and the outbox of events to publish. Reads are methods of
// Store; every change runs in Update, one transaction, through Tx.
// sqliteStore and postgresStore implement it, and the conformance suite
// in store_test.go runs on both.
type Store interface {
	RuleStore
	// Outbox is the outbox table as ingest's relay claims it.
	ingest.Outbox

	// Update runs f in one transaction and commits when f returns nil.
	// f must not call the Store's other methods: on SQLite the
	// transaction holds the only connection.
	Update(ctx context.Context, f func(Tx) error) error

	// Item returns one review-queue item, or ErrNotFound.
	Item(ctx context.Context, id string) (Item, error)
	// Items returns a page of the queue, most severe first then oldest,
	// with counts per category of the items of the filter's status and
	// site.
	Items(ctx context.Context, f ItemFilter) (ItemPage, error)
	// OpenItems counts the items waiting for a decision.
	OpenItems(ctx context.Context) (int, error)
	// Context returns up to before+1 messages of a conversation up to and
	// including seq and up to after messages following it, in order.
	Context(ctx context.Context, siteID, conversationID string, seq int64, before, after int) ([]ContextMessage, error)
	// Audit returns audit entries, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// Bans lists bans, newest first.
	Bans(ctx context.Context, f BanFilter) ([]Ban, error)
	// Prune deletes the workers' records older than the cutoffs.
	Prune(ctx context.Context, c PruneCutoffs) error

	// Labels returns moderators' decisions as labels, oldest first.
	Labels(ctx context.Context, f LabelFilter) ([]DecisionLabel, error)
	// LabelCounts counts approved and removed labels per site: all of
	// them (kind "all"), per category and per source that decided.
	LabelCounts(ctx context.Context, f LabelCountFilter) ([]LabelCount, error)
}

// Tx is one transaction of a Store. Reads through it see its own writes;
// LockItem keeps other transactions off the item until the end, so two
// moderators deciding one item, or two workers judging one message, are
// serialised on both stores.
type Tx interface {
	// LockItem returns an item and locks it until the transaction ends,
	// or ErrNotFound.
	LockItem(ctx context.Context, id string) (Item, error)
	// AddItem queues an item; false when its id or message event id is
	// already queued (nothing is changed then).
	AddItem(ctx context.Context, it Item) (bool, error)
	// ClaimItem records a moderator's claim (an empty userID releases it).
	ClaimItem(ctx context.Context, id, userID string, until time.Time) error
	// DecideItem records the decision and drops the claim.
	DecideItem(ctx context.Context, id string, d ItemDecision) error

	// PutBan stores a ban, replacing the visitor's ban on the site.
	PutBan(ctx context.Context, b Ban) error
	// DeleteBan removes a visitor's ban and returns it, or ErrNotFound.
	DeleteBan(ctx context.Context, siteID, visitorID string) (Ban, error)
	// LockPolicy returns a site's saved policy document, or ErrNotFound,
	// and keeps other transactions from changing the site's policy until
	// this one ends, so a read-modify-write of the policy loses nothing.
	LockPolicy(ctx context.Context, siteID string) (StoredPolicy, error)
	// PutPolicy stores a site's policy document, replacing the old one.
	PutPolicy(ctx context.Context, siteID string, p StoredPolicy) error
	// AddLabel records a moderator's decision on an item as a label,
	// replacing the item's earlier label.
	AddLabel(ctx context.Context, l DecisionLabel) error
	// AddAudit appends an audit entry (its ID is assigned).
	AddAudit(ctx context.Context, a AuditEntry) error
	// AddEvent writes an event to the outbox; an event id already there
	// is ignored, which makes reprocessing harmless.
	AddEvent(ctx context.Context, e ingest.Event, at time.Time) error

	// MarkProcessed records that chat events are handled and returns the
	// ids not recorded before, by this or a concurrent transaction (which
	// this one then waits for), so each event is handled once.
	MarkProcessed(ctx context.Context, eventIDs []string, at time.Time) (fresh map[string]bool, err error)
	// AddContext stores a chat message as review context (once per event).
	AddContext(ctx context.Context, m ContextEntry) error
	// ObserveFloods records marks (once per event) and counts, for each,
	// its visitor's other recorded messages after its Since and up to its
	// At, and how many of them share its non-empty fingerprint. Marks of
	// one call count each other: a worker batch makes one call, not a
	// query per message.
	ObserveFloods(ctx context.Context, marks []FloodMark) ([]FloodCount, error)
}

// Item statuses.
const (
	StatusOpen     = "open"
	StatusApproved = "approved"
	StatusRemoved  = "removed"
	StatusBanned   = "banned"
	StatusReviewed = "reviewed"
)

// Item is a message in the review queue.
type Item struct {
	ID             string        `json:"id"`
	MessageEventID string        `json:"message_event_id"`
	SiteID         string        `json:"site_id"`
	ConversationID string        `json:"conversation_id"`
	MessageID      string        `json:"message_id"`
	MessageSeq     int64         `json:"message_seq"`
	VisitorID      string        `json:"visitor_id"`
	ActorRole      string        `json:"actor_role"`
	Text           string        `json:"text"`
	Action         string        `json:"action"`
	Categories     []string      `json:"categories"`
	Spans          []ingest.Span `json:"spans"`
	// Sources lists, per category, the detectors that found it and
	// whether it set the action (items queued before it was kept: none).
	Sources        []ingest.VerdictSource `json:"sources,omitempty"`
	Severity       int                    `json:"severity"`
	Status         string                 `json:"status"`
	ClaimedBy      string                 `json:"claimed_by,omitempty"`
	ClaimUntil     *time.Time             `json:"claim_until,omitempty"`
	DecidedBy      string                 `json:"decided_by,omitempty"`
	DecidedAt      *time.Time             `json:"decided_at,omitempty"`
	DecisionReason string                 `json:"decision_reason,omitempty"`
	MessageAt      time.Time              `json:"message_at"`
	CreatedAt      time.Time              `json:"created_at"`
}

// ItemDecision is what a decision changes on an item.
type ItemDecision struct {
	Status string
	By     string
	Reason string
	At     time.Time
}

// ContextMessage is a message of the conversation around an item.
type ContextMessage struct {
	Seq       int64     `json:"seq"`
	MessageID string    `json:"message_id"`
	Role      string    `json:"role"`
	ActorID   string    `json:"actor_id"`
	Text      string    `json:"text"`
	At        time.Time `json:"at"`
}

// ContextEntry is a chat message stored as review context.
type ContextEntry struct {
	SiteID         string
	ConversationID string
	EventID        string
	ContextMessage
}

// FloodMark is one visitor message in the workers' flood history.
type FloodMark struct {
	SiteID      string
	VisitorID   string
	EventID     string
	Fingerprint string // "" when the message has none
	At          time.Time
	Since       time.Time // the window the message is judged over is (Since, At]
}

// FloodCount is what ObserveFloods found for one mark.
type FloodCount struct {
	Recent int // the visitor's other messages in the mark's window
	Same   int // those of them with the mark's fingerprint
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	ActorID    string    `json:"actor_id"`
	ActorEmail string    `json:"actor_email"`
	Action     string    `json:"action"`
	SiteID     string    `json:"site_id"`
	ItemID     string    `json:"item_id,omitempty"`
	VisitorID  string    `json:"visitor_id,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Ban keeps a visitor out of a site's chat until a time.
type Ban struct {
	SiteID    string    `json:"site_id"`
	VisitorID string    `json:"visitor_id"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason"`
	BannedBy  string    `json:"banned_by"`
	ItemID    string    `json:"item_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// StoredPolicy is a site's policy document as saved.
type StoredPolicy struct {
	Doc       []byte
	UpdatedAt time.Time
	UpdatedBy string
}

// ItemFilter selects queue items.
type ItemFilter struct {
	Status   string
	Category string
	SiteID   string
	// Sites limits the items to these sites (nil: every site; empty: none).
	Sites  []string
	Limit  int
	Offset int
}

// ItemPage is a page of the queue with counts per category of the items
// matching the status and site filters.
type ItemPage struct {
	Items  []Item         `json:"items"`
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

// AuditFilter selects audit rows, newest first.
type AuditFilter struct {
	SiteID string
	// Sites limits the entries to these sites (nil: every site; empty: none).
	Sites  []string
	ItemID string
	Before int64 // rows with id < Before; 0 for the newest
	Limit  int
}

// BanFilter selects bans.
type BanFilter struct {
	SiteID string    // "" for every site
	After  time.Time // only bans lasting beyond it; zero for all
	Limit  int
}

// DecisionLabel is a moderator's decision on a review item, kept as training
// data and for the precision report: the item's text and what the
// decision says it is.
type DecisionLabel struct {
	ItemID string `json:"item_id"`
	SiteID string `json:"site_id"`
	Text   string `json:"text"`
	// Label is "clean" for an approved item; for a removed one, the
	// model class among its categories (threat, hate, harassment, abuse,
	// phishing, spam, insult, profanity), else its first category.
	Label      string    `json:"label"`
	Decision   string    `json:"decision"` // approve, remove or ban
	Action     string    `json:"action"`   // what the engine did: flag or block
	Categories []string  `json:"categories"`
	Sources    []string  `json:"sources"` // the detectors that set the action ("rules", "model:parley-lr@2", ...)
	DecidedBy  string    `json:"decided_by"`
	DecidedAt  time.Time `json:"decided_at"`
}

// LabelFilter selects labels, oldest first: those decided in [Since,
// Until) (zero: no bound) after the cursor (AfterAt, AfterID).
type LabelFilter struct {
	SiteID string
	// Sites limits the labels to these sites (nil: every site; empty: none).
	Sites        []string
	Since, Until time.Time
	AfterAt      time.Time
	AfterID      string
	Limit        int
}

// LabelCountFilter selects the labels LabelCounts counts.
type LabelCountFilter struct {
	SiteID string // "" for every site
	// Sites limits the counts to these sites (nil: every site; empty: none).
	Sites []string
	Since time.Time // decided at or after
}

// LabelCount is how many labels of a site, category or source were
// approved and how many removed (a ban removes too).
type LabelCount struct {
	SiteID   string `json:"site_id"`
	Kind     string `json:"kind"` // all, category or source
	Key      string `json:"key"`  // the category or source; "" for all
	Approved int    `json:"approved"`
	Removed  int    `json:"removed"`
}

// Kinds of LabelCount.
const (
	CountAll      = "all"
	CountCategory = "category"
	CountSource   = "source"
)

// PruneCutoffs are the times before which the workers' records go.
type PruneCutoffs struct {
	Flood, Processed, Context time.Time
}

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// derivedID returns a UUID (version 5) fixed by a message event id and a
// purpose, so that reprocessing a message yields the same ids.
func derivedID(eventID, purpose string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("parley:moderation:"+eventID+":"+purpose)).String()
}

// scanLabelCounts reads the rows of a LabelCounts query (site, kind, key,
// approved, removed) from either store's driver.
func scanLabelCounts(rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}) ([]LabelCount, error) {
	out := []LabelCount{}
	for rows.Next() {
		var c LabelCount
		if err := rows.Scan(&c.SiteID, &c.Kind, &c.Key, &c.Approved, &c.Removed); err != nil {
			return nil, fmt.Errorf("count labels: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count labels: %w", err)
	}
	return out, nil
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}
