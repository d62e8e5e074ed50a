// Package chatsvc owns live chat: sites and their widget settings, visitor
// sessions and tokens, conversations and messages (SQLite through a single
// group-commit writer), the visitor and agent WebSockets, assignment and the
// waiting queue, agent presence, the rules bot, attachments, canned replies,
// the embeddable widget (/widget.js), and the transactional outbox that
// relays every chat event to Kafka.
//
// It may import ingest, access and sqlstore only. Behaviour it needs from
// other domains is declared here as small interfaces (InlineModerator,
// BanChecker, BotResponder) that cmd/parley adapts.
//
// The wire protocol of the sockets is documented in docs/protocol.md, the
// REST API in docs/openapi.yaml and the widget in docs/widget.md.
package chatsvc
