package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/analytics"
	"github.com/parleychat/parley/chatsvc"
	"github.com/parleychat/parley/dashboard"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/moderation"
	"github.com/parleychat/parley/sqlstore"
)

// wireRoles builds the components of the roles n runs and adds them. The
// order matters only for adapters: moderation before chat (the inline
// check). Analytics needs no other role: it learns sites' hours and
// targets from site.updated events.
func wireRoles(ctx context.Context, n *node) error {
	if n.roles.Dashboard {
		// Sign-in and staff administration live with the web app; in the
		// scaled deployment the gateway routes /api/auth and /api/admin here.
		n.guard.Mount(n.app)
		n.guard.MountAdmin(n.app)
		n.guard.MountTokens(n.app)
	}
	// The chat role needs moderation's inline check and bans, not its
	// workers: it reads policies and bans from moderation's store, which
	// the moderation role may be using in another process.
	var inline *moderation.InlineChecker
	if n.roles.Moderation || n.roles.Chat {
		store, err := openModerationStore(ctx, n)
		if err != nil {
			return err
		}
		if n.roles.Moderation {
			mod, err := openModeration(ctx, n, store)
			if err != nil {
				return err
			}
			n.add("moderation", mod)
			inline = mod.Inline()
		} else if inline, err = moderation.NewInlineChecker(store, moderation.InlineConfig{
			Logger: n.log.With("component", "moderation"), Registerer: n.reg,
		}); err != nil {
			return err
		}
	}
	var chat *chatsvc.Service
	if n.roles.Chat {
		var err error
		if chat, err = wireChat(ctx, n, inline); err != nil {
			return err
		}
		// Integrations ride with chat (integrations.go): they need its
		// sites and conversations, and scale with its nodes.
		if err := wireIntegrations(ctx, n, chat); err != nil {
			return err
		}
	}
	if n.roles.Analytics {
		if err := wireAnalytics(ctx, n); err != nil {
			return err
		}
	}
	if n.roles.Dashboard {
		n.add("dashboard", dashboard.New(dashboard.Config{Guard: n.guard, Logger: n.log}))
	}
	admitTokens(n.guard, chat)
	return nil
}

// openModerationStore opens moderation's store: PostgreSQL's moderation
// schema with --postgres, otherwise moderation.db under the data directory.
func openModerationStore(ctx context.Context, n *node) (moderation.Store, error) {
	if n.cfg.Postgres != "" {
		pool, err := n.pool(ctx, moderation.PostgresSchema)
		if err != nil {
			return nil, err
		}
		return moderation.OpenPostgres(ctx, pool)
	}
	db, err := n.db("moderation")
	if err != nil {
		return nil, err
	}
	return moderation.OpenSQLite(ctx, db)
}

