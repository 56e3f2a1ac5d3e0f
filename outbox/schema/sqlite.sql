-- The events table on SQLite, as domainevents.CreateTable makes it on an
-- empty database: the contract's seven columns, then this library's columns,
-- all nullable (see the README). Timestamps are RFC 3339 text in UTC with six
-- fractional digits, so that they sort in time order. To upgrade a table
-- another Apso implementation created, call domainevents.CreateTable, which
-- adds the missing columns (SQLite has no ADD COLUMN IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS events (
	id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	payload TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'pending',
	attempts INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	published_at TEXT,
	entity_key TEXT,
	metadata TEXT,
	topic TEXT,
	available_at TEXT,
	delivered_to TEXT,
	last_error TEXT
);

CREATE INDEX IF NOT EXISTS events_status_created_at_idx ON events (status, created_at);
CREATE INDEX IF NOT EXISTS events_pending_entity_idx ON events (entity_key, created_at)
	WHERE status = 'pending';
