package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/ingest"
)

// nodeBus is a node's one connection to the live bus (ingest.LiveBus)
// when nodes share PostgreSQL. It carries two things: chat's messages
// between chat nodes (it is chat's Broker), and access's session ends and
// user changes, so a sign-out or a role change made through any node
// closes that user's staff sockets on every node at once, whatever roles
// the nodes run. One subscription reads the topic and hands each message
// to its owner.
type nodeBus struct {
	bus *ingest.LiveBus
	log *slog.Logger
	// access closes staff sockets on this node.
	access *staffSockets

	// subscribed is set once the subscription is positioned: before
	// that, this node would miss what other nodes tell it (readyz says so).
	subscribed atomic.Bool

	mu   sync.RWMutex
	chat func([]byte) // chat's handler while it is subscribed
}

// accessPrefix starts every access message; chat's messages start with
// their own kinds ({"k":"visitor"...}), so a prefix test sorts them
// without decoding chat's traffic twice.
var accessPrefix = []byte(`{"k":"access.`)

// accessMessage is an access change another node heard.
type accessMessage struct {
	Kind    string `json:"k"` // access.session or access.user
	Session string `json:"session,omitempty"`
	User    string `json:"user,omitempty"`
	Reason  string `json:"reason"`
}

const (
	accessSession = "access.session"
	accessUser    = "access.user"
)

// Publish is chat's Broker: a message to the other nodes.
func (b *nodeBus) Publish(ctx context.Context, key string, payload []byte) error {
	return b.bus.Publish(ctx, key, payload)
}

// Subscribe is chat's Broker: handle receives what other chat nodes
// publish until ctx ends. The node's own subscription is already
// positioned (run), so this only installs the handler.
func (b *nodeBus) Subscribe(ctx context.Context, handle func([]byte)) (<-chan struct{}, error) {
	b.mu.Lock()
	b.chat = handle
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		b.chat = nil // no call after done closes
		b.mu.Unlock()
		close(done)
	}()
	return done, nil
}

// publishAccess tells the other nodes about an access change.
func (b *nodeBus) publishAccess(m accessMessage) {
	payload, err := json.Marshal(m)
	if err != nil {
		b.log.Error("encode access message", "err", err)
		return
	}
	key := m.User
	if key == "" {
		key = m.Session
	}
	if err := b.bus.Publish(context.Background(), "access:"+key, payload); err != nil {
		// The services' periodic session checks still catch it.
		b.log.Warn("tell other nodes about an access change", "kind", m.Kind, "err", err)
	}
}

func (b *nodeBus) receive(payload []byte) {
	if bytes.HasPrefix(payload, accessPrefix) {
		var m accessMessage
		if err := json.Unmarshal(payload, &m); err != nil {
			b.log.Warn("undecodable access message on the live bus", "err", err)
			return
		}
		switch m.Kind {
		case accessSession:
			b.access.closeSessionHere(m.Session, m.Reason)
		case accessUser:
			b.access.closeUserHere(m.User, m.Reason)
		}
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.chat != nil {
		b.chat(payload)
	}
}

// run reads the bus until ctx ends, retrying the subscription while Kafka
// is unreachable; it returns after the last message was handled.
func (b *nodeBus) run(ctx context.Context) {
	for {
		done, err := b.bus.Subscribe(ctx, b.receive)
		if err == nil {
			b.subscribed.Store(true)
			<-done
			return
		}
		b.log.Warn("subscribe to the live bus; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// openBus connects the node to the live bus when it shares PostgreSQL
// with other nodes (a node on SQLite runs alone). The subscription stops,
// and pending publishes flush, when the node closes.
func (n *node) openBus() error {
	if n.cfg.Postgres == "" {
		return nil
	}
	bus, err := ingest.NewLiveBus(ingest.LiveBusConfig{Brokers: n.brokers, Node: n.cfg.NodeID, Registerer: n.reg, Logger: n.log})
	if err != nil {
		return err
	}
	n.bus = &nodeBus{bus: bus, log: n.log.With("component", "live"), access: &n.sockets}
	n.sockets.bus = n.bus
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); n.bus.run(ctx) }()
	n.closers = append(n.closers, bus.Close, func() error { cancel(); <-stopped; return nil })
	n.checks = append(n.checks, readyCheck{"live bus", func(context.Context) error {
		if !n.bus.subscribed.Load() {
			return errors.New("not yet reading what other nodes tell this one")
		}
		return nil
	}})
	return nil
}