func openModeration(ctx context.Context, n *node, store moderation.Store) (*moderation.Service, error) {
	svc, err := moderation.NewService(ctx, moderation.Config{
		Store: store, Producer: n.producer, Brokers: n.brokers, Guard: n.guard,
		Logger: n.log.With("component", "moderation"), Registerer: n.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start moderation: %w", err)
	}
	return svc, nil
}

// inlineModerator adapts moderation's verdicts to chatsvc's inline hook.
type inlineModerator struct{ mod *moderation.InlineChecker }

func (m inlineModerator) CheckInline(ctx context.Context, siteID, visitorID, text string) chatsvc.InlineVerdict {
	v := m.mod.CheckInline(ctx, siteID, visitorID, text)
	out := chatsvc.InlineVerdict{Action: v.Action, Categories: v.Categories, Spans: v.Spans, Severity: v.Severity, Redacted: v.Redacted}
	if v.Action == ingest.ActionBlock {
		out.Reason = "Your message was not delivered because it breaks this site's rules (" + strings.Join(v.Categories, ", ") + ")."
	}
	return out
}

// openChatStore opens chat's rows and attachment bytes: PostgreSQL's chat
// schema with --postgres (so chat nodes share no disk), otherwise chat.db
// and files under --data.
func openChatStore(ctx context.Context, n *node) (chatsvc.ChatStore, chatsvc.AttachmentStore, error) {
	if n.cfg.Postgres != "" {
		pool, err := n.pool(ctx, chatsvc.PostgresSchema)
		if err != nil {
			return nil, nil, err
		}
		store, err := chatsvc.OpenPostgres(ctx, pool)
		return store, chatsvc.PostgresFiles(pool), err
	}
	db, err := n.db("chat")
	if err != nil {
		return nil, nil, err
	}
	store, err := chatsvc.OpenSQLite(ctx, db, chatsvc.SQLiteOptions{Logger: n.log, Registerer: n.reg})
	return store, nil, err // nil: files under --data/chat/attachments
}

func wireChat(ctx context.Context, n *node, mod *moderation.InlineChecker) (*chatsvc.Service, error) {
	store, files, err := openChatStore(ctx, n)
	if err != nil {
		return nil, err
	}
	// The data directory's key is the candidate; the store keeps the first
	// one any node offered, so nodes sharing PostgreSQL sign alike.
	candidate, err := n.secret()
	if err != nil {
		return nil, err
	}
	secret, err := store.SigningKey(ctx, candidate)
	if err != nil {
		return nil, err
	}
	// Chat nodes sharing PostgreSQL tell each other over the live bus;
	// a node on SQLite runs alone.
	var broker chatsvc.Broker
	if n.bus != nil {
		broker = n.bus
	}
	chat, err := chatsvc.New(ctx, chatsvc.Config{
		Store: store, Attachments: files, Broker: broker, DataDir: filepath.Join(n.cfg.DataDir, "chat"), Producer: n.producer, Brokers: n.brokers,
		NodeID: n.cfg.NodeID, Guard: n.guard, Secret: secret, StaffOrigins: []string{n.url}, StaffRecheck: n.cfg.StaffRecheck,
		CommitLinger: n.cfg.CommitLinger, Moderator: inlineModerator{mod}, Bans: mod, Egress: n.cfg.egressPolicy(),
		Logger: n.log.With("component", "chat"), Registerer: n.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start chat service: %w", err)
	}
	n.add("chat", chat)
	n.sockets.add(chat)
	n.chat = chat
	return chat, nil
}

// wireAnalytics adds the analytics service. ClickHouse is opened in the
// background (the service retries it and reports itself not ready
// meanwhile), so that an analytics store outage never keeps the other
// roles from starting; SQLite opens at once.
func wireAnalytics(ctx context.Context, n *node) error {
	cfg := analytics.Config{
		Guard: n.guard, Brokers: n.brokers, DeadLetter: n.producer,
		BatchSize: n.cfg.AnalyticsBatchSize, BatchWait: n.cfg.AnalyticsBatchWait, StaffRecheck: n.cfg.StaffRecheck,
		Logger: n.log.With("component", "analytics"), Registerer: n.reg,
	}
	if n.cfg.ClickHouseAddr != "" {
		chCfg := clickHouseConfig(n.cfg)
		cfg.Open = func(ctx context.Context) (analytics.Store, error) { return analytics.OpenClickHouse(ctx, chCfg) }
		cfg.StoreName = "clickhouse at " + n.cfg.ClickHouseAddr
		n.log.Info("analytics store", "backend", "clickhouse", "addr", n.cfg.ClickHouseAddr)
	} else {
		db, err := n.db("analytics")
		if err != nil {
			return err
		}
		if cfg.Store, err = analytics.OpenSQLite(ctx, db); err != nil {
			return err
		}
		n.log.Info("analytics store", "backend", cfg.Store.Backend())
	}
	svc, err := analytics.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start analytics: %w", err)
	}
	n.closers = append(n.closers, svc.Close)
	n.add("analytics", svc)
	n.sockets.add(svc)
	return nil
}

func clickHouseConfig(s settings) analytics.ClickHouseConfig {
	return analytics.ClickHouseConfig{
		Addr: s.ClickHouseAddr, Database: s.ClickHouseDatabase,
		Username: s.ClickHouseUser, Password: s.ClickHousePassword,
	}
}

// openAnalyticsStore opens ClickHouse when --clickhouse is set, otherwise
// the SQLite file that db opens (for replay, which needs the store now).
func openAnalyticsStore(ctx context.Context, s settings, db func(name string) (*sql.DB, error)) (analytics.Store, error) {
	if s.ClickHouseAddr != "" {
		ch, err := analytics.OpenClickHouse(ctx, clickHouseConfig(s))
		if err != nil {
			return nil, fmt.Errorf("open ClickHouse at %s: %w", s.ClickHouseAddr, err)
		}
		return ch, nil
	}
	sqlite, err := db("analytics")
	if err != nil {
		return nil, err
	}
	return analytics.OpenSQLite(ctx, sqlite)
}

// runModerationCheck judges JSON lines from stdin, offline.
func runModerationCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("moderate check", "Reads JSON lines {\"id\": \"...\", \"text\": \"...\"} on standard input and writes one JSON line per input\n{\"id\", \"action\", \"categories\", \"spans\"} on standard output, judged with the default policy.\nA bad line gets {\"id\", \"error\"} and the run goes on.")
	fs.SetOutput(stderr)
	var policy string
	fs.StringVar(&policy, "policy", "", "policy file (JSON, as the review queue's policy editor saves it); default: the built-in policy")
	if err := fs.parse(args); err != nil {
		return err
	}
	return moderation.RunCheck(ctx, stdin, stdout, policy)
}

