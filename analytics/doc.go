// Package analytics owns Parley's reporting pipeline: the loader that
// reads chat and moderation events from Kafka into an analytics store
// exactly once per event id, the per-conversation facts derived from those
// events, the metrics defined in docs/metrics.md, the replay that rebuilds
// everything from the retained topics, and the supervisor-only query API
// (/api/analytics/*, /ws/analytics).
//
// One narrow Store interface has two implementations: SQLite for embedded
// mode and ClickHouse (native protocol, servers from 18.16 on) for scale.
// Facts are built in Go by one shared builder, so both stores hold the same
// rows; a conformance suite proves that both answer every query alike.
//
// analytics may import ingest, access and sqlstore, never chatsvc,
// moderation or dashboard: sites' business hours and service targets come
// from site.updated events, staff accounts from the access store.
package analytics
