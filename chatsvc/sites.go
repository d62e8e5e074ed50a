package chatsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley/ingest"
)

// TimeRange is one opening interval of a day, "HH:MM" to "HH:MM" (24:00
// allowed; To before From crosses midnight).
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Hours is a site's weekly schedule; Weekly[0] is Sunday. An empty
// schedule means always open.
type Hours struct {
	Timezone string        `json:"timezone,omitempty"`
	Weekly   [][]TimeRange `json:"weekly,omitempty"`
}

// PrechatField is one custom field of the pre-chat form.
type PrechatField struct {
	Name     string `json:"name"`
	Label    string `json:"label"`
	Required bool   `json:"required,omitempty"`
}

// Prechat configures the pre-chat form.
type Prechat struct {
	Enabled bool           `json:"enabled"`
	Fields  []PrechatField `json:"fields,omitempty"`
}

// FAQ is one rule of the rules bot. Language limits it to visitors whose
// widget speaks that language (empty: every visitor).
type FAQ struct {
	Keywords []string `json:"keywords"`
	Answer   string   `json:"answer"`
	Language string   `json:"language,omitempty"`
}

// BotSettings configures a site's bot.
type BotSettings struct {
	Enabled         bool     `json:"enabled"`
	Name            string   `json:"name,omitempty"`
	Greeting        string   `json:"greeting,omitempty"`
	AwayMessage     string   `json:"away_message,omitempty"`
	FAQ             []FAQ    `json:"faq,omitempty"`
	HandoverPhrases []string `json:"handover_phrases,omitempty"`
	WebhookURL      string   `json:"webhook_url,omitempty"`
}

// SiteSettings is the widget's look and the site's behaviour.
type SiteSettings struct {
	Color          string      `json:"color,omitempty"`
	Greeting       string      `json:"greeting,omitempty"`
	ReplyTime      string      `json:"reply_time,omitempty"`
	Avatars        []string    `json:"avatars,omitempty"`
	OfflineMessage string      `json:"offline_message,omitempty"`
	Prechat        Prechat     `json:"prechat"`
	Hours          Hours       `json:"hours"`
	Bot            BotSettings `json:"bot"`
	AgentLimit     int         `json:"agent_limit,omitempty"`
	// BanAddressHours, when set, also bans a banned anonymous visitor's
	// network address from the site for that many hours (at most the
	// ban's length), so dropping the token does not escape the ban.
	BanAddressHours int `json:"ban_address_hours,omitempty"`
	RetentionDays   int `json:"retention_days,omitempty"`
	// FirstResponseTargetSeconds and ReplyTargetSeconds are the service
	// targets analytics measures first responses and later replies
	// against (0: 300 s); InactivityTimeoutSeconds closes a conversation
	// nobody touched for that long (0: 24 h).
	FirstResponseTargetSeconds int `json:"first_response_target_s,omitempty"`
	ReplyTargetSeconds         int `json:"reply_target_s,omitempty"`
	InactivityTimeoutSeconds   int `json:"inactivity_timeout_s,omitempty"`

	// Languages (i18n.go, docs/widget.md). DefaultLanguage is the language
	// of the texts above (English when empty); Languages are the ones the
	// widget may pick from the visitor's browser (empty: the default only).
	DefaultLanguage string   `json:"default_language,omitempty"`
	Languages       []string `json:"languages,omitempty"`
	// Strings overrides catalog texts: language → key → text.
	Strings map[string]map[string]string `json:"strings,omitempty"`
	// Translations are the texts above in other languages.
	Translations map[string]SiteTexts `json:"translations,omitempty"`
	// Email configures replies and transcripts by email (site_email.go).
	Email EmailSettings `json:"email"`
}

// Target bounds and defaults of SiteSettings, in seconds.
const (
	DefaultResponseTargetSeconds    = 300
	DefaultInactivityTimeoutSeconds = 24 * 3600
	minResponseTargetSeconds        = 10
	maxResponseTargetSeconds        = 24 * 3600
	minInactivityTimeoutSeconds     = 5 * 60
	maxInactivityTimeoutSeconds     = 30 * 24 * 3600
)

// checkTargets validates the targets: 0 (the default) or within bounds.
func (st *SiteSettings) checkTargets() error {
	for _, v := range []struct {
		name      string
		n, lo, hi int
		def       int
	}{
		{"first_response_target_s", st.FirstResponseTargetSeconds, minResponseTargetSeconds, maxResponseTargetSeconds, DefaultResponseTargetSeconds},
		{"reply_target_s", st.ReplyTargetSeconds, minResponseTargetSeconds, maxResponseTargetSeconds, DefaultResponseTargetSeconds},
		{"inactivity_timeout_s", st.InactivityTimeoutSeconds, minInactivityTimeoutSeconds, maxInactivityTimeoutSeconds, DefaultInactivityTimeoutSeconds},
	} {
		if v.n != 0 && (v.n < v.lo || v.n > v.hi) {
			return fmt.Errorf("%s %d is not between %d and %d seconds (0 uses the default, %d)", v.name, v.n, v.lo, v.hi, v.def)
		}
	}
	return nil
}

