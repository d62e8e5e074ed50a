package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/parleychat/parley/analytics"
	"github.com/parleychat/parley/chatsvc"
	"github.com/parleychat/parley/dashboard"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/moderation"
	"github.com/parleychat/parley/sqlstore"
)

// wireRoles builds the components of the roles n runs and adds them. The
// order matters only for adapters: moderation before chat (the inline
// check), chat before analytics (site business hours).
func wireRoles(ctx context.Context, n *node) error {
	if n.roles.Dashboard {
		// Sign-in and staff administration live with the web app; in the
		// scaled deployment the gateway routes /api/auth and /api/admin here.
		n.guard.Mount(n.app)
		n.guard.MountAdmin(n.app)
	}
	// The chat role needs the moderation service for its inline check and
	// bans even when the workers and review queue run in another process
	// (it reads the same policies from moderation.db).
	var mod *moderation.Service
	if n.roles.Moderation || n.roles.Chat {
		var err error
		if mod, err = openModeration(ctx, n); err != nil {
			return err
		}
		if n.roles.Moderation {
			n.add("moderation", mod)
		}
	}
	var chat *chatsvc.Service
	if n.roles.Chat {
		var err error
		if chat, err = wireChat(ctx, n, mod); err != nil {
			return err
		}
	}
	if n.roles.Analytics {
		if err := wireAnalytics(ctx, n, chat); err != nil {
			return err
		}
	}
	if n.roles.Dashboard {
		n.add("dashboard", dashboard.New(dashboard.Config{Guard: n.guard, Logger: n.log}))
	}
	return nil
}

func openModeration(ctx context.Context, n *node) (*moderation.Service, error) {
	db, err := n.db("moderation")
	if err != nil {
		return nil, err
	}
	svc, err := moderation.NewService(ctx, moderation.Config{
		DB: db, Producer: n.producer, Brokers: n.brokers, Guard: n.guard,
		Logger: n.log.With("component", "moderation"), Registerer: n.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start moderation: %w", err)
	}
	return svc, nil
}

// inlineModerator adapts moderation's verdicts to chatsvc's inline hook.
type inlineModerator struct{ mod *moderation.Service }

func (m inlineModerator) CheckInline(ctx context.Context, siteID, visitorID, text string) chatsvc.InlineVerdict {
	v := m.mod.CheckInline(ctx, siteID, visitorID, text)
	out := chatsvc.InlineVerdict{Action: v.Action, Categories: v.Categories, Spans: v.Spans, Severity: v.Severity, Redacted: v.Redacted}
	if v.Action == ingest.ActionBlock {
		out.Reason = "Your message was not delivered because it breaks this site's rules (" + strings.Join(v.Categories, ", ") + ")."
	}
	return out
}

func wireChat(ctx context.Context, n *node, mod *moderation.Service) (*chatsvc.Service, error) {
	db, err := n.db("chat")
	if err != nil {
		return nil, err
	}
	secret, err := n.secret()
	if err != nil {
		return nil, err
	}
	chat, err := chatsvc.New(ctx, chatsvc.Config{
		DB: db, DataDir: filepath.Join(n.cfg.DataDir, "chat"), Producer: n.producer, Brokers: n.brokers,
		NodeID: n.cfg.NodeID, Guard: n.guard, Secret: secret,
		Moderator: inlineModerator{mod}, Bans: mod,
		Logger: n.log.With("component", "chat"), Registerer: n.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start chat service: %w", err)
	}
	n.add("chat", chat)
	n.chat = chat
	return chat, nil
}

func wireAnalytics(ctx context.Context, n *node, chat *chatsvc.Service) error {
	store, err := openAnalyticsStore(ctx, n.cfg, n.db)
	if err != nil {
		return err
	}
	if closer, ok := store.(io.Closer); ok {
		n.closers = append(n.closers, closer.Close)
	}
	n.log.Info("analytics store", "backend", store.Backend())
	var schedules analytics.Schedules
	if chat != nil {
		schedules = siteSchedules{chat}
	}
	svc, err := analytics.New(ctx, analytics.Config{
		Store: store, Guard: n.guard, Brokers: n.brokers, DeadLetter: n.producer, Schedules: schedules,
		BatchSize: n.cfg.AnalyticsBatchSize, BatchWait: n.cfg.AnalyticsBatchWait,
		Logger: n.log.With("component", "analytics"), Registerer: n.reg,
	})
	if err != nil {
		return fmt.Errorf("start analytics: %w", err)
	}
	n.add("analytics", svc)
	return nil
}

// openAnalyticsStore opens ClickHouse when --clickhouse is set, otherwise
// the SQLite file that db opens.
func openAnalyticsStore(ctx context.Context, s settings, db func(name string) (*sql.DB, error)) (analytics.Store, error) {
	if s.ClickHouseAddr != "" {
		ch, err := analytics.OpenClickHouse(ctx, analytics.ClickHouseConfig{
			Addr: s.ClickHouseAddr, Database: s.ClickHouseDatabase,
			Username: s.ClickHouseUser, Password: s.ClickHousePassword,
		})
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

// siteSchedules gives analytics the business hours chat keeps per site.
type siteSchedules struct{ chat *chatsvc.Service }

func (s siteSchedules) Schedule(ctx context.Context, siteID string) (analytics.BusinessHours, bool, error) {
	tz, weekly, ok, err := s.chat.SiteSchedule(ctx, siteID)
	if err != nil || !ok {
		return analytics.BusinessHours{}, false, err
	}
	hours := analytics.BusinessHours{TZ: tz}
	for day, ranges := range weekly {
		for _, r := range ranges {
			span, err := analytics.ParseSpan(r.From + "-" + r.To)
			if err != nil {
				return analytics.BusinessHours{}, false, fmt.Errorf("site %s business hours: %w", siteID, err)
			}
			hours.Days[day] = append(hours.Days[day], span)
		}
	}
	return hours, true, nil
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
	if closer, ok := store.(io.Closer); ok {
		defer closer.Close()
	}
	fmt.Fprintf(stdout, "replaying %s and %s into %s\n", ingest.TopicChat, ingest.TopicModeration, store.Backend())
	return analytics.Replay(ctx, analytics.ReplayConfig{
		Store: store, Brokers: brokers, BatchSize: s.AnalyticsBatchSize, Progress: stdout,
		Logger: newLogger(stderr, s.LogLevel),
	})
}
