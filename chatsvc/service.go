package chatsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// Service is the chat service of one node.
type Service struct {
	cfg     Config
	store   ChatStore
	log     *slog.Logger
	metrics *metrics
	sites   *siteCache
	writer  *writer
	hub     *hub
	// presenceScope limits whose presence each staff member sees.
	presenceScope *presenceScope
	upgrader      fiber.Handler
	bot           *botRunner
	// webhookClient calls bot webhooks through Config.Egress.
	webhookClient *http.Client
	files         AttachmentStore
	stopped       chan struct{}
	started       chan struct{}

	visitorLimit *limiter
	agentLimit   *limiter
	ipLimit      *limiter
	sockets      *socketCounts
	writes       writeHealth
	staff        staffCache
	// visitorRates and agentRates are the frame budgets of new connections.
	visitorRates, agentRates map[string]frameRate

	relay   *ingest.Relay
	cluster *cluster

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

// New loads the working set from the store and returns a service ready
// to Mount; Run starts its background loops.
// relayLinger is how long the chat relay gathers commits before a pass:
// at 1,000 msg/s it otherwise passed for every commit or two, and each
// pass's marking write waited for, and then held up, the writer's lock.
const relayLinger = 3 * time.Millisecond

func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, store: cfg.Store, log: cfg.Logger.With("component", "chatsvc"), metrics: m,
		sites:        &siteCache{store: cfg.Store},
		stopped:      make(chan struct{}),
		started:      make(chan struct{}),
		visitorLimit: newLimiter(cfg.Limits.VisitorMsgRate, cfg.Limits.VisitorMsgBurst),
		agentLimit:   newLimiter(cfg.Limits.AgentMsgRate, cfg.Limits.AgentMsgBurst),
		ipLimit:      newLimiter(cfg.Limits.IPConnectRate, cfg.Limits.IPConnectBurst),
		sockets:      newSocketCounts(),
		visitorRates: frameRates(visitorFrameRates, cfg.Limits.VisitorMsgRate, cfg.Limits.VisitorMsgBurst),
		agentRates:   frameRates(agentFrameRates, cfg.Limits.AgentMsgRate, cfg.Limits.AgentMsgBurst),
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
	if cfg.Producer != nil {
		if s.relay, err = ingest.NewRelay(ingest.RelayConfig{
			Store: "chat", Outbox: cfg.Store, Producer: cfg.Producer, Poll: cfg.RelayPoll, Linger: relayLinger,
			Registerer: cfg.Registerer, Logger: s.log,
		}); err != nil {
			return nil, err
		}
	}
	s.cluster = newCluster(s, cfg.Broker)
	s.hub = newHub(s)
	s.presenceScope = newPresenceScope(cfg.Guard.Directory())
	s.upgrader = s.newUpgrader()
	s.writer = newWriter(s)
	s.bot = newBotRunner(s)
	s.webhookClient = cfg.Egress.Client(webhookTimeout)
	if err := s.sites.load(ctx); err != nil {
		return nil, err
	}
	if err := s.ensureWebhookSecrets(ctx); err != nil {
		return nil, err
	}
	if err := s.publishSites(ctx); err != nil {
		return nil, err
	}
	if err := s.loadBans(ctx); err != nil {
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
	if s.relay != nil {
		start("relay", func(ctx context.Context) { s.relay.Run(ctx, 3*time.Second) })
	} else {
		s.log.Warn("no Kafka producer configured: events stay in the outbox")
	}
	start("store upkeep", s.store.Maintain)
	start("timers", s.timers)
	start("retention", s.retention)
	start("inactivity", s.inactivity)
	start("bot", s.bot.run)
	start("staff sessions", s.recheckStaffSessions)
	start("upload sweep", s.sweepUploads)
	start("cluster", s.cluster.run)
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
	if s.relay != nil {
		flushCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.relay.Flush(flushCtx); err != nil {
			s.log.Info("outbox left for the next start", "err", err)
		}
	}
	return nil
}

// Ready reports whether chat.db answers and the writer runs. Kafka is not
// required: chat keeps working and the outbox holds events meanwhile.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("chat store: %w", err)
	}
	select {
	case <-s.started:
	default:
		return errors.New("chat service not running yet")
	}
	if err := s.writes.check(time.Now()); err != nil {
		return err
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
	c, err := s.store.Conversation(ctx, id)
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
	u, err := s.cfg.Guard.Directory().User(ctx, id)
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
	if s.relay != nil {
		s.relay.Wake()
	}
}

// OutboxBacklog returns how many events wait for Kafka.
func (s *Service) OutboxBacklog(ctx context.Context) (int64, error) {
	n, _, err := s.store.OutboxBacklog(ctx)
	return n, err
}