// inactivityTimeout is how long a conversation of the site may go untouched.
func (st *SiteSettings) inactivityTimeout() time.Duration {
	if st.InactivityTimeoutSeconds > 0 {
		return time.Duration(st.InactivityTimeoutSeconds) * time.Second
	}
	return DefaultInactivityTimeoutSeconds * time.Second
}

// Site is a website the widget is installed on.
type Site struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Key              string   `json:"key"`
	AllowedOrigins   []string `json:"allowed_origins"`
	IdentityRequired bool     `json:"identity_required"`
	Secret           string   `json:"secret,omitempty"`
	// WebhookSecret signs bot webhook requests (X-Parley-Signature); it is
	// not the identity secret, so a webhook endpoint that leaks it cannot
	// forge verified visitors.
	WebhookSecret string        `json:"webhook_secret,omitempty"`
	Settings      SiteSettings  `json:"settings"`
	Snippet       string        `json:"snippet,omitempty"`
	CreatedAt     ingest.Millis `json:"created_at"`

	loc *time.Location
}

// SiteInput is what an admin sets on a site.
type SiteInput struct {
	Name             string       `json:"name"`
	AllowedOrigins   []string     `json:"allowed_origins"`
	IdentityRequired bool         `json:"identity_required"`
	Settings         SiteSettings `json:"settings"`
}

// validationError marks a refused site input.
type validationError struct{ error }

func isValidation(err error) bool {
	var v validationError
	return errors.As(err, &v)
}

func (in *SiteInput) validate() error {
	if err := in.check(); err != nil {
		return validationError{err}
	}
	return nil
}

func (in *SiteInput) check() error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return errors.New("name must be 1 to 200 characters")
	}
	if len(in.AllowedOrigins) > 100 {
		return errors.New("at most 100 allowed origins")
	}
	for i, o := range in.AllowedOrigins {
		o = strings.TrimSpace(o)
		in.AllowedOrigins[i] = o
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("origin %q must be scheme://host[:port] (http or https, no path)", o)
		}
		in.AllowedOrigins[i] = strings.ToLower(o)
	}
	st := &in.Settings
	if st.AgentLimit < 0 || st.AgentLimit > 1000 {
		return fmt.Errorf("agent_limit %d is not between 0 and 1000", st.AgentLimit)
	}
	if st.BanAddressHours < 0 || st.BanAddressHours > maxBanAddressHours {
		return fmt.Errorf("ban_address_hours %d is not between 0 and %d", st.BanAddressHours, maxBanAddressHours)
	}
	if err := st.checkTargets(); err != nil {
		return err
	}
	if h := st.Hours; h.Timezone != "" || len(h.Weekly) > 0 {
		if _, err := time.LoadLocation(h.Timezone); err != nil || h.Timezone == "" {
			return fmt.Errorf("hours.timezone %q is not an IANA time zone", h.Timezone)
		}
		if len(h.Weekly) != 0 && len(h.Weekly) != 7 {
			return fmt.Errorf("hours.weekly has %d days, want 7 (Sunday first)", len(h.Weekly))
		}
		for d, ranges := range h.Weekly {
			for _, r := range ranges {
				if _, err := parseHM(r.From); err != nil {
					return fmt.Errorf("hours.weekly[%d].from: %w", d, err)
				}
				if _, err := parseHM(r.To); err != nil {
					return fmt.Errorf("hours.weekly[%d].to: %w", d, err)
				}
			}
		}
	}
	for i, f := range st.Prechat.Fields {
		if f.Name == "" || len(f.Name) > 64 {
			return fmt.Errorf("prechat.fields[%d].name must be 1 to 64 characters", i)
		}
	}
	if u := st.Bot.WebhookURL; u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("bot.webhook_url %q is not an http(s) URL", u)
		}
	}
	if len(st.Bot.FAQ) > 500 {
		return errors.New("bot.faq has more than 500 entries")
	}
	if err := st.Email.check(); err != nil {
		return err
	}
	return st.checkLanguages()
}

// parseHM parses "HH:MM" into minutes after midnight (24:00 = 1440).
func parseHM(s string) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || len(s) != 5 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return h*60 + m, nil
}

