package dbopen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uptrace/bun/dialect"

	"github.com/apsoai/domainevents/internal/dbopen"
	"github.com/apsoai/domainevents/internal/testdb"
)

func TestOpen_sqlite(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)

	cases := map[string]string{
		"empty means example.db": "",
		"relative path":          "data.db",
		"absolute path":          filepath.Join(dir, "abs.db"),
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			db, err := dbopen.Open(value)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			if db.Dialect().Name() != dialect.SQLite {
				t.Fatalf("dialect = %s, want sqlite", db.Dialect().Name())
			}

			var mode string
			var timeout int
			ctx := context.Background()
			if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" || timeout != 10000 {
				t.Fatalf("journal_mode = %s, busy_timeout = %d, want wal and 10000", mode, timeout)
			}

			file := value
			if file == "" {
				file = dbopen.DefaultSQLiteFile
			}
			if _, err := os.Stat(file); err != nil {
				t.Fatalf("database file: %v", err)
			}
		})
	}
}

func TestOpen_postgres(t *testing.T) {
	db, err := dbopen.Open("postgres://app:secret@127.0.0.1:1/app?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if db.Dialect().Name() != dialect.PG {
		t.Fatalf("dialect = %s, want pg", db.Dialect().Name())
	}

	dsn := os.Getenv(testdb.EnvPostgres)
	if dsn == "" {
		t.Fatalf("%s is not set; run ./scripts/test.sh, which starts PostgreSQL",
			testdb.EnvPostgres)
	}
	live, err := dbopen.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Close() })
	if err := live.PingContext(context.Background()); err != nil {
		t.Fatalf("ping %s: %v", dbopen.Redacted(dsn), err)
	}
}

func TestOpen_rejectsBadValues(t *testing.T) {
	cases := map[string]string{
		"unknown scheme":  "mysql://app:secret@db:3306/app",
		"bad sslmode":     "postgres://app:secret@db:5432/app?sslmode=sometimes",
		"not a valid URL": "postgres://app:se%zzcret@db:5432/app",
		"sqlite with ?":   "app.db?mode=ro",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			db, err := dbopen.Open(value)
			if err == nil {
				_ = db.Close()
				t.Fatalf("Open(%q) accepted it", value)
			}
			msg := err.Error()
			if !strings.Contains(msg, "DATABASE_URL") || strings.Contains(msg, "secret") ||
				strings.Contains(msg, "se%zzcret") {
				t.Fatalf("error %q must name DATABASE_URL and hide the password", msg)
			}
			if !strings.Contains(msg, "db:") && !strings.Contains(msg, "app.db") {
				t.Fatalf("error %q does not show the value", msg)
			}
		})
	}
}

func TestSQLitePath(t *testing.T) {
	cases := []struct {
		in   string
		path string
		ok   bool
	}{
		{"", dbopen.DefaultSQLiteFile, true},
		{"data/app.db", "data/app.db", true},
		{"postgres://db/app", "", false},
		{"mysql://db/app", "", false},
	}
	for _, tc := range cases {
		if path, ok := dbopen.SQLitePath(tc.in); path != tc.path || ok != tc.ok {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q, %v", tc.in, path, ok, tc.path, tc.ok)
		}
	}
}

func TestRedacted(t *testing.T) {
	cases := map[string]string{
		"postgres://app:secret@db:5432/app": "postgres://app:xxxxx@db:5432/app",
		"postgres://app:se%zz@db/app":       "postgres://xxxxx@db/app",
		"data/app.db":                       "data/app.db",
	}
	for in, want := range cases {
		if got := dbopen.Redacted(in); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpen_missingDirectoryNamesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "shop.db")

	_, err := dbopen.Open(path)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v, want one naming DATABASE_URL and the missing directory", err)
	}
}
