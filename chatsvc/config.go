package chatsvc

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/egress"
	"github.com/parleychat/parley/ingest"
)

// BodyLimit is the smallest Fiber BodyLimit that lets the largest allowed
// attachment (plus multipart overhead) through; cmd/parley sets
// fiber.Config{BodyLimit: chatsvc.BodyLimit} or larger.
const BodyLimit = 11 << 20

// Limits bounds what one client may send. Zero values take the defaults.
type Limits struct {
	// MaxMessageChars caps a message's text, in characters (runes). Default 4000.
	MaxMessageChars int
	// MaxFrameBytes is the soft frame limit: larger frames get a
	// frame_too_large error and the connection stays open. Default 64 KiB.
	MaxFrameBytes int
	// HardFrameBytes is the socket's read limit: larger frames close the
	// connection with 1009. Default 1 MiB.
	HardFrameBytes int64
	// MaxAttachmentBytes caps one uploaded file. Default 10 MiB.
	MaxAttachmentBytes int64
	// VisitorMsgRate and VisitorMsgBurst limit messages per visitor. Default 5/s, burst 20.
	VisitorMsgRate  float64
	VisitorMsgBurst float64
	// AgentMsgRate and AgentMsgBurst limit messages per agent. Default 50/s, burst 200.
	AgentMsgRate  float64
	AgentMsgBurst float64
	// IPConnectRate and IPConnectBurst limit sessions and socket upgrades per IP. Default 5/s, burst 60.
	IPConnectRate  float64
	IPConnectBurst float64
	// SendQueue is the outbound frame buffer per connection. Default 1024.
	SendQueue int
	// MaxSocketsPerIP caps concurrent visitor sockets from one network
	// address (offices share one). Default 50.
	MaxSocketsPerIP int
	// MaxSocketsPerVisitor caps one visitor's concurrent sockets (tabs). Default 8.
	MaxSocketsPerVisitor int
	// VisitorAttachmentBytes caps the bytes one visitor keeps uploaded. Default 50 MiB.
	VisitorAttachmentBytes int64
	// SiteAttachmentBytes caps the bytes a site's visitors keep uploaded. Default 5 GiB.
	SiteAttachmentBytes int64
	// UnboundUploadTTL is how long an upload may wait to be sent in a
	// message; older ones are refused and swept with their files. Default 1 h.
	UnboundUploadTTL time.Duration
}

