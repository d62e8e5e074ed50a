package chatsvc

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Checks on what visitors claim: their time zone, their identity on
// sites that require one, and their address on sites that ban addresses.

// tzName is the shape of an IANA zone name as browsers accept it.
var tzName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$`)

// browserTimezone reports whether tz is a time zone a browser's Intl API
// accepts: an IANA zone name Go can load, without the tzdata-only
// variants browsers reject ("right/UTC", "posix/Europe/Paris", "Local").
func browserTimezone(tz string) bool {
	if !tzName.MatchString(tz) || len(tz) > 64 {
		return false
	}
	for _, p := range []string{"right/", "posix/", "SystemV/"} {
		if strings.HasPrefix(tz, p) {
			return false
		}
	}
	switch tz {
	case "Local", "Factory", "localtime", "posixrules":
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}

// identityMissing reports whether a token may not be used on site:
// sites requiring identity verification admit verified visitors only.
func identityMissing(site *Site, claims visitorClaims) bool {
	return site.IdentityRequired && !claims.Verified
}

// maxBanAddressHours bounds the site setting ban_address_hours.
const maxBanAddressHours = 24 * 30

// banAddress bans the address of a banned anonymous visitor from the site
// for the site's ban_address_hours (never past the visitor's ban), so
// dropping the token does not escape the ban. Verified visitors are
// known by their site's user id instead.
func (s *Service) banAddress(ctx context.Context, siteID, visitorID string, until time.Time, reason string) error {
	site, ok := s.sites.get(siteID)
	if !ok || site.Settings.BanAddressHours <= 0 {
		return nil
	}
	v, found, err := s.store.Visitor(ctx, visitorID)
	if err != nil || !found || v.Verified || v.IP == "" {
		return err
	}
	end := time.Now().Add(time.Duration(site.Settings.BanAddressHours) * time.Hour)
	if until.Before(end) {
		end = until
	}
	return s.store.PutIPBan(ctx, IPBanRecord{SiteID: siteID, IP: v.IP, Until: end, Reason: reason})
}

// liftAddressBan lifts the ban of the address a visitor last used.
func (s *Service) liftAddressBan(ctx context.Context, siteID, visitorID string) error {
	v, found, err := s.store.Visitor(ctx, visitorID)
	if err != nil || !found || v.IP == "" {
		return err
	}
	return s.store.DeleteIPBans(ctx, siteID, v.IP)
}

// addressBanned reports a ban of ip on the site.
func (s *Service) addressBanned(ctx context.Context, siteID, ip string) (ban, bool) {
	b, ok, err := s.store.IPBan(ctx, siteID, ip, time.Now())
	if err != nil {
		s.log.Warn("read address ban", "site", siteID, "err", err)
		return ban{}, false
	}
	return ban{Until: b.Until, Reason: b.Reason}, ok
}
