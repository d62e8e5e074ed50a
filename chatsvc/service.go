package chatsvc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// Service is the chat service of one node.
type Service struct {
	cfg      Config
	db       *sql.DB
	log      *slog.Logger
	metrics  *metrics
	sites    *siteCache
	writer   *writer
	hub      *hub
	upgrader fiber.Handler
	bot      *botRunner
	files    AttachmentStore
	stopped  chan struct{}
	started  chan struct{}

	visitorLimit *limiter
	agentLimit   *limiter
	ipLimit      *limiter

	relayKick chan struct{}

	metaMu sync.RWMutex
	meta   map[string]convMeta

	posMu    sync.RWMutex
	queuePos map[string]int

	namesMu sync.RWMutex
	names   map[string]string

	bansMu sync.RWMutex
	bans   map[string]ban // site|visitor → ban

	runOnce sync.Once
}

type ban struct {
	Until  time.Time
	Reason string
}

// New migrates chat.db, loads the working set and returns a service ready
// to Mount; Run starts its background loops.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, cfg.DB, "chat", migrations); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, db: cfg.DB, log: cfg.Logger.With("component", "chatsvc"), metrics: m,
		sites:        &siteCache{db: cfg.DB},
		stopped:      make(chan struct{}),
		started:      make(chan struct{}),
		visitorLimit: newLimiter(cfg.Limits.VisitorMsgRate, cfg.Limits.VisitorMsgBurst),
		agentLimit:   newLimiter(cfg.Limits.AgentMsgRate, cfg.Limits.AgentMsgBurst),
		ipLimit:      newLimiter(cfg.Limits.IPConnectRate, cfg.Limits.IPConnectBurst),
		relayKick:    make(chan struct{}, 1),
		meta:         map[string]convMeta{},
		queuePos:     map[string]int{},
		names:        map[string]string{},
		bans:         map[string]ban{},
	}
	s.files = cfg.Attachments
	if s.files == nil {
		fs, err := NewFileStore(filepath.Join(cfg.DataDir, "attachments"))
		if err != nil {
			return nil, err
		}
		s.files = fs
	}
	s.hub = newHub(s)
	s.upgrader = s.newUpgrader()
	s.writer = newWriter(s)
	s.bot = newBotRunner(s)
	if err := s.sites.load(ctx); err != nil {
		return nil, err
	}
	if err := s.loadBans(ctx); err != nil {
		return nil, err
	}
	// The writer inserts into three message indexes at scattered places
	// (one per conversation and author); SQLite's default 2 MiB page cache
	// makes most of those inserts read their page back from the file.
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = -%d`, writerCacheKiB)); err != nil {
		return nil, fmt.Errorf("size chat.db's page cache: %w", err)
	}
	if err := s.writer.prepare(ctx); err != nil {
		return nil, err
	}
	if err := s.writer.loadState(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs the writer, the fanout, the outbox relay, the moderation
// consumer, the bot and the timers until ctx ends; it returns nil then,
// after committing what was in hand.
func (s *Service) Run(ctx context.Context) error {
	first := false
	s.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("chatsvc: Run called twice")
	}
	close(s.started)
	var wg sync.WaitGroup
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	fanCtx, stopFan := context.WithCancel(context.WithoutCancel(ctx))
	wg.Add(1)
	go func() { defer wg.Done(); s.writer.fanout(fanCtx) }()
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); s.writer.run(writerCtx) }()

	var loops sync.WaitGroup
	start := func(name string, f func(context.Context)) {
		loops.Add(1)
		go func() {
			defer loops.Done()
			f(ctx)
			s.log.Debug("loop stopped", "loop", name)
		}()
	}
	start("relay", s.relay)
	start("checkpoint", s.checkpoints)
	start("timers", s.timers)
	start("retention", s.retention)
	start("bot", s.bot.run)
	if len(s.cfg.Brokers) > 0 && s.cfg.Producer != nil {
		start("moderation", s.consumeModeration)
	}
	<-ctx.Done()
	close(s.stopped)
	loops.Wait()
	stopWriter()
	<-writerDone
	stopFan()
	wg.Wait()
	// A last relay pass publishes what the final batches wrote, if Kafka is up.
	flushCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := s.relayOnce(flushCtx); err != nil {
		s.log.Info("outbox left for the next start", "err", err)
	}
	return nil
}

// Ready reports whether chat.db answers and the writer runs. Kafka is not
// required: chat keeps working and the outbox holds events meanwhile.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("chat.db: %w", err)
	}
	select {
	case <-s.started:
	default:
		return errors.New("chat service not running yet")
	}
	select {
	case <-s.stopped:
		return errors.New("chat service stopping")
	default:
	}
	return nil
}

// timers sweeps presence, visitors gone and rate-limit buckets.
func (s *Service) timers(ctx context.Context) {
	tick := time.NewTicker(min(time.Second, s.cfg.AgentOfflineGrace/4, s.cfg.VisitorLeftGrace/4))
	defer tick.Stop()
	purge := time.NewTicker(10 * time.Minute)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.hub.sweep(ctx, now)
		case now := <-purge.C:
			s.visitorLimit.sweep(now)
			s.agentLimit.sweep(now)
			s.ipLimit.sweep(now)
			if err := s.purgeOutbox(ctx, now.Add(-time.Hour)); err != nil {
				s.log.Warn("purge outbox", "err", err)
			}
		}
	}
}

func (s *Service) publishMeta(m map[string]convMeta) {
	if len(m) == 0 {
		return
	}
	s.metaMu.Lock()
	for id, v := range m {
		s.meta[id] = v
	}
	s.metaMu.Unlock()
}

// convMeta returns a conversation's owner and state for permission checks.
func (s *Service) convMeta(ctx context.Context, id string) (convMeta, error) {
	s.metaMu.RLock()
	m, ok := s.meta[id]
	s.metaMu.RUnlock()
	if ok {
		return m, nil
	}
	c, err := scanConv(s.db.QueryRowContext(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = ?`, id))
	if errors.Is(err, ErrNotFound) {
		return convMeta{}, errf(CodeNotFound, "conversation %s not found", id)
	}
	if err != nil {
		return convMeta{}, err
	}
	return c.meta(), nil
}

func (s *Service) setQueuePositions(pos map[string]int) {
	s.posMu.Lock()
	s.queuePos = pos
	s.posMu.Unlock()
}

func (s *Service) queuePosition(id string) int {
	s.posMu.RLock()
	defer s.posMu.RUnlock()
	return s.queuePos[id]
}

func (s *Service) rememberAgent(u access.User) {
	s.namesMu.Lock()
	s.names[u.ID] = u.Name
	s.namesMu.Unlock()
}

// agentName resolves a staff user's display name (cached).
func (s *Service) agentName(id string) string {
	s.namesMu.RLock()
	n, ok := s.names[id]
	s.namesMu.RUnlock()
	if ok {
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	u, err := s.cfg.Guard.Store().User(ctx, id)
	if err != nil {
		return ""
	}
	s.rememberAgent(u)
	return u.Name
}

func (s *Service) botAuthor(site *Site) Author {
	name := site.Settings.Bot.Name
	if name == "" {
		name = "Bot"
	}
	return Author{Role: string(ingest.RoleBot), ID: "bot:" + site.ID, Name: name}
}

func (s *Service) relayWake() {
	select {
	case s.relayKick <- struct{}{}:
	default:
	}
}
