package chatsvc

import (
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/access"
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
}

// Config holds what chatsvc needs; cmd/parley fills it.
type Config struct {
	// DB is chat.db opened with sqlstore.Open.
	DB *sql.DB
	// DataDir holds attachments under DataDir/attachments (unless Attachments is set).
	DataDir string
	// Attachments overrides the file store (an object store later).
	Attachments AttachmentStore
	// Producer publishes outbox rows and dead letters.
	Producer *ingest.Producer
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
	// RelayPoll is the outbox relay's poll fallback. Default 1 s.
	RelayPoll time.Duration
	// MaxBatch caps the operations committed in one transaction. Default 2000.
	MaxBatch   int
	Limits     Limits
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (c *Config) defaults() error {
	if c.DB == nil {
		return errors.New("chatsvc: Config.DB is nil")
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
	return nil
}
