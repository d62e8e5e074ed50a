package notifications

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
)

// Service is the notifications component: consumer, scheduler, mail
// sender, inbound listener and HTTP routes.
type Service struct {
	cfg    Config
	store  Store
	chat   Chat
	log    *slog.Logger
	tokens tokens
	from   mail.Address
	kick   chan struct{}

	started chan struct{}
	once    sync.Once
	inbound *smtp.Server
	inLn    net.Listener

	mails *prometheus.CounterVec
}

// New checks cfg, loads the shared signing key and, when configured,
// opens the inbound SMTP listener.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	key, err := cfg.Store.SigningKey(ctx, cfg.Secret)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, store: cfg.Store, chat: cfg.Chat, log: cfg.Logger, tokens: tokens{key: key},
		kick: make(chan struct{}, 1), started: make(chan struct{}),
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_mail_total", Help: "Mail attempts by kind and outcome (sent, retry, failed).",
		}, []string{"kind", "outcome"}),
	}
	if cfg.SMTP.Enabled() {
		from, err := mail.ParseAddress(cfg.SMTP.From)
		if err != nil {
			return nil, fmt.Errorf("smtp-from: %w", err)
		}
		s.from = *from
	}
	if r := cfg.Registerer; r != nil {
		if err := r.Register(s.mails); err != nil {
			return nil, err
		}
	}
	if cfg.SMTP.Listen != "" {
		if err := s.listen(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// InboundAddr is the inbound listener's address, or "" when it is off.
func (s *Service) InboundAddr() string {
	if s.inLn == nil {
		return ""
	}
	return s.inLn.Addr().String()
}

// Run consumes events, schedules and sends mail, and serves the inbound
// listener until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	first := false
	s.once.Do(func() { first = true })
	if !first {
		return errors.New("notifications: Run called twice")
	}
	close(s.started)
	var wg sync.WaitGroup
	loop := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	if len(s.cfg.Brokers) > 0 {
		loop(s.consume)
	}
	loop(s.schedule)
	if s.cfg.SMTP.Enabled() {
		loop(s.sendLoop)
	}
	if s.inbound != nil {
		loop(func(ctx context.Context) {
			go func() {
				<-ctx.Done()
				s.inbound.Close()
			}()
			if err := s.inbound.Serve(s.inLn); err != nil && !errors.Is(err, smtp.ErrServerClosed) && ctx.Err() == nil {
				s.log.Error("inbound mail listener stopped", "err", err)
			}
		})
	}
	wg.Wait()
	return nil
}

// Ready reports whether the store answers and the loops run.
func (s *Service) Ready(ctx context.Context) error {
	select {
	case <-s.started:
	default:
		return errors.New("notifications not running yet")
	}
	return s.store.Ping(ctx)
}

// wake tells the sender that mail was queued.
func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// schedule turns due replies, jobs and digests into mail, every tick.
func (s *Service) schedule(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		queued := 0
		for _, step := range []struct {
			name string
			run  func(context.Context) (int, error)
		}{{"replies", s.dueReplies}, {"jobs", s.dueJobs}, {"digests", s.dueDigests}} {
			n, err := step.run(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("notifications step failed; retrying next tick", "step", step.name, "err", err)
			}
			queued += n
		}
		if queued > 0 {
			s.wake()
		}
	}
}
