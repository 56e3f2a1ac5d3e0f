package testdb

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
)

// PostgresReopen returns a second, independent connection pool to the
// database and schema of db, which [Postgres] returned, closed when the test
// ends. It stands for another replica of a service sharing the database.
func PostgresReopen(t testing.TB, db *bun.DB) *bun.DB {
	t.Helper()

	var schema string
	err := db.QueryRowContext(context.Background(), "SELECT current_schema()").Scan(&schema)
	if err != nil {
		t.Fatalf("testdb: read the schema to reopen: %v", err)
	}

	connector := pgdriver.NewConnector(pgdriver.WithDSN(os.Getenv(EnvPostgres)),
		pgdriver.WithConnParams(map[string]any{"search_path": schema}))
	other := bun.NewDB(sql.OpenDB(connector), pgdialect.New())
	t.Cleanup(func() { _ = other.Close() })

	return other
}
