package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// sourceAddrs hands out loopback source addresses 127.0.0.2, 127.0.0.3, …
// (continuing through 127.0.1.0 and on), each to at most perAddr clients.
// Spreading clients over addresses passes the ~28k ephemeral ports one
// (source, destination) pair allows, and the server's per-IP connection
// rate limit, exactly as real visitors from many addresses would.
type sourceAddrs struct {
	perAddr int
	next    int
}

// maxSourceAddrs keeps addresses inside 127.0.0.0/8 below 127.255.255.255.
const maxSourceAddrs = 1<<24 - 3

// addrFor returns the source address of client i.
func (s sourceAddrs) addrFor(i int) (net.IP, error) {
	per := s.perAddr
	if per < 1 {
		per = 1
	}
	n := i / per
	if n >= maxSourceAddrs {
		return nil, fmt.Errorf("client %d needs loopback address number %d, beyond 127.255.255.254", i, n)
	}
	return loopbackAddr(n), nil
}

// loopbackAddr is the n-th address from 127.0.0.2.
func loopbackAddr(n int) net.IP {
	v := n + 2
	return net.IPv4(127, byte(v>>16), byte(v>>8), byte(v))
}

// dialerFrom returns a dial function bound to the source address ip.
func dialerFrom(ip net.IP) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	if ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return d.DialContext
}

// httpClientFrom is an HTTP client whose connections leave from ip.
func httpClientFrom(ip net.IP, conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         dialerFrom(ip),
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// checkLoopback refuses a target that is not on this machine: bench only
// ever loads loopback.
func checkLoopback(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("--url %q: only http:// on loopback is supported", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return u, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--url %q: bench only drives a server on a loopback address (127.0.0.0/8, ::1, localhost)", raw)
	}
	return u, nil
}

// checkLoopbackHostPort is checkLoopback for host:port (brokers, ClickHouse).
func checkLoopbackHostPort(flag, hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%s %q is not host:port: %w", flag, hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: bench only connects to loopback addresses", flag, hostport)
	}
	return nil
}
