package chatsvc

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
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

// FAQ is one rule of the rules bot.
type FAQ struct {
	Keywords []string `json:"keywords"`
	Answer   string   `json:"answer"`
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
	RetentionDays  int         `json:"retention_days,omitempty"`
}

// Site is a website the widget is installed on.
type Site struct {
	ID               string        `json:"id"`
	Name             string        `json:"name"`
	Key              string        `json:"key"`
	AllowedOrigins   []string      `json:"allowed_origins"`
	IdentityRequired bool          `json:"identity_required"`
	Secret           string        `json:"secret,omitempty"`
	Settings         SiteSettings  `json:"settings"`
	Snippet          string        `json:"snippet,omitempty"`
	CreatedAt        ingest.Millis `json:"created_at"`

	loc *time.Location
}

// SiteInput is what an admin sets on a site.
type SiteInput struct {
	Name             string       `json:"name"`
	AllowedOrigins   []string     `json:"allowed_origins"`
	IdentityRequired bool         `json:"identity_required"`
	Settings         SiteSettings `json:"settings"`
}

// ErrNotFound marks a missing row.
var ErrNotFound = errors.New("not found")

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
	return nil
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
	db    *sql.DB
	mu    sync.RWMutex
	byID  map[string]*Site
	byKey map[string]*Site
}

func (c *siteCache) load(ctx context.Context) error {
	rows, err := c.db.QueryContext(ctx, `SELECT id, name, site_key, secret, allowed_origins, identity_required, settings, created_at FROM sites`)
	if err != nil {
		return fmt.Errorf("load sites: %w", err)
	}
	defer rows.Close()
	byID, byKey := map[string]*Site{}, map[string]*Site{}
	for rows.Next() {
		var s Site
		var origins, settings string
		var idReq int
		var created int64
		if err := rows.Scan(&s.ID, &s.Name, &s.Key, &s.Secret, &origins, &idReq, &settings, &created); err != nil {
			return fmt.Errorf("load sites: %w", err)
		}
		if err := json.Unmarshal([]byte(origins), &s.AllowedOrigins); err != nil {
			return fmt.Errorf("site %s origins: %w", s.ID, err)
		}
		if err := json.Unmarshal([]byte(settings), &s.Settings); err != nil {
			return fmt.Errorf("site %s settings: %w", s.ID, err)
		}
		s.IdentityRequired = idReq != 0
		s.CreatedAt = msTime(created)
		if tz := s.Settings.Hours.Timezone; tz != "" {
			s.loc, _ = time.LoadLocation(tz)
		}
		byID[s.ID], byKey[s.Key] = &s, &s
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load sites: %w", err)
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

// CreateSite adds a site with a fresh key and identity secret.
func (s *Service) CreateSite(ctx context.Context, in SiteInput) (Site, error) {
	if err := in.validate(); err != nil {
		return Site{}, err
	}
	if in.AllowedOrigins == nil {
		in.AllowedOrigins = []string{}
	}
	id := ingest.NewID()
	key := "pk_" + randomHex(12)
	secret := randomHex(32)
	origins, _ := json.Marshal(in.AllowedOrigins)
	settings, _ := json.Marshal(in.Settings)
	_, err := s.db.ExecContext(ctx, `INSERT INTO sites (id, name, site_key, secret, allowed_origins, identity_required, settings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, in.Name, key, secret, string(origins), boolInt(in.IdentityRequired), string(settings), time.Now().UnixMilli())
	if err != nil {
		return Site{}, fmt.Errorf("create site %q: %w", in.Name, err)
	}
	if err := s.sites.load(ctx); err != nil {
		return Site{}, err
	}
	site, _ := s.sites.get(id)
	return *site, nil
}

// UpdateSite replaces a site's name, origins, identity flag and settings.
func (s *Service) UpdateSite(ctx context.Context, id string, in SiteInput) (Site, error) {
	if err := in.validate(); err != nil {
		return Site{}, err
	}
	if in.AllowedOrigins == nil {
		in.AllowedOrigins = []string{}
	}
	origins, _ := json.Marshal(in.AllowedOrigins)
	settings, _ := json.Marshal(in.Settings)
	res, err := s.db.ExecContext(ctx, `UPDATE sites SET name = ?, allowed_origins = ?, identity_required = ?, settings = ? WHERE id = ?`,
		in.Name, string(origins), boolInt(in.IdentityRequired), string(settings), id)
	if err != nil {
		return Site{}, fmt.Errorf("update site %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Site{}, ErrNotFound
	}
	if err := s.sites.load(ctx); err != nil {
		return Site{}, err
	}
	site, _ := s.sites.get(id)
	return *site, nil
}

// RotateSiteSecret gives a site a new identity-verification secret.
func (s *Service) RotateSiteSecret(ctx context.Context, id string) (Site, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE sites SET secret = ? WHERE id = ?`, randomHex(32), id)
	if err != nil {
		return Site{}, fmt.Errorf("rotate secret of site %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Site{}, ErrNotFound
	}
	if err := s.sites.load(ctx); err != nil {
		return Site{}, err
	}
	site, _ := s.sites.get(id)
	return *site, nil
}

// DeleteSite removes a site; its conversations stay for reporting.
func (s *Service) DeleteSite(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sites WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete site %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return s.sites.load(ctx)
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
	})
	if err != nil {
		return Site{}, false, err
	}
	return site, true, nil
}

// SiteSchedule returns a site's business hours for analytics: time zone and
// the weekly ranges (index 0 = Sunday). ok is false when the site has no
// schedule (always open) or does not exist.
func (s *Service) SiteSchedule(ctx context.Context, siteID string) (tz string, weekly [7][]TimeRange, ok bool, err error) {
	site, found := s.sites.get(siteID)
	if !found {
		return "", weekly, false, nil
	}
	h := site.Settings.Hours
	if len(h.Weekly) != 7 {
		return h.Timezone, weekly, false, nil
	}
	for i := range weekly {
		weekly[i] = append([]TimeRange(nil), h.Weekly[i]...)
	}
	return h.Timezone, weekly, true, nil
}

// Snippet is the copy-paste install tag for a site served from baseURL.
func Snippet(baseURL, siteKey string) string {
	return fmt.Sprintf(`<script src="%s/widget.js" data-site-key="%s" async></script>`, strings.TrimRight(baseURL, "/"), siteKey)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortSites(s []Site) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Name != s[j].Name {
			return s[i].Name < s[j].Name
		}
		return s[i].ID < s[j].ID
	})
}
