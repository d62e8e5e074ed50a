// Package notifications keeps people informed when they are not looking:
// email continuity for visitors (an agent's reply a visitor has not read
// within a short delay goes out by email with a link back into the
// conversation; the visitor can answer by replying to the mail, received
// by an SMTP listener; transcripts on resolve per site and on request),
// digests for agents of conversations waiting while they were away, and
// every staff member's notification preferences (desktop notifications,
// sound, digest, queue alerts) that the staff app reads.
//
// It is a consumer of the pipeline (consumer group parley-notifications):
// "not connected" means "did not read": a reply is mailed when no
// message.read of the visitor reached its seq within the delay, so it
// needs no link to chat's sockets. Mail is rendered once, stored in an
// outbox with the state change that caused it, and sent by a loop that
// retries a failing SMTP server with backoff, so a message is never lost
// to an outage. Every mail carries an unsubscribe link and the
// List-Unsubscribe headers (one-click, RFC 8058); visitor-facing texts come
// from chat's message catalogs in the visitor's language.
//
// State sits behind Store (store_sqlite.go: notifications.db;
// store_postgres.go: schema "notifications"); store_test.go runs one
// conformance suite on both. It imports ingest, access and sqlstore only;
// what it needs of chat (contacts, transcripts, resume links, posting an
// emailed answer, a site's look and texts) is the Chat interface, which
// cmd/parley adapts.
package notifications