// runAnalyticsReplay rebuilds the analytics tables from the retained
// topics. Without --brokers it opens the embedded broker's log under
// --data, which needs `parley serve` stopped (the directory is locked).
func runAnalyticsReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s settings
	fs := newFlagSet("analytics replay", "Rebuilds the analytics tables from everything the topics retain, without double counting\n(loading is idempotent by event id). Prints progress per batch.")
	fs.SetOutput(stderr)
	s.common(fs, "127.0.0.1:8080")
	s.clickhouse(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := s.validate(false); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	brokers := s.brokerList()
	if len(brokers) == 0 {
		b, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: filepath.Join(s.DataDir, "kafka")})
		if errors.Is(err, ingest.ErrDataDirLocked) {
			return fmt.Errorf("the embedded broker's log in %s is in use: stop parley serve first, or pass --brokers", s.DataDir)
		}
		if err != nil {
			return err
		}
		defer b.Close()
		brokers = b.Addrs()
	}
	var opened []*sql.DB
	defer func() {
		for _, db := range opened {
			db.Close()
		}
	}()
	store, err := openAnalyticsStore(ctx, s, func(name string) (*sql.DB, error) {
		db, err := sqlstore.Open(filepath.Join(s.DataDir, name+".db"))
		if err == nil {
			opened = append(opened, db)
		}
		return db, err
	})
	if err != nil {
		return err
	}
	defer store.Close()
	// Events naming staff are checked against the staff accounts, as live.
	var staffStore access.StaffStore
	if s.Postgres != "" {
		pool, err := sqlstore.OpenPostgres(ctx, s.Postgres, sqlstore.PostgresOptions{Schema: access.PostgresSchema})
		if err != nil {
			return err
		}
		defer pool.Close()
		if staffStore, err = access.OpenPostgres(ctx, pool); err != nil {
			return err
		}
	} else {
		adb, err := sqlstore.Open(filepath.Join(s.DataDir, "access.db"))
		if err != nil {
			return err
		}
		opened = append(opened, adb)
		if staffStore, err = access.OpenSQLite(ctx, adb); err != nil {
			return err
		}
	}
	staff := access.NewDirectory(staffStore)
	fmt.Fprintf(stdout, "replaying %s and %s into %s\n", ingest.TopicChat, ingest.TopicModeration, store.Backend())
	return analytics.Replay(ctx, analytics.ReplayConfig{
		Store: store, Brokers: brokers, Staff: staff, BatchSize: s.AnalyticsBatchSize, Progress: stdout,
		Logger: newLogger(stderr, s.LogLevel),
	})
}
