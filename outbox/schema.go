package outbox

import "embed"

// Schema holds the DDL of the events table as SQL files for migration
// tools: schema/postgres.sql and schema/sqlite.sql. They create what
// [Store.CreateTable] creates.
//
//go:embed schema/*.sql
var Schema embed.FS
