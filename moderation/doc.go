// Package moderation owns Parley's content moderation: the filter engine
// (normalisation that defeats evasions, word and phrase lists with
// wildcards and allow lists, RE2 rules, PII, links, spam and flood
// detection, intent grammars over lexicon classes, and an in-process
// logistic-regression model trained by moderation/cmd/train), per-site
// policies, the workers that judge every chat message from Kafka and
// publish moderation.verdict events through a transactional outbox, the
// moderators' review queue with claims, decisions, bans and an audit log,
// the ways moderators teach the engine (one-click allow and block lists
// from an item, decisions kept as labels the trainer reads, a per-site
// precision report), and the offline `parley moderate check` evaluator.
//
// The engine (Policy, NewEngine, Engine.Check) is a library with no I/O.
// Service wires it to a Store, Kafka (ingest) and HTTP (Fiber routes
// under /api/moderation/*, guarded by access). The package may import
// ingest, access and sqlstore; it never imports chatsvc, analytics or
// dashboard: cmd/parley adapts InlineChecker.CheckInline and
// InlineChecker.Banned to the chat service's interfaces.
//
// # State
//
// Store (store.go) keeps policies, the review queue and its conversation
// context, the audit log, bans, moderators' labels, the workers' flood and
// processed-event records and the outbox. store_sqlite.go keeps them in moderation.db
// (the embedded default of `parley serve`), store_postgres.go in the
// PostgreSQL schema "moderation", which several nodes share. No SQL lives
// anywhere else.
//
// Reads are Store methods. Every change runs in Store.Update, one
// transaction, through Tx, whose methods are domain operations (LockItem,
// DecideItem, PutBan, AddEvent, MarkProcessed, ObserveFloods...). The
// rules stay here, inside the transaction: the worker judges flood from
// the counts it reads and only then decides what to queue, and a decision
// checks the item's status and claim it has just locked. One method per
// use case (ApplyVerdicts, Decide...) would have moved those rules into
// both stores, or back out as callbacks. Both stores give a transaction
// the same guarantees:
//   - a worker batch writes conversation context, flood marks, review
//     items, verdict events and processed markers together, and handles
//     each event once: MarkProcessed is an event's first write, so a
//     second worker on the same event (a rebalance, another node) waits
//     for the first transaction and then skips the event;
//   - LockItem holds the item until the end (SELECT ... FOR UPDATE on
//     PostgreSQL, the write lock of SQLite's IMMEDIATE transactions), so
//     of two moderators deciding one item one wins and the other gets
//     ErrConflict;
//   - events go to the outbox in the transaction of the change they
//     report; the Store is the ingest.Outbox that ingest.Relay publishes
//     (on PostgreSQL one claim at a time across nodes, under an advisory
//     lock).
//
// A chat node needs none of the workers: InlineChecker gives it the
// inline check, with each site's policy read from a RuleStore and cached
// for PolicyTTL, and ban lookups. Lifting a ban publishes a
// moderation.decision "unban" so chat nodes drop the ban they cached.
package moderation
