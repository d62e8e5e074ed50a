// Package moderation owns Parley's content moderation: the filter engine
// (normalisation that defeats evasions, word and phrase lists with
// wildcards and allow lists, RE2 rules, PII, links, spam and flood
// detection), per-site policies, the workers that judge every chat message
// from Kafka and publish moderation.verdict events through a transactional
// outbox, the moderators' review queue with claims, decisions, bans and an
// audit log, and the offline `parley moderate check` evaluator.
//
// The engine (Policy, NewEngine, Engine.Check) is a library with no I/O.
// Service wires it to storage (moderation.db through sqlstore), Kafka
// (ingest) and HTTP (Fiber routes under /api/moderation/*, guarded by
// access). The package may import ingest, access and sqlstore; it never
// imports chatsvc, analytics or dashboard: cmd/parley adapts
// Service.CheckInline and Service.Banned to the chat service's interfaces.
package moderation
