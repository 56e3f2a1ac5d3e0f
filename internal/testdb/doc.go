// Package testdb opens real databases for tests: a fresh SQLite file, and a
// fresh schema on the PostgreSQL server named by EVENTS_TEST_POSTGRES_DSN.
package testdb
