package ingest

import (
	"fmt"
	"time"
)

// SiteUpdated is written by chatsvc whenever a site is created, changed or
// deleted, and for every site when a chat node starts, so consumers that
// need a site's clock and service targets (analytics: business hours,
// SLAs) learn them from the pipeline instead of from chat's tables. Like
// agent.presence it belongs to no conversation: its conversation_id (and
// Kafka key) is SiteKey(site id), so one site's changes stay in order.
const SiteUpdated Type = "site.updated"

// SiteKeyPrefix starts the conversation_id of site.updated events.
const SiteKeyPrefix = "site:"

// SiteKey returns the conversation_id (and Kafka key) of a site's events.
func SiteKey(siteID string) string { return SiteKeyPrefix + siteID }

// SiteTimeRange is one opening interval of a day, "HH:MM" to "HH:MM"
// ("24:00" allowed; To before From crosses midnight).
type SiteTimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// SiteUpdatedPayload is a site's state as of the event, whole (not a
// diff): a consumer keeps the newest one per site by occurred_at.
type SiteUpdatedPayload struct {
	Name string `json:"name"`
	// Timezone is an IANA zone name; empty means UTC.
	Timezone string `json:"timezone,omitempty"`
	// Weekly[0] is Sunday; an empty schedule means always open.
	Weekly [][]SiteTimeRange `json:"weekly,omitempty"`
	// FirstResponseTargetSeconds is the site's first-response target
	// (SLA); 0 means the default of 300 s.
	FirstResponseTargetSeconds int `json:"first_response_target_s,omitempty"`
	// ReplyTargetSeconds is the target for every later agent reply; 0
	// means the default of 300 s.
	ReplyTargetSeconds int `json:"reply_target_s,omitempty"`
	// InactivityTimeoutSeconds closes a conversation with no activity for
	// that long (reason "inactive"); 0 means the default of 24 h.
	InactivityTimeoutSeconds int `json:"inactivity_timeout_s,omitempty"`
	// Deleted is set on the last event of a deleted site.
	Deleted bool `json:"deleted,omitempty"`
}

func (p *SiteUpdatedPayload) validate() error {
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil {
			return fmt.Errorf("timezone %q is not an IANA zone", p.Timezone)
		}
	}
	if len(p.Weekly) > 7 {
		return fmt.Errorf("weekly has %d days, at most 7", len(p.Weekly))
	}
	for _, v := range []struct {
		name string
		s    int
	}{{"first_response_target_s", p.FirstResponseTargetSeconds}, {"reply_target_s", p.ReplyTargetSeconds}, {"inactivity_timeout_s", p.InactivityTimeoutSeconds}} {
		if v.s < 0 {
			return fmt.Errorf("%s %d is negative", v.name, v.s)
		}
	}
	return nil
}
