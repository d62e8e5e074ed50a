// Package bench is Parley's load generator (`parley bench`). It drives a
// running Parley through its public interfaces only — the REST API and real
// visitor and agent WebSockets over loopback — and reports throughput,
// latency percentiles and the server's CPU and memory as read from its
// Prometheus /metrics endpoint.
//
// Scenarios: chat (conversations exchanging messages at a set rate),
// connections (many idle visitor sockets), pipeline (freshness from a send to
// the moderation verdict on Kafka and to the analytics query API) and ingest
// (the analytics loader's Kafka→ClickHouse rate against a raw clickhouse-go
// batch insert of the same rows).
//
// bench may import ingest (to read and write Kafka in the pipeline and
// ingest scenarios) and no other Parley package. Every loop it runs is
// bounded in count and in time, and it only dials loopback addresses.
package bench
