package chatsvc

import (
	"context"
	"encoding/json"
)

// Broker carries what one chat node must tell the others: frames for
// sockets connected there (messages, conversation summaries, typing,
// receipts, queue positions, presence) and commands every node must carry
// out (close a visitor's sockets, reload the sites, adopt an
// agent's presence choice). A node never receives its own publications;
// the hub delivers to the sockets of its own node itself. Delivery is at
// most once: durable state lives in the ChatStore, and a client that
// reconnects resumes from it by sequence number.
//
// ingest.LiveBus (a Kafka topic every node reads) is the distributed
// implementation; localBroker serves a node that runs alone.
type Broker interface {
	// Publish sends payload to every other node; key keeps one subject's
	// payloads in order.
	Publish(ctx context.Context, key string, payload []byte) error
	// Subscribe calls handle with what other nodes publish until ctx ends;
	// done closes after the last call.
	Subscribe(ctx context.Context, handle func(payload []byte)) (done <-chan struct{}, err error)
}

// localBroker is the broker of a chat node that runs alone (SQLite, or a
// single node): there is nobody to tell, so it publishes nothing. It
// serves one node only.
type localBroker struct{}

func (localBroker) Publish(context.Context, string, []byte) error { return nil }

func (localBroker) Subscribe(ctx context.Context, _ func([]byte)) (<-chan struct{}, error) {
	done := make(chan struct{})
	go func() { <-ctx.Done(); close(done) }()
	return done, nil
}

// Kinds of what nodes tell each other.
const (
	busVisitor      = "visitor"       // Frame to a visitor's sockets
	busConversation = "conversation"  // Frame/Summary about a conversation to its agents
	busCloseVisitor = "close_visitor" // last Frame to a visitor's sockets, then close with Code
	busPresence     = "presence"      // an agent's presence across nodes changed (the leader says)
	busChoice       = "choice"        // an agent chose a status on one of their nodes
	busPositions    = "positions"     // queue positions across nodes (the leader says)
	busSites        = "sites"         // a site changed: reload
	busRoute        = "route"         // the queue or availability changed: the leader routes
	busVisitorHere  = "visitor_here"  // a visitor connected on some node: they have not left
)

// busMessage is one thing a node tells the others.
type busMessage struct {
	Kind         string          `json:"k"`
	Visitor      string          `json:"v,omitempty"`
	Conversation string          `json:"c,omitempty"`
	Meta         *convMeta       `json:"m,omitempty"`
	Frame        json.RawMessage `json:"f,omitempty"`
	Summary      json.RawMessage `json:"s,omitempty"`
	Agent        *AgentInfo      `json:"a,omitempty"`
	User         string          `json:"u,omitempty"`
	Status       string          `json:"st,omitempty"`
	Code         int             `json:"code,omitempty"`
	Reason       string          `json:"r,omitempty"`
	Positions    map[string]int  `json:"p,omitempty"`
	// PositionVisitors maps a queued conversation to its visitor, so the
	// node with the visitor's socket can tell them.
	PositionVisitors map[string]string `json:"pv,omitempty"`
}
