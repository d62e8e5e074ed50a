package chatsvc

import "github.com/parleychat/parley/sqlstore"

// migrations is chat.db's schema; append steps, never edit applied ones.
var migrations = []sqlstore.Migration{
	{Version: 1, SQL: `
CREATE TABLE sites (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	site_key TEXT NOT NULL UNIQUE,
	secret TEXT NOT NULL,
	allowed_origins TEXT NOT NULL DEFAULT '[]',
	identity_required INTEGER NOT NULL DEFAULT 0,
	settings TEXT NOT NULL DEFAULT '{}',
	created_at INTEGER NOT NULL
);
CREATE TABLE visitors (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	external_id TEXT NOT NULL DEFAULT '',
	verified INTEGER NOT NULL DEFAULT 0,
	name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	fields TEXT NOT NULL DEFAULT '{}',
	page_url TEXT NOT NULL DEFAULT '',
	page_title TEXT NOT NULL DEFAULT '',
	referrer TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	timezone TEXT NOT NULL DEFAULT '',
	locale TEXT NOT NULL DEFAULT '',
	ip TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX visitors_external ON visitors(site_id, external_id) WHERE external_id <> '';
CREATE TABLE conversations (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL,
	visitor_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	status TEXT NOT NULL,
	routing TEXT NOT NULL,
	assignee_id TEXT NOT NULL DEFAULT '',
	team_id TEXT NOT NULL DEFAULT '',
	queued_at INTEGER NOT NULL DEFAULT 0,
	last_seq INTEGER NOT NULL DEFAULT 0,
	last_role TEXT NOT NULL DEFAULT '',
	last_preview TEXT NOT NULL DEFAULT '',
	last_at INTEGER NOT NULL DEFAULT 0,
	visitor_read_seq INTEGER NOT NULL DEFAULT 0,
	agent_read_seq INTEGER NOT NULL DEFAULT 0,
	csat_rating INTEGER NOT NULL DEFAULT 0,
	csat_comment TEXT NOT NULL DEFAULT '',
	csat_at INTEGER NOT NULL DEFAULT 0,
	away_sent INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	resolved_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conversations_visitor ON conversations(visitor_id, created_at);
CREATE INDEX conversations_status ON conversations(status, updated_at);
CREATE INDEX conversations_assignee ON conversations(assignee_id, status);
CREATE TABLE messages (
	id TEXT PRIMARY KEY,
	conversation_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	client_id TEXT NOT NULL DEFAULT '',
	author_role TEXT NOT NULL,
	author_id TEXT NOT NULL,
	author_name TEXT NOT NULL DEFAULT '',
	kind TEXT NOT NULL,
	text TEXT NOT NULL,
	attachments TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	categories TEXT NOT NULL DEFAULT '',
	event_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client ON messages(author_id, client_id) WHERE client_id <> '';
CREATE TABLE attachments (
	id TEXT PRIMARY KEY,
	uploader_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL,
	content_type TEXT NOT NULL,
	size INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE canned_replies (
	id TEXT PRIMARY KEY,
	site_id TEXT NOT NULL DEFAULT '',
	shortcut TEXT NOT NULL,
	text TEXT NOT NULL,
	UNIQUE (site_id, shortcut)
);
CREATE TABLE bans (
	site_id TEXT NOT NULL,
	visitor_id TEXT NOT NULL,
	until_ms INTEGER NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (site_id, visitor_id)
);
CREATE TABLE outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id TEXT NOT NULL,
	topic TEXT NOT NULL,
	msg_key TEXT NOT NULL,
	value BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	sent_at INTEGER
);
CREATE INDEX outbox_pending ON outbox(id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox(sent_at) WHERE sent_at IS NOT NULL;
`},
	// Retention (retention.go) finds a site's old resolved conversations
	// and their attachments.
	{Version: 2, SQL: `
CREATE INDEX IF NOT EXISTS conversations_retention ON conversations(site_id, status, updated_at);
CREATE INDEX IF NOT EXISTS attachments_conversation ON attachments(conversation_id);
`},
}
