package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// EnvPostgres names the PostgreSQL server the tests use.
const EnvPostgres = "EVENTS_TEST_POSTGRES_DSN"

// Dialects lists the databases Each runs on.
var Dialects = []string{"sqlite", "postgres"}

// Each runs fn once per database as subtests named after the dialect.
func Each(t *testing.T, fn func(t *testing.T, db *bun.DB)) {
	t.Helper()

	for _, name := range Dialects {
		t.Run(name, func(t *testing.T) {
			fn(t, Open(t, name))
		})
	}
}

// Open returns a fresh, empty database of the named dialect, closed when
// the test ends.
func Open(t testing.TB, name string) *bun.DB {
	t.Helper()

	var db *bun.DB
	switch name {
	case "sqlite":
		db = SQLite(t, filepath.Join(t.TempDir(), "test.db"))
	case "postgres":
		db = Postgres(t)
	default:
		t.Fatalf("testdb: unknown dialect %q", name)
	}

	return db
}

// SQLiteDSN is the DSN the library recommends for a SQLite file: WAL,
// a busy timeout, foreign keys and IMMEDIATE transactions.
func SQLiteDSN(path string) string {
	return "file:" + path +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)" +
		"&_txlock=immediate"
}

// SQLite opens the SQLite file at path.
func SQLite(t testing.TB, path string) *bun.DB {
	t.Helper()

	sqldb, err := sql.Open(sqliteshim.ShimName, SQLiteDSN(path))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	db := bun.NewDB(sqldb, sqlitedialect.New())
	t.Cleanup(func() { _ = db.Close() })

	return db
}

// Postgres creates a schema of its own on the test server and returns a
// database whose search_path is that schema. It fails the test when no
// server is configured: a database the suite promises to test is never
// skipped in silence.
func Postgres(t testing.TB) *bun.DB {
	t.Helper()

	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Fatalf("%s is not set; run ./scripts/test.sh, which starts PostgreSQL", EnvPostgres)
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)

	admin := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), pgdialect.New())
	defer admin.Close()
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}

	connector := pgdriver.NewConnector(pgdriver.WithDSN(dsn),
		pgdriver.WithConnParams(map[string]any{"search_path": schema}))
	db := bun.NewDB(sql.OpenDB(connector), pgdialect.New())
	t.Cleanup(func() {
		_ = db.Close()
		drop := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), pgdialect.New())
		_, _ = drop.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = drop.Close()
	})

	return db
}