// Config holds what chatsvc needs; cmd/parley fills it.
type Config struct {
	// Store keeps the chat rows (OpenSQLite or OpenPostgres).
	Store ChatStore
	// DataDir holds attachments under DataDir/attachments (unless Attachments is set).
	DataDir string
	// Attachments overrides the file store (an object store later).
	Attachments AttachmentStore
	// Producer publishes outbox rows and dead letters.
	Producer *ingest.Producer
	// Broker carries frames and commands between chat nodes sharing a
	// PostgreSQL store (ingest.LiveBus); nil runs this node alone.
	Broker Broker
	// Brokers is where the moderation-event consumer reads; empty disables it.
	Brokers []string
	// NodeID names this chat node; the moderation consumer group is parley-chat-<NodeID>.
	NodeID string
	Guard  *access.Guard
	// Moderator judges visitor messages before delivery; nil allows all.
	Moderator InlineModerator
	// Bans says whether a visitor is banned; nil means only bans learnt from Kafka.
	Bans BanChecker
	// Bot answers conversations of sites whose bot is enabled; nil uses the
	// rules bot, or the site's webhook when it sets one.
	Bot BotResponder
	// Egress decides which hosts bot webhooks may reach; nil refuses every
	// internal address (see package egress).
	Egress *egress.Policy
	// Secret signs visitor tokens (HMAC-SHA256); at least 32 bytes.
	Secret []byte
	// StaffOrigins are extra Origins allowed on /ws/agent besides the server's own.
	StaffOrigins []string
	// AgentLimit is the default number of concurrent conversations per agent. Default 5.
	AgentLimit int
	// AgentOfflineGrace is how long a disconnected agent stays online. Default 30 s.
	AgentOfflineGrace time.Duration
	// VisitorLeftGrace is how long after a visitor's last socket closes
	// visitor.left (reason timeout) is written. Default 2 min.
	VisitorLeftGrace time.Duration
	// ReopenWindow: a visitor message within this time after resolution
	// reopens the conversation; later ones start a new one. Default 24 h.
	ReopenWindow time.Duration
	// TokenTTL is the lifetime of a visitor token. Default 30 days.
	TokenTTL time.Duration
	// StaffRecheck is how often every open agent socket's session is
	// looked up again (a change on another node, an expiry). Default 15 s.
	StaffRecheck time.Duration
	// RelayPoll is the outbox relay's poll fallback. Default 1 s.
	RelayPoll time.Duration
	// MaxBatch caps the operations committed in one transaction. Default 2000.
	MaxBatch int
	// CommitLinger is how long the writer waits for more operations when a
	// batch under way holds only a few while traffic is flowing (another
	// batch began within ten lingers): at 1,000 msg/s nearly every message
	// otherwise pays for a commit of its own. Zero or negative: no
	// lingering (the default: it trades a millisecond of median latency
	// for the CPU, docs/benchmarks.md "Commit linger").
	CommitLinger time.Duration
	Limits       Limits
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

func (c *Config) defaults() error {
	if c.Store == nil {
		return errors.New("chatsvc: Config.Store is nil")
	}
	if c.Guard == nil {
		return errors.New("chatsvc: Config.Guard is nil")
	}
	if len(c.Secret) < 32 {
		return errors.New("chatsvc: Config.Secret must be at least 32 bytes")
	}
	if c.Attachments == nil && c.DataDir == "" {
		return errors.New("chatsvc: Config.DataDir is empty and no Attachments store is set")
	}
	if c.NodeID == "" {
		c.NodeID = "node1"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Egress == nil {
		c.Egress = &egress.Policy{}
	}
	if c.AgentLimit <= 0 {
		c.AgentLimit = 5
	}
	if c.AgentOfflineGrace <= 0 {
		c.AgentOfflineGrace = 30 * time.Second
	}
	if c.VisitorLeftGrace <= 0 {
		c.VisitorLeftGrace = 2 * time.Minute
	}
	if c.ReopenWindow <= 0 {
		c.ReopenWindow = 24 * time.Hour
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 30 * 24 * time.Hour
	}
	if c.StaffRecheck <= 0 {
		c.StaffRecheck = 15 * time.Second
	}
	if c.RelayPoll <= 0 {
		c.RelayPoll = time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 2000
	}
	l := &c.Limits
	if l.MaxMessageChars <= 0 {
		l.MaxMessageChars = 4000
	}
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = 64 << 10
	}
	if l.HardFrameBytes <= 0 {
		l.HardFrameBytes = 1 << 20
	}
	if l.MaxAttachmentBytes <= 0 {
		l.MaxAttachmentBytes = 10 << 20
	}
	if l.VisitorMsgRate <= 0 {
		l.VisitorMsgRate, l.VisitorMsgBurst = 5, 20
	}
	if l.VisitorMsgBurst <= 0 {
		l.VisitorMsgBurst = l.VisitorMsgRate * 4
	}
	if l.AgentMsgRate <= 0 {
		l.AgentMsgRate, l.AgentMsgBurst = 50, 200
	}
	if l.AgentMsgBurst <= 0 {
		l.AgentMsgBurst = l.AgentMsgRate * 4
	}
	if l.IPConnectRate <= 0 {
		l.IPConnectRate, l.IPConnectBurst = 5, 60
	}
	if l.IPConnectBurst <= 0 {
		l.IPConnectBurst = l.IPConnectRate * 10
	}
	if l.SendQueue <= 0 {
		l.SendQueue = 1024
	}
	if l.MaxSocketsPerIP <= 0 {
		l.MaxSocketsPerIP = 50
	}
	if l.MaxSocketsPerVisitor <= 0 {
		l.MaxSocketsPerVisitor = 8
	}
	if l.VisitorAttachmentBytes <= 0 {
		l.VisitorAttachmentBytes = 50 << 20
	}
	if l.SiteAttachmentBytes <= 0 {
		l.SiteAttachmentBytes = 5 << 30
	}
	if l.UnboundUploadTTL <= 0 {
		l.UnboundUploadTTL = time.Hour
	}
	return nil
}
