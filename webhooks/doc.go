// Package webhooks delivers Parley's events to URLs admins subscribe, per
// site and event type: a consumer of the pipeline (consumer group
// parley-webhooks, topics parley.chat.v1 and parley.moderation.v1) that
// turns each event into one delivery per matching endpoint, durably,
// before committing its offsets; and a dispatcher that POSTs each delivery
// with the event envelope as body, signed with the endpoint's secret
// (HMAC-SHA256 over timestamp and body, header Parley-Signature; see
// Sign and Verify), in order per conversation and endpoint, retrying with
// exponential backoff for a day before dead-lettering the delivery with
// its last error (shown to admins, who can send it again).
//
// Deliveries only go to addresses the operator's egress policy allows (no
// loopback, private, link-local or metadata addresses unless a host is
// allowed): the policy is checked when a URL is saved and again on every
// connection.
//
// State sits behind Store (store_sqlite.go: webhooks.db; store_postgres.go:
// schema "webhooks"); store_test.go runs one conformance suite on both.
// The package imports ingest, access and sqlstore only; cmd/parley wires
// it into the chat role (docs/integrations.md).
package webhooks
