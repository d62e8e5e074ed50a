package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/pprof"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/chatsvc"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// roleSet says which parts of Parley a process runs.
type roleSet struct {
	Chat, Moderation, Analytics, Dashboard bool
}

func (r roleSet) names() []string {
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{{r.Chat, "chat"}, {r.Moderation, "moderation"}, {r.Analytics, "analytics"}, {r.Dashboard, "dashboard"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return out
}

// component is what each domain package's service offers the process.
type component interface {
	Mount(r fiber.Router)
	Run(ctx context.Context) error
	Ready(ctx context.Context) error
}

// node is one running Parley process: its HTTP server, its broker
// connection (or embedded broker), its databases and its components.
type node struct {
	cfg   settings
	roles roleSet
	log   *slog.Logger
	reg   *prometheus.Registry
	app   *fiber.App
	ln    net.Listener
	url   string

	broker   *ingest.EmbeddedBroker
	brokers  []string
	producer *ingest.Producer
	guard    *access.Guard
	// sockets closes staff sockets when a session ends or a user changes.
	sockets staffSockets
	// bus connects nodes sharing PostgreSQL (nil on a node alone).
	bus  *nodeBus
	chat *chatsvc.Service // set when the node runs the chat role
	// firstAdminFile holds the first admin's credentials until the admin deletes it.
	firstAdminFile string

	mu         sync.Mutex
	dbs        map[string]*sql.DB
	pools      map[string]*pgxpool.Pool
	components map[string]component
	checks     []readyCheck
	closers    []func() error // run in reverse order at shutdown
	// stopWait bounds how long shutdown waits for the components' loops
	// to flush and commit (loopStopWait unless a test sets it).
	stopWait time.Duration
}

// loopStopWait is how long shutdown waits for the components' loops after
// the HTTP server stopped. A loop still running then is left behind, named
// in the log: nothing is lost (every change was durable before its ack, and
// consumers commit only after their effect, so the next start redoes it),
// while a process that never exits blocks a restart and a deployment.
const loopStopWait = 20 * time.Second

// startNode opens everything the roles need and starts listening; run
// serves until ctx ends. On error everything opened so far is closed.
func startNode(ctx context.Context, cfg settings, roles roleSet, log *slog.Logger) (_ *node, err error) {
	n := &node{
		cfg: cfg, roles: roles, log: log,
		reg:        prometheus.NewRegistry(),
		dbs:        map[string]*sql.DB{},
		pools:      map[string]*pgxpool.Pool{},
		components: map[string]component{},
		stopWait:   loopStopWait,
	}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	if err := n.connectBroker(ctx); err != nil {
		return nil, err
	}
	if err := n.openBus(); err != nil {
		return nil, err
	}
	if err := n.openAccess(ctx); err != nil {
		return nil, err
	}
	n.app = fiber.New(fiber.Config{
		AppName:               "parley",
		DisableStartupMessage: true,
		BodyLimit:             12 << 20,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		// Release a connection's read buffer when it holds no pending
		// bytes: an upgraded WebSocket then reads straight from the socket
		// instead of keeping a 4 KiB HTTP buffer for its whole life.
		ReduceMemoryUsage: true,
		ErrorHandler:      n.errorHandler,
	})
	n.app.Use(recover.New())
	if cfg.Pprof {
		n.app.Use(pprof.New())
	}
	mountOps(n.app, n.reg, n.readyChecks)
	// Listen before wiring so components know the public URL (the demo
	// site allows it as an origin); requests wait until run serves them.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	n.ln = ln
	n.closers = append(n.closers, func() error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	n.url = cfg.publicURL(ln.Addr().String())
	// The sign-in form may be posted from the public URL's origin (behind
	// a proxy that rewrites Host) besides the request's own host.
	n.guard.SetAllowedOrigins([]string{n.url})
	if err := wireRoles(ctx, n); err != nil {
		return nil, err
	}
	return n, nil
}

// connectBroker starts the embedded broker when no brokers are given,
// creates the topics, and opens the shared producer.
func (n *node) connectBroker(ctx context.Context) error {
	n.brokers = n.cfg.brokerList()
	if len(n.brokers) == 0 {
		// The broker locks its directory, so a second `parley serve` on the
		// same data directory stops here instead of corrupting it.
		b, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: filepath.Join(n.cfg.DataDir, "kafka"), Port: n.cfg.KafkaPort, SyncWrites: n.cfg.Fsync})
		if errors.Is(err, ingest.ErrDataDirLocked) {
			return fmt.Errorf("another parley is already running on data directory %s: %w", n.cfg.DataDir, err)
		}
		if err != nil {
			return err
		}
		n.broker = b
		n.closers = append(n.closers, b.Close)
		n.brokers = b.Addrs()
		n.log.Info("embedded broker started", "addrs", n.brokers)
	}
	if err := ingest.EnsureTopics(ctx, n.brokers, ingest.DefaultTopics(n.cfg.topicPartitions(n.broker != nil), n.cfg.Retention)); err != nil {
		return err
	}
	n.producer = ingest.NewProducer(ingest.ProducerConfig{Brokers: n.brokers, Registerer: n.reg})
	n.closers = append(n.closers, n.producer.Close)
	n.checks = append(n.checks, readyCheck{"kafka", func(ctx context.Context) error { return ingest.Ping(ctx, n.brokers) }})
	return nil
}

// db opens (once) the SQLite file of one domain under the data directory.
func (n *node) db(name string) (*sql.DB, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if db, ok := n.dbs[name]; ok {
		return db, nil
	}
	var opts []sqlstore.OpenOption
	if n.cfg.Fsync {
		opts = append(opts, sqlstore.FullSync())
	}
	db, err := sqlstore.Open(filepath.Join(n.cfg.DataDir, name+".db"), opts...)
	if err != nil {
		return nil, err
	}
	n.dbs[name] = db
	n.closers = append(n.closers, db.Close)
	n.checks = append(n.checks, readyCheck{"sqlite:" + name, db.PingContext})
	return db, nil
}

// pool opens (once) a PostgreSQL pool on one domain's schema; /readyz
// reports PostgreSQL once, by the first pool.
func (n *node) pool(ctx context.Context, schema string) (*pgxpool.Pool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.pools[schema]; ok {
		return p, nil
	}
	p, err := sqlstore.OpenPostgres(ctx, n.cfg.Postgres, sqlstore.PostgresOptions{Schema: schema})
	if err != nil {
		return nil, err
	}
	if len(n.pools) == 0 {
		n.checks = append(n.checks, readyCheck{"postgres", p.Ping})
		n.log.Info("state in PostgreSQL", "url", sqlstore.RedactURL(n.cfg.Postgres))
	}
	n.pools[schema] = p
	n.closers = append(n.closers, func() error { p.Close(); return nil })
	return p, nil
}

// openAccess opens the staff store and, on a fresh data directory,
// creates the first admin with a random password written to a file only
// its owner can read (never to the logs).
func (n *node) openAccess(ctx context.Context) error {
	var staff access.StaffStore
	var tokens access.TokenStore
	if n.cfg.Postgres != "" {
		pool, err := n.pool(ctx, access.PostgresSchema)
		if err != nil {
			return err
		}
		if staff, err = access.OpenPostgres(ctx, pool); err != nil {
			return err
		}
		if tokens, err = access.OpenTokensPostgres(ctx, pool); err != nil {
			return err
		}
	} else {
		db, err := n.db("access")
		if err != nil {
			return err
		}
		if staff, err = access.OpenSQLite(ctx, db); err != nil {
			return err
		}
		if tokens, err = access.OpenTokensSQLite(ctx, db); err != nil {
			return err
		}
	}
	store := access.NewDirectory(staff)
	store.Listen(&n.sockets)
	n.guard = access.NewGuard(store, n.cfg.SecureCookies, n.log)
	n.guard.UseTokens(access.NewTokens(tokens))
	path := filepath.Join(n.cfg.DataDir, "initial-admin.txt")
	count, err := store.Count(ctx)
	if err != nil {
		return err
	}
	if count > 0 {
		if _, err := os.Stat(path); err == nil {
			n.firstAdminFile = path
		}
		return nil
	}
	password := os.Getenv("PARLEY_ADMIN_PASSWORD")
	if password == "" {
		b := make([]byte, 15)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("generate admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b)
	}
	if _, err := store.CreateUser(ctx, initialAdminEmail, "Administrator", password, []access.Role{access.Admin}, ""); err != nil {
		if errors.Is(err, access.ErrExists) {
			// Another node sharing PostgreSQL created it first; its data
			// directory holds the credentials file.
			n.log.Info("first admin created by another node", "email", initialAdminEmail)
			return nil
		}
		return fmt.Errorf("create first admin: %w", err)
	}
	body := fmt.Sprintf("email: %s\npassword: %s\n", initialAdminEmail, password)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	n.firstAdminFile = path
	n.log.Info("created first admin; credentials written to file", "email", initialAdminEmail, "file", path)
	return nil
}

const initialAdminEmail = "admin@parley.local"

// secret returns the node's signing key, created once per data directory
// and readable only by its owner.
func (n *node) secret() ([]byte, error) {
	path := filepath.Join(n.cfg.DataDir, "secret.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return b, nil
}

// add registers a component: its routes, its loop and its readiness.
func (n *node) add(name string, c component) {
	n.components[name] = c
	c.Mount(n.app)
	n.checks = append(n.checks, readyCheck{name, c.Ready})
}

func (n *node) readyChecks() []readyCheck {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]readyCheck(nil), n.checks...)
}

func (n *node) errorHandler(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	msg := "internal error"
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code, msg = fe.Code, fe.Message
	} else {
		n.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	return c.Status(code).JSON(fiber.Map{"error": msg})
}

// run serves HTTP and runs every component's loop until ctx is cancelled,
// then shuts down in order: stop accepting requests, let loops flush and
// commit, close the producer, the broker and the databases.
func (n *node) run(ctx context.Context) error {
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoops()
	errs := make(chan error, len(n.components)+1)
	stopped := make(map[string]chan struct{}, len(n.components))
	for name, c := range n.components {
		done := make(chan struct{})
		stopped[name] = done
		go func() {
			defer close(done)
			if err := c.Run(loopCtx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	go func() {
		if err := n.app.Listener(n.ln); err != nil {
			errs <- fmt.Errorf("http: %w", err)
		}
	}()
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-errs:
		n.log.Error("component failed; shutting down", "err", failure)
	}
	n.log.Info("shutting down")
	if err := n.app.ShutdownWithTimeout(10 * time.Second); err != nil {
		n.log.Warn("http shutdown", "err", err)
	}
	stopLoops()
	if stuck := waitStopped(stopped, n.stopWait); len(stuck) > 0 {
		n.log.Error("components still running at the end of shutdown; exiting without them", "components", stuck, "waited", n.stopWait)
		failure = errors.Join(failure, fmt.Errorf("components did not stop within %s: %s", n.stopWait, strings.Join(stuck, ", ")))
	}
	n.close()
	n.log.Info("stopped")
	return failure
}

// waitStopped waits up to d for every channel to close and returns, sorted,
// the names of those still open.
func waitStopped(stopped map[string]chan struct{}, d time.Duration) []string {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	late := false
	var stuck []string
	for _, name := range slices.Sorted(maps.Keys(stopped)) {
		if !late {
			select {
			case <-stopped[name]:
				continue
			case <-deadline.C:
				late = true
			}
		}
		select {
		case <-stopped[name]:
		default:
			stuck = append(stuck, name)
		}
	}
	return stuck
}

// close releases everything in reverse order of opening.
func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](); err != nil {
			n.log.Warn("close", "err", err)
		}
	}
	n.closers = nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	return slog.New(newRateLimitedHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}
