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
	// Moderation computes the moderation metrics of the range.
	Moderation(ctx context.Context, q Query) (ModerationReport, error)
	// Overview computes the live numbers: dayStart is midnight in the viewer's zone.
	Overview(ctx context.Context, siteID string, dayStart, now time.Time) (Overview, error)
	// EventCount returns the number of distinct events stored.
	EventCount(ctx context.Context) (int64, error)
	// Reset deletes every event and fact (replay starts from empty tables).
	Reset(ctx context.Context) error
	Close() error
}

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

// ModerationReport holds the moderation metrics of a range.
type ModerationReport struct {
	Items     []ModerationCount `json:"items"`
	Decisions []ModerationCount `json:"decisions"`
	Review    Duration          `json:"time_to_review"`
	Backlog   int64             `json:"backlog"`
}

// ModerationCount is a count by category and action or by decision.
type ModerationCount struct {
	Category string `json:"category,omitempty"`
	Action   string `json:"action,omitempty"`
	Decision string `json:"decision,omitempty"`
	Count    int64  `json:"count"`
}

// Overview is the live state of the floor.
type Overview struct {
	At            time.Time `json:"at"`
	Open          int64     `json:"open"`
	Waiting       int64     `json:"waiting"`
	LongestWaitMs int64     `json:"longest_wait_ms"`
	NewToday      int64     `json:"new_today"`
	MissedToday   int64     `json:"missed_today"`
	CSATToday     CSAT      `json:"csat_today"`
}

// ErrUnavailable wraps store errors that mean "try again later".
var ErrUnavailable = errors.New("analytics store unavailable")

// drillMetrics maps drill metric names to the conversations they count.
var drillMetrics = map[string]func(f *ConversationFacts, now int64) bool{
	"":               func(*ConversationFacts, int64) bool { return true },
	"new":            func(*ConversationFacts, int64) bool { return true },
	"resolved":       func(f *ConversationFacts, _ int64) bool { return f.ResolvedAt > 0 },
	"reopened":       func(f *ConversationFacts, _ int64) bool { return f.Reopens > 0 },
	"missed":         func(f *ConversationFacts, now int64) bool { return f.Missed(now) },
	"offline":        func(f *ConversationFacts, _ int64) bool { return f.Channel == ingest.ChannelOffline },
	"handled":        func(f *ConversationFacts, _ int64) bool { return f.AgentID != "" },
	"first_response": func(f *ConversationFacts, _ int64) bool { return f.FirstResponseMs >= 0 },
	"reply_time":     func(f *ConversationFacts, _ int64) bool { return len(f.ReplyMs) > 0 },
	"queue_wait":     func(f *ConversationFacts, _ int64) bool { return len(f.QueueWaitMs) > 0 },
	"resolution":     func(f *ConversationFacts, _ int64) bool { return f.ResolutionMs >= 0 },
	"csat":           func(f *ConversationFacts, _ int64) bool { return f.CSAT > 0 },
	"csat_positive":  func(f *ConversationFacts, _ int64) bool { return f.CSAT >= 4 },
}

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