// OpenAt reports whether t falls in the site's business hours.
func (s *Site) OpenAt(t time.Time) bool {
	h := s.Settings.Hours
	if len(h.Weekly) != 7 || s.loc == nil {
		return true
	}
	lt := t.In(s.loc)
	minute := lt.Hour()*60 + lt.Minute()
	day := int(lt.Weekday())
	for _, r := range h.Weekly[day] {
		from, _ := parseHM(r.From)
		to, _ := parseHM(r.To)
		if from <= to && minute >= from && minute < to {
			return true
		}
		if from > to && minute >= from { // crosses midnight: today's part
			return true
		}
	}
	prev := (day + 6) % 7
	for _, r := range h.Weekly[prev] {
		from, _ := parseHM(r.From)
		to, _ := parseHM(r.To)
		if from > to && minute < to { // yesterday's range spilling into today
			return true
		}
	}
	return false
}

// AllowsOrigin reports whether a browser Origin may use the site.
func (s *Site) AllowsOrigin(origin string) bool {
	origin = strings.ToLower(origin)
	for _, o := range s.AllowedOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}

func (s *Site) agentLimit(def int) int {
	if s.Settings.AgentLimit > 0 {
		return s.Settings.AgentLimit
	}
	return def
}

// siteCache keeps every site in memory; sites are few and read on every
// session, socket and message.
type siteCache struct {
	store ChatStore
	mu    sync.RWMutex
	byID  map[string]*Site
	byKey map[string]*Site
}

func (c *siteCache) load(ctx context.Context) error {
	sites, err := c.store.Sites(ctx)
	if err != nil {
		return err
	}
	byID, byKey := map[string]*Site{}, map[string]*Site{}
	for i := range sites {
		s := &sites[i]
		if tz := s.Settings.Hours.Timezone; tz != "" {
			s.loc, _ = time.LoadLocation(tz)
		}
		byID[s.ID], byKey[s.Key] = s, s
	}
	c.mu.Lock()
	c.byID, c.byKey = byID, byKey
	c.mu.Unlock()
	return nil
}

func (c *siteCache) get(id string) (*Site, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.byID[id]
	return s, ok
}

func (c *siteCache) byKeyGet(key string) (*Site, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.byKey[key]
	return s, ok
}

