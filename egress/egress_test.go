package egress

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestInternalRanges(t *testing.T) {
	internal := []string{
		"127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "fe80::1", "100.64.0.1", "100.100.100.200", "224.0.0.1", "ff02::1",
		"0.0.0.0", "::", "255.255.255.255", "240.0.0.1", "fc00::1", "fd00:ec2::254",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::127.0.0.1",
		"198.18.0.1", "192.0.0.170",
	}
	for _, s := range internal {
		if why, bad := Internal(netip.MustParseAddr(s)); !bad || why == "" {
			t.Errorf("%s: Internal = %q, %v; want refused with a reason", s, why, bad)
		}
	}
	public := []string{"93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "172.32.0.1", "100.128.0.1", "64:ff9b::808:808"}
	for _, s := range public {
		if why, bad := Internal(netip.MustParseAddr(s)); bad {
			t.Errorf("%s: refused as %s; want allowed", s, why)
		}
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	var p Policy
	refused := map[string]string{
		"http://127.0.0.1:8080/hook":           "loopback",
		"http://[::1]/hook":                    "loopback",
		"http://169.254.169.254/latest/meta":   "link-local",
		"http://10.0.0.5/":                     "private",
		"http://100.100.100.200/":              "CGNAT",
		"http://localhost:9/hook":              "resolves to",
		"http://[::ffff:10.0.0.1]/":            "private",
		"ftp://example.com/":                   "not an http(s) URL",
		"http:///nohost":                       "not an http(s) URL",
		"https://user:pw@93.184.216.34/":       "credentials",
		"http://no-such-host.invalid/hook":     "does not resolve",
		"http://0.0.0.0:80/":                   "unspecified",
		"http://[64:ff9b::7f00:1]/":            "embedded",
		"http://224.0.0.251/":                  "multicast",
		"https://93.184.216.34.nip.invalid/x/": "does not resolve",
	}
	for raw, want := range refused {
		err := p.CheckURL(ctx, raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckURL(%s) = %v; want an error containing %q", raw, err, want)
		}
	}
	if err := p.CheckURL(ctx, "https://93.184.216.34/hook"); err != nil {
		t.Errorf("a public address literal is refused: %v", err)
	}
	onPrem := Policy{AllowHosts: []string{"LocalHost", "10.0.0.5"}}
	for _, raw := range []string{"http://localhost:9/hook", "http://10.0.0.5/hook"} {
		if err := onPrem.CheckURL(ctx, raw); err != nil {
			t.Errorf("allowed host refused: %s: %v", raw, err)
		}
	}
	if err := onPrem.CheckURL(ctx, "http://127.0.0.1/hook"); !errors.Is(err, ErrBlocked) {
		t.Errorf("allowing localhost also allowed 127.0.0.1: %v", err)
	}
}

// TestClientRefusesInternalPeersAtDialTime dials a real listener on
// loopback through a name (localhost) that CheckURL never saw: the
// dialer's Control refuses the resolved address, and the server sees no
// connection.
func TestClientRefusesInternalPeersAtDialTime(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	var p Policy
	c := p.Client(5 * time.Second)
	for _, target := range []string{srv.URL, "http://localhost:" + u.Port() + "/"} {
		resp, err := c.Get(target)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded; want refused", target)
		}
		if !errors.Is(err, ErrBlocked) {
			t.Fatalf("GET %s: %v; want ErrBlocked", target, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the internal server was reached %d times", hits.Load())
	}
	// An operator-allowed host is reached.
	allowed := Policy{AllowHosts: []string{"127.0.0.1"}}
	resp, err := allowed.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed host: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("allowed host reached %d times, want 1", hits.Load())
	}
}

// TestClientFollowsNoRedirect: a redirect (even to an allowed host) is
// not followed, so the body and its signature never reach the target.
func TestClientFollowsNoRedirect(t *testing.T) {
	var targetHits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	defer target.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer origin.Close()
	p := Policy{AllowHosts: []string{"127.0.0.1"}}
	resp, err := p.Client(5*time.Second).Post(origin.URL, "application/json", strings.NewReader(`{"secret":1}`))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a redirect was followed")
	}
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("err = %v; want ErrRedirect", err)
	}
	if targetHits.Load() != 0 {
		t.Fatalf("the redirect target got %d requests", targetHits.Load())
	}
}

// TestClientIgnoresProxyEnvironment: a proxy from the environment would
// make the dial check see the proxy instead of the real peer.
func TestClientIgnoresProxyEnvironment(t *testing.T) {
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Add(1) }))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	var p Policy
	resp, err := p.Client(2 * time.Second).Get("http://10.255.255.1/")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrBlocked) || proxied.Load() != 0 {
		t.Fatalf("err = %v, proxy hits %d; want ErrBlocked and no proxy use", err, proxied.Load())
	}
}
