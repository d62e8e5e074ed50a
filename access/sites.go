package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Site membership: admins are global; agents, supervisors and moderators
// see and act only on the sites they belong to (User.Sites). access keeps
// the memberships as staff data; which sites exist is chat's to know.

// maxUserSites bounds one user's memberships.
const maxUserSites = 200

// cleanSites checks a membership list: ids of 1 to 64 printable
// characters, no duplicates (removed), sorted.
func cleanSites(sites []string) ([]string, error) {
	if len(sites) > maxUserSites {
		return nil, ValidationError(fmt.Sprintf("a user belongs to at most %d sites, not %d", maxUserSites, len(sites)))
	}
	out := make([]string, 0, len(sites))
	for _, s := range sites {
		s = strings.TrimSpace(s)
		if s == "" || len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			return nil, ValidationError(fmt.Sprintf("site id %q is not a site id", s))
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// SetSites replaces the sites a user works on; their open sockets close
// (AccessListener) so that they reopen with the new scope.
func (d *Directory) SetSites(ctx context.Context, userID string, sites []string) error {
	clean, err := cleanSites(sites)
	if err != nil {
		return err
	}
	if err := d.store.SetUserSites(ctx, userID, clean); err != nil {
		return err
	}
	d.userChanged(userID, ReasonAccountChanged)
	return nil
}

// SharesSite reports whether u and o are colleagues: either is an admin
// (admins work on every site) or they work on a common site.
func (u User) SharesSite(o User) bool {
	if u.IsAdmin() || o.IsAdmin() || u.everySite {
		return true
	}
	for _, s := range u.Sites {
		if o.OnSite(s) {
			return true
		}
	}
	return false
}
