package analytics

import (
	"context"
	"errors"
	"time"

	"github.com/parleychat/parley/ingest"
)

// Store keeps raw events and the facts derived from them, and answers the
// metric queries. Every write is idempotent: writing an event or a fact row
// again leaves the store as if it had been written once.
type Store interface {
	// Backend names the implementation and server version, e.g. "clickhouse 18.16.1".
	Backend() string
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// InsertEvents stores the events whose ids are not stored yet.
	InsertEvents(ctx context.Context, events []ingest.Event) error
	// EventCounts returns how many distinct events of each given
	// conversation are stored (conversations with none may be left out).
	EventCounts(ctx context.Context, ids []ConversationKey) (map[ConversationKey]int64, error)
	// ConversationEvents returns every stored event of the given conversations.
	ConversationEvents(ctx context.Context, ids []ConversationKey) (map[ConversationKey][]ingest.Event, error)
	// WriteFacts upserts conversation and moderation facts; a row with a
	// lower Version than the stored one does not replace it.
	WriteFacts(ctx context.Context, conv []ConversationFacts, mod []ModerationFact) error
	// Report computes the metrics of a validated query.
	Report(ctx context.Context, q Query) (Report, error)
	// Conversations lists the facts behind a data point, ordered by start.
	Conversations(ctx context.Context, q Query, d Drill) ([]ConversationFacts, error)
	// Assignments lists agent ownership intervals overlapping the range of
	// conversations that match the filter.
	Assignments(ctx context.Context, q Query) ([]Assignment, error)
	// PresenceEvents returns the agent.presence events that decide online
	// time in [from, to): each agent's last one before from and every one
	// in the range. The same event may appear twice.
	PresenceEvents(ctx context.Context, from, to time.Time) ([]ingest.Event, error)
	// ModerationFacts returns the moderation facts that a moderation
	// report of q needs: flags, blocks and redactions (not allow
	// verdicts) of q's site filter from before q.To, decided or not, whose
	// item was still undecided at q.From or that were made in the range.
	ModerationFacts(ctx context.Context, q Query) ([]ModerationFact, error)
	// Overview computes the live numbers: dayStart is midnight in the viewer's zone.
	Overview(ctx context.Context, siteID string, dayStart, now time.Time) (Overview, error)
	// EventCount returns the number of distinct events stored.
	EventCount(ctx context.Context) (int64, error)

	// SiteProfiles returns every stored site profile with its FactsRev.
	SiteProfiles(ctx context.Context) ([]SiteProfile, error)
	// PutSiteProfiles stores profiles, each replacing its site's (FactsRev is not written).
	PutSiteProfiles(ctx context.Context, profiles []SiteProfile) error
	// MarkSiteFacts records that every fact of the site was built with
	// revision rev; a lower rev than the one recorded changes nothing.
	MarkSiteFacts(ctx context.Context, siteID string, rev int64) error
	// SiteConversations lists up to limit ids of the site's conversations
	// that have facts, in order, after the id after.
	SiteConversations(ctx context.Context, siteID, after string, limit int) ([]string, error)

	// HoldEvents keeps events of sites without a profile out of the
	// events table until FinishHeld.
	HoldEvents(ctx context.Context, events []HeldEvent) error
	// HeldSites summarises the events still held, per site.
	HeldSites(ctx context.Context) ([]HeldSite, error)
	// HeldEvents returns a site's events still held.
	HeldEvents(ctx context.Context, siteID string) ([]HeldEvent, error)
	// FinishHeld ends the holding of a site's events: released (loaded)
	// or dead-lettered.
	FinishHeld(ctx context.Context, siteID string, ids []string, outcome HeldOutcome) error

	// StaffSeen returns the staff ids the loader has verified before
	// (they stay valid after the account is deleted).
	StaffSeen(ctx context.Context) ([]string, error)
	// AddStaffSeen records verified staff ids.
	AddStaffSeen(ctx context.Context, ids []string) error

	// Reset deletes every event, fact and held event (replay starts from
	// empty tables). Site profiles and verified staff stay: replay reads
	// them again from the topics, but a site whose last change left the
	// retention window would otherwise hold all its events.
	Reset(ctx context.Context) error
	Close() error
}

// HeldEvent is an event of a site without a profile, with where it came
// from (for its dead letter; Partition -1 when not from Kafka).
type HeldEvent struct {
	Event     ingest.Event
	Topic     string
	Partition int
	Offset    int64
	HeldAt    int64
}

// HeldSite is a site with held events: how many, and since when (ms).
type HeldSite struct {
	SiteID string
	Since  int64
	Count  int64
}

// HeldOutcome is how holding ended.
type HeldOutcome uint8

// Held outcomes.
const (
	HeldReleased     HeldOutcome = 1
	HeldDeadLettered HeldOutcome = 2
)

// ConversationKey identifies a conversation.
type ConversationKey struct {
	SiteID         string
	ConversationID string
}

// Drill selects the conversations behind one data point: Bucket is the
// point's bucket label (empty = the whole range), Key its split value and
// Metric which of its numbers (see drillMetrics).
type Drill struct {
	Bucket string
	Key    string
	Metric string
	Limit  int
}

// Assignment is one interval of an agent owning a conversation; To 0 means
// still owned.
type Assignment struct {
	AgentID        string
	ConversationID string
	From, To       int64
}

// Overview is the live state of the floor: now, and today since local
// midnight (docs/metrics.md, "Live overview").
type Overview struct {
	At            time.Time `json:"at"`
	Open          int64     `json:"open"`
	Waiting       int64     `json:"waiting"`
	LongestWaitMs int64     `json:"longest_wait_ms"`
	NewToday      int64     `json:"new_today"`
	OfflineToday  int64     `json:"offline_today"`
	MissedToday   int64     `json:"missed_today"`
	LateToday     int64     `json:"late_today"`
	SLAToday      Target    `json:"sla_today"`
	CSATToday     CSAT      `json:"csat_today"`
}

// ErrUnavailable wraps store errors that mean "try again later".
var ErrUnavailable = errors.New("analytics store unavailable")

// dimValue returns the facts' value of a dimension.
func dimValue(f *ConversationFacts, d Dimension) string {
	switch d {
	case DimSite:
		return f.SiteID
	case DimTeam:
		return f.TeamID
	case DimAgent:
		return f.AgentID
	case DimChannel:
		return f.Channel
	}
	return ""
}

// matches applies a filter to facts (StartedAt range not included).
func (flt Filter) matches(f *ConversationFacts) bool {
	switch {
	case flt.SiteID != "" && f.SiteID != flt.SiteID,
		flt.TeamID != "" && f.TeamID != flt.TeamID,
		flt.AgentID != "" && f.AgentID != flt.AgentID,
		flt.Channel != "" && f.Channel != flt.Channel,
		flt.Hours == "in" && !f.StartedInHours,
		flt.Hours == "out" && f.StartedInHours:
		return false
	}
	return true
}

// parseBucketLabel turns a bucket label back into its key.
func parseBucketLabel(label string) (int64, error) {
	t, err := time.Parse(time.RFC3339, label)
	if err != nil {
		return 0, err
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC).Unix(), nil
}
