package main

// A Parley deployment as separate processes of the built binary: one
// `parley broker`, role processes (several chat nodes too) on one
// PostgreSQL database of the test's own, and a gateway that routes by path
// as compose.yaml's nginx does, so a browser sees one origin.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// parleyBinary builds cmd/parley once per test run.
func parleyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "parley")
		args := []string{"build", "-o", builtBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		if !raceEnabled {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// proc is one running parley process.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port it serves HTTP on ("" for the broker)
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

// url is the process's base URL.
func (p *proc) url() string { return "http://" + p.addr }

// kill stops the process with SIGKILL, as a crash would.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not die", p.name)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s exited with %v on SIGTERM\n%s", p.name, p.err, p.out.String())
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		t.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cluster is the set of processes of one test.
type cluster struct {
	t        *testing.T
	bin      string
	dir      string
	postgres string
	brokers  string
	broker   *proc
	gateway  string

	mu    sync.Mutex
	procs map[string]*proc
	// routes maps a gateway path prefix to the processes serving it
	// (several chat nodes are taken in turn, like a plain load balancer).
	routes map[string][]*proc
	next   atomic.Uint64
}

var brokerAddrLine = regexp.MustCompile(`running on (127\.0\.0\.1:\d+)`)

// startCluster starts a broker and a gateway; roles are added with start.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	t.Setenv("PARLEY_ADMIN_PASSWORD", e2eAdminPassword)
	c := &cluster{t: t, bin: parleyBinary(t), dir: t.TempDir(), postgres: sqltest.PostgresURL(t),
		procs: map[string]*proc{}, routes: map[string][]*proc{}}
	c.broker = c.spawn("broker", "broker", "--data", filepath.Join(c.dir, "broker"), "--port", "0", "--partitions", "4")
	waitUntil(t, 30*time.Second, "the broker to listen", func() bool {
		if c.broker.exited() {
			t.Fatalf("broker exited:\n%s", c.broker.out.String())
		}
		m := brokerAddrLine.FindStringSubmatch(c.broker.out.String())
		if m != nil {
			c.brokers = m[1]
		}
		return m != nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.gateway = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(c.route)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return c
}

// routeTable is compose.yaml's gateway: path prefix → role.
var routeTable = []struct{ prefix, role string }{
	{"/ws/analytics", "analytics"},
	{"/ws/", "chat"},
	{"/api/chat/", "chat"},
	{"/widget", "chat"},
	{"/files/", "chat"},
	{"/api/moderation/", "moderation"},
	{"/api/analytics/", "analytics"},
	{"/", "dashboard"},
}

func (c *cluster) route(w http.ResponseWriter, r *http.Request) { c.routeWith(w, r, nil) }

// pinnedGateway starts another gateway that sends role's requests to one
// process only (a browser whose traffic must reach one chat node).
func (c *cluster) pinnedGateway(role string, p *proc) string {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.routeWith(w, r, map[string]*proc{role: p})
	})}
	go srv.Serve(ln)
	c.t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func (c *cluster) routeWith(w http.ResponseWriter, r *http.Request, pinned map[string]*proc) {
	for _, rt := range routeTable {
		if !strings.HasPrefix(r.URL.Path, rt.prefix) {
			continue
		}
		c.mu.Lock()
		var live []*proc
		for _, p := range c.routes[rt.role] {
			if !p.exited() && (pinned[rt.role] == nil || pinned[rt.role] == p) {
				live = append(live, p)
			}
		}
		c.mu.Unlock()
		if len(live) == 0 {
			http.Error(w, "no "+rt.role+" node", http.StatusBadGateway)
			return
		}
		p := live[c.next.Add(1)%uint64(len(live))]
		target, _ := url.Parse(p.url())
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
		proxy.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

func (c *cluster) spawn(name string, args ...string) *proc {
	c.t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "PARLEY_LOG_LEVEL=warn")
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		if c.t.Failed() {
			c.t.Logf("--- output of %s ---\n%s", name, tail(out.String(), 4000))
		}
	})
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs `parley <command>` as node name, routed by the gateway for
// role, and waits until its /readyz answers 200.
func (c *cluster) start(name, command, role string, extra ...string) *proc {
	c.t.Helper()
	addr := freeAddr(c.t)
	args := append([]string{command, "--addr", addr, "--data", filepath.Join(c.dir, name), "--node-id", name,
		"--brokers", c.brokers, "--postgres", c.postgres, "--public-url", c.gateway, "--partitions", "4"}, extra...)
	p := c.spawn(name, args...)
	p.addr = addr
	c.waitReady(p)
	c.mu.Lock()
	c.routes[role] = append(c.routes[role], p)
	c.mu.Unlock()
	return p
}

func (c *cluster) waitReady(p *proc) {
	c.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	waitUntil(c.t, 60*time.Second, p.name+" to be ready", func() bool {
		if p.exited() {
			c.t.Fatalf("%s exited:\n%s", p.name, p.out.String())
		}
		res, err := client.Get(p.url() + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// asE2E signs the first admin in through the gateway and creates a site,
// so the tests written against `parley serve` run against the cluster.
func (c *cluster) asE2E() *parleyE2E {
	c.t.Helper()
	p := &parleyE2E{t: c.t, base: c.gateway}
	p.admin = signIn(c.t, c.gateway, initialAdminEmail, e2eAdminPassword)
	p.admin.call("POST", "/api/chat/sites", map[string]any{"name": "Cluster shop", "allowed_origins": []string{c.gateway}}, http.StatusCreated, &p.site)
	return p
}

// withContext is a convenience for tests that need a deadline.
func withContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