func (c *siteCache) all() []*Site {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Site, 0, len(c.byID))
	for _, s := range c.byID {
		out = append(out, s)
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// siteEvent builds the site.updated event that reports a site's state
// (deleted: its removal); actor is who changed it.
func siteEvent(site Site, deleted bool, actor string, at time.Time) (ingest.OutboxRecord, error) {
	p := ingest.SiteUpdatedPayload{
		Name: site.Name, Timezone: site.Settings.Hours.Timezone, Deleted: deleted,
		FirstResponseTargetSeconds: site.Settings.FirstResponseTargetSeconds,
		ReplyTargetSeconds:         site.Settings.ReplyTargetSeconds,
		InactivityTimeoutSeconds:   site.Settings.InactivityTimeoutSeconds,
	}
	for _, day := range site.Settings.Hours.Weekly {
		ranges := make([]ingest.SiteTimeRange, len(day))
		for i, r := range day {
			ranges[i] = ingest.SiteTimeRange{From: r.From, To: r.To}
		}
		p.Weekly = append(p.Weekly, ranges)
	}
	e, err := ingest.New(ingest.SiteUpdated, site.ID, ingest.SiteKey(site.ID), ingest.Actor{Role: ingest.RoleSystem, ID: actor}, at, &p)
	if err != nil {
		return ingest.OutboxRecord{}, fmt.Errorf("build site.updated of %s: %w", site.ID, err)
	}
	return ingest.NewOutboxRecord(e)
}

// CreateSite adds a site with a fresh key and identity secret.
func (s *Service) CreateSite(ctx context.Context, in SiteInput, by string) (Site, error) {
	if err := in.validate(); err != nil {
		return Site{}, err
	}
	if in.AllowedOrigins == nil {
		in.AllowedOrigins = []string{}
	}
	now := time.Now()
	if err := s.checkWebhookURL(ctx, in); err != nil {
		return Site{}, err
	}
	site := Site{
		ID: ingest.NewID(), Name: in.Name, Key: "pk_" + randomHex(12), Secret: randomHex(32), WebhookSecret: randomHex(32),
		AllowedOrigins: in.AllowedOrigins, IdentityRequired: in.IdentityRequired, Settings: in.Settings, CreatedAt: ingest.At(now),
	}
	e, err := siteEvent(site, false, by, now)
	if err != nil {
		return Site{}, err
	}
	if err := s.store.InsertSite(ctx, site, e); err != nil {
		return Site{}, err
	}
	return s.siteChanged(ctx, site.ID)
}

// siteChanged reloads the site cache after a change, wakes the relay for
// the change's event, and returns the site as stored.
func (s *Service) siteChanged(ctx context.Context, id string) (Site, error) {
	s.relayWake()
	s.cluster.publish("sites", busMessage{Kind: busSites})
	if err := s.sites.load(ctx); err != nil {
		return Site{}, err
	}
	site, ok := s.sites.get(id)
	if !ok {
		return Site{}, ErrNotFound
	}
	return *site, nil
}

// UpdateSite replaces a site's name, origins, identity flag and settings.
func (s *Service) UpdateSite(ctx context.Context, id string, in SiteInput, by string) (Site, error) {
	if err := in.validate(); err != nil {
		return Site{}, err
	}
	if in.AllowedOrigins == nil {
		in.AllowedOrigins = []string{}
	}
	old, ok := s.sites.get(id)
	if !ok {
		return Site{}, ErrNotFound
	}
	if err := s.checkWebhookURL(ctx, in); err != nil {
		return Site{}, err
	}
	site := *old
	site.Name, site.AllowedOrigins, site.IdentityRequired, site.Settings = in.Name, in.AllowedOrigins, in.IdentityRequired, in.Settings
	e, err := siteEvent(site, false, by, time.Now())
	if err != nil {
		return Site{}, err
	}
	if err := s.store.UpdateSite(ctx, site, e); err != nil {
		return Site{}, err
	}
	return s.siteChanged(ctx, id)
}

// RotateSiteSecret gives a site a new identity-verification secret.
func (s *Service) RotateSiteSecret(ctx context.Context, id string) (Site, error) {
	if err := s.store.SetSiteSecret(ctx, id, randomHex(32)); err != nil {
		return Site{}, err
	}
	return s.siteChanged(ctx, id)
}

// DeleteSite removes a site; its conversations stay for reporting.
func (s *Service) DeleteSite(ctx context.Context, id, by string) error {
	old, ok := s.sites.get(id)
	if !ok {
		return ErrNotFound
	}
	e, err := siteEvent(*old, true, by, time.Now())
	if err != nil {
		return err
	}
	if err := s.store.DeleteSite(ctx, id, e); err != nil {
		return err
	}
	s.relayWake()
	s.cluster.publish("sites", busMessage{Kind: busSites})
	return s.sites.load(ctx)
}

// publishSites writes every site's current state as a site.updated event,
// so consumers that start empty (or replay after the retention window
// dropped a site's last change) learn every live site.
func (s *Service) publishSites(ctx context.Context) error {
	now := time.Now()
	var events []ingest.OutboxRecord
	for _, site := range s.sites.all() {
		e, err := siteEvent(*site, false, "node:"+s.cfg.NodeID, now)
		if err != nil {
			return err
		}
		events = append(events, e)
	}
	if len(events) == 0 {
		return nil
	}
	return s.store.AppendOutbox(ctx, events)
}

// Site returns one site.
func (s *Service) Site(id string) (Site, bool) {
	site, ok := s.sites.get(id)
	if !ok {
		return Site{}, false
	}
	return *site, true
}

// Sites lists every site by name.
func (s *Service) Sites() []Site {
	all := s.sites.all()
	out := make([]Site, 0, len(all))
	for _, site := range all {
		out = append(out, *site)
	}
	sortSites(out)
	return out
}

// EnsureDemoSite creates a site named "Demo" allowing origins when no site
// exists yet, so a fresh `parley serve` has a working snippet. It returns
// the first site and whether it was created now.
func (s *Service) EnsureDemoSite(ctx context.Context, origins []string) (Site, bool, error) {
	if all := s.Sites(); len(all) > 0 {
		return all[0], false, nil
	}
	site, err := s.CreateSite(ctx, SiteInput{
		Name: "Demo", AllowedOrigins: origins,
		Settings: SiteSettings{
			Color: "#4f46e5", Greeting: "Hi! How can we help you today?", ReplyTime: "a few minutes",
			OfflineMessage: "We are away right now. Leave a message and we will get back to you by email.",
			Prechat:        Prechat{Enabled: false},
			Bot: BotSettings{
				Enabled: false, Name: "Parley Bot", HandoverPhrases: []string{"talk to a human", "human", "agent"},
			},
		},
	}, "node:"+s.cfg.NodeID)
	if err != nil {
		return Site{}, false, err
	}
	return site, true, nil
}

// Snippet is the copy-paste install tag for a site served from baseURL.
func Snippet(baseURL, siteKey string) string {
	return fmt.Sprintf(`<script src="%s/widget.js" data-site-key="%s" async></script>`, strings.TrimRight(baseURL, "/"), siteKey)
}

func sortSites(s []Site) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Name != s[j].Name {
			return s[i].Name < s[j].Name
		}
		return s[i].ID < s[j].ID
	})
}
