package analytics

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parleychat/parley/ingest"
)

// Default service targets of a site whose profile leaves them unset
// (docs/events.md, site.updated).
const (
	DefaultFirstResponseTarget = 5 * time.Minute
	DefaultReplyTarget         = 5 * time.Minute
)

// SiteProfile is what analytics knows of a site: the newest site.updated
// event's state (by occurred_at, then event id), and which of its
// versions the stored facts of the site were last computed with.
//
// Rev changes only when something that facts depend on changes (time
// zone, weekly hours, targets): it is the occurred_at (ms) of the event
// that made that change. A renamed site, or the same state republished
// by a starting chat node, keeps its Rev, so it recomputes nothing.
// FactsRev is the Rev every stored fact of the site was built with; the
// loader recomputes the site's facts while the two differ.
type SiteProfile struct {
	SiteID string                    `json:"site_id"`
	State  ingest.SiteUpdatedPayload `json:"state"`
	// UpdatedAt and EventID identify the newest event applied.
	UpdatedAt int64  `json:"updated_at"`
	EventID   string `json:"event_id"`
	Rev       int64  `json:"rev"`
	FactsRev  int64  `json:"facts_rev"`
}

// siteProfileFromEvent reads a site.updated event.
func siteProfileFromEvent(e ingest.Event) (SiteProfile, error) {
	var p ingest.SiteUpdatedPayload
	if err := e.Into(&p); err != nil {
		return SiteProfile{}, fmt.Errorf("site.updated %s: %w", e.ID, err)
	}
	return SiteProfile{SiteID: e.SiteID, State: p, UpdatedAt: e.OccurredAt.UnixMilli(), EventID: e.ID}, nil
}

// newer reports whether p is a later state of the site than old.
func (p SiteProfile) newer(old SiteProfile) bool {
	if p.UpdatedAt != old.UpdatedAt {
		return p.UpdatedAt > old.UpdatedAt
	}
	return p.EventID > old.EventID
}

// fingerprint hashes the parts of a site's state that facts depend on.
func (p SiteProfile) fingerprint() string {
	s := p.State
	b, _ := json.Marshal(struct {
		TZ     string
		Weekly [][]ingest.SiteTimeRange
		FR, RT int
	}{s.Timezone, s.Weekly, s.FirstResponseTargetSeconds, s.ReplyTargetSeconds})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// merge returns the profile to keep when next arrives for a site whose
// stored profile is old (found = false when there is none), and whether
// it differs from old.
func mergeProfile(old SiteProfile, found bool, next SiteProfile) (SiteProfile, bool) {
	if !found {
		next.Rev = max(next.UpdatedAt, 1)
		return next, true
	}
	if !next.newer(old) {
		return old, false
	}
	next.Rev, next.FactsRev = old.Rev, old.FactsRev
	if next.fingerprint() != old.fingerprint() {
		next.Rev = max(next.UpdatedAt, old.Rev+1)
	}
	return next, true
}

// siteRules is what fact building takes from a site's profile.
type siteRules struct {
	hours       *clock
	frTargetMs  int64
	rtTargetMs  int64
	rev         int64
	hoursBroken error
}

// rules compiles the profile. Invalid hours (which chatsvc refuses, so
// only a foreign producer sends them) count all time as business time and
// are reported in hoursBroken.
func (p SiteProfile) rules() siteRules {
	r := siteRules{frTargetMs: DefaultFirstResponseTarget.Milliseconds(), rtTargetMs: DefaultReplyTarget.Milliseconds(), rev: p.Rev}
	if s := p.State.FirstResponseTargetSeconds; s > 0 {
		r.frTargetMs = int64(s) * 1000
	}
	if s := p.State.ReplyTargetSeconds; s > 0 {
		r.rtTargetMs = int64(s) * 1000
	}
	h, ok, err := p.businessHours()
	if err != nil {
		r.hoursBroken = err
		return r
	}
	if ok {
		c, err := compileHours(h)
		if err != nil {
			r.hoursBroken = err
			return r
		}
		r.hours = c
	}
	return r
}

// businessHours converts the profile's weekly hours; ok is false when the
// site is always open (no day has a range).
func (p SiteProfile) businessHours() (BusinessHours, bool, error) {
	h := BusinessHours{TZ: p.State.Timezone}
	if h.TZ == "" {
		h.TZ = "UTC"
	}
	any := false
	for day, ranges := range p.State.Weekly {
		if day > 6 {
			return BusinessHours{}, false, fmt.Errorf("weekly has more than 7 days")
		}
		for _, r := range ranges {
			span, err := ParseSpan(r.From + "-" + r.To)
			if err != nil {
				return BusinessHours{}, false, fmt.Errorf("site %s weekly[%d]: %w", p.SiteID, day, err)
			}
			h.Days[day] = append(h.Days[day], span)
			any = true
		}
	}
	return h, any, nil
}

// versionBits is how many low bits of a facts Version hold the event count.
const versionBits = 20

// revEpoch is subtracted from revisions so that they fit above the count.
var revEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// factsVersion orders builds of one conversation: a build with a newer
// site revision replaces any build with an older one (whatever their event
// counts), and among builds with the same revision the one that saw more
// events wins.
func factsVersion(rev int64, events int) int64 {
	n := int64(min(events, 1<<versionBits-1))
	r := max(rev-revEpoch, 0)
	return r<<versionBits | n
}
