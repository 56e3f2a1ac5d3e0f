package outbox_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/outbox"
)

func TestSchema_filesMatchCreateTable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		file := "schema/sqlite.sql"
		if db.Dialect().Name() == dialect.PG {
			file = "schema/postgres.sql"
		}
		ddl, err := outbox.Schema.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}

		if _, err := db.ExecContext(ctx, string(ddl)); err != nil {
			t.Fatalf("apply %s: %v", file, err)
		}
		store, err := outbox.NewStore(db)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Check(ctx); err != nil {
			t.Fatalf("after %s: %v", file, err)
		}

		// Applying it twice, or CreateTable after it, changes nothing.
		if _, err := db.ExecContext(ctx, string(ddl)); err != nil {
			t.Fatalf("apply %s again: %v", file, err)
		}
		if err := store.CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStore_checkNamesTheFix(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	store, err := outbox.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}

	err = store.Check(context.Background())
	if err == nil {
		t.Fatal("Check passed without a table")
	}
	if want := "domainevents.CreateTable"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}
