// Package egress is outbound HTTP that cannot reach internal addresses.
//
// Parley calls URLs that admins type in (a site's bot webhook, event
// webhooks). Without care such a URL reaches what only the server can
// reach: the cloud metadata service (169.254.169.254), the database on
// loopback, the office network. egress refuses that twice:
//
//   - when a URL is saved, Policy.CheckURL refuses a literal internal
//     address and a host name that resolves to one, with an error that
//     names the address (handlers answer it with 400 naming their field);
//   - when a request is made, the client's dialer checks the address it
//     actually connects to, after DNS resolution (net.Dialer.Control), so a
//     name that changed its answer since it was saved (DNS rebinding) is
//     refused too.
//
// The client never follows redirects (a redirect would re-send the body
// and its signature to a target nobody checked) and ignores proxy
// settings from the environment (the dial check must see the real peer).
//
// Operators with on-premises endpoints name the hosts that may resolve to
// internal addresses (Policy.AllowHosts; cmd/parley's --egress-allow-hosts).
// Only those exact names are exempt; an address literal never is unless
// listed itself.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked marks a URL or connection refused because its address is internal.
var ErrBlocked = errors.New("internal address refused")

// ErrRedirect marks a response that asked for a redirect; egress never follows one.
var ErrRedirect = errors.New("redirects are not followed")

// Policy decides which hosts outbound requests may reach. The zero value
// refuses every internal address.
type Policy struct {
	// AllowHosts are host names (or address literals) that may be, or
	// resolve to, internal addresses: on-premises bots and webhooks.
	// Compared case-insensitively, without port.
	AllowHosts []string
	// Resolver looks host names up; nil uses net.DefaultResolver.
	Resolver *net.Resolver
}

// allowed reports whether host is exempt from the internal-address check.
func (p *Policy) allowed(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	for _, h := range p.AllowHosts {
		if strings.TrimSuffix(strings.ToLower(strings.Trim(strings.TrimSpace(h), "[]")), ".") == host {
			return true
		}
	}
	return false
}

func (p *Policy) resolver() *net.Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// CheckURL validates a URL an admin wants Parley to call: http or https,
// a host, no credentials, and (unless the host is allowed) neither a
// literal internal address nor a name that resolves to one. A name that
// does not resolve is refused too: it could later resolve anywhere, and an
// endpoint nobody can reach is a typo.
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q carries credentials; put them in the path or a header on your side", raw)
	}
	host := u.Hostname()
	if p.allowed(host) {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if why, bad := Internal(addr); bad {
			return fmt.Errorf("%w: %s is %s", ErrBlocked, addr, why)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("host %s does not resolve: %v", host, err)
	}
	for _, a := range addrs {
		if why, bad := Internal(a); bad {
			return fmt.Errorf("%w: %s resolves to %s, %s", ErrBlocked, host, a.Unmap(), why)
		}
	}
	return nil
}

// Internal reports whether addr is one outbound requests must not reach,
// and why: loopback, private, link-local (cloud metadata services live
// there), shared address space (CGNAT), multicast, unspecified, broadcast
// and reserved ranges, IPv4 addresses embedded in IPv6 (mapped, NAT64,
// 6to4) included.
func Internal(addr netip.Addr) (string, bool) {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return "not an address", true
	case addr.IsUnspecified():
		return "unspecified", true
	case addr.IsLoopback():
		return "loopback", true
	case addr.IsPrivate():
		return "a private address", true
	case addr.IsLinkLocalUnicast():
		return "link-local (cloud metadata services live there)", true
	case addr.IsMulticast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast", true
	}
	for _, r := range reserved {
		if r.prefix.Contains(addr) {
			return r.name, true
		}
	}
	for _, e := range embedding {
		if addr.Is6() && e.prefix.Contains(addr) {
			b := addr.As16()
			v4 := netip.AddrFrom4([4]byte(b[e.at : e.at+4]))
			if why, bad := Internal(v4); bad {
				return why + " (embedded in " + e.name + ")", true
			}
		}
	}
	return "", false
}

type namedPrefix struct {
	prefix netip.Prefix
	name   string
}

// reserved are the ranges net/netip's predicates do not cover.
var reserved = []namedPrefix{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT; some clouds' metadata services)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved for protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved for benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (and broadcast)"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "reserved for documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// embedding are IPv6 ranges that carry an IPv4 address, checked as that address.
var embedding = []struct {
	prefix netip.Prefix
	at     int
	name   string
}{
	{netip.MustParsePrefix("64:ff9b::/96"), 12, "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), 12, "local NAT64"},
	{netip.MustParsePrefix("2002::/16"), 2, "6to4"},
	{netip.MustParsePrefix("::/96"), 12, "IPv4-compatible IPv6"},
}

// Client returns an HTTP client whose every connection goes through the
// policy's dial check, that follows no redirect (the redirect response
// comes back as an error wrapping ErrRedirect), ignores proxy variables,
// and gives up after timeout.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: controlInternal}
	open := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			if p.allowed(host) {
				return open.DialContext(ctx, network, address)
			}
			return dialer.DialContext(ctx, network, address)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return fmt.Errorf("%w (to %s)", ErrRedirect, req.URL.Redacted())
		},
	}
}

// controlInternal runs after DNS resolution, before connect: address is
// the IP the socket is about to reach.
func controlInternal(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read dial address %q: %v", ErrBlocked, address, err)
	}
	if why, bad := Internal(ap.Addr()); bad {
		return fmt.Errorf("%w: %s is %s", ErrBlocked, ap.Addr().Unmap(), why)
	}
	return nil
}
