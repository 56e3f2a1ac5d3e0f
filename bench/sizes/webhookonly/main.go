// Command webhookonly is the smallest service that relays domain events: one
// opted-in model on a SQLite file, delivered to the webhook destination that
// the root package registers by itself. It imports no other destination, so
// it links neither the Kafka client nor the AWS SDK. Its size, next to the
// example shop's, shows what those clients cost a service that does not use
// them; an integration test checks that they stay out.
//
//	EVENTS_DESTINATION=webhook EVENTS_WEBHOOK_URL=http://127.0.0.1:9000/hooks \
//	EVENTS_WEBHOOK_SECRET=whsec_... go run ./bench/sizes/webhookonly -db notes.db
//
// It relays until it gets SIGINT or SIGTERM.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/apsoai/domainevents"
)

// Note is the one model whose changes emit events.
type Note struct {
	bun.BaseModel `bun:"table:notes"`

	ID   int64  `bun:"id,pk,autoincrement" json:"id"`
	Text string `bun:"text,notnull" json:"text"`
}

func main() {
	path := flag.String("db", "notes.db", "SQLite file")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*path, logger); err != nil {
		logger.Error("webhookonly stopped", "error", err)
		os.Exit(1)
	}
}

func run(path string, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	sqldb, err := sql.Open(sqliteshim.ShimName,
		"file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	db := bun.NewDB(sqldb, sqlitedialect.New())
	defer db.Close()

	if err := domainevents.CreateTable(ctx, db); err != nil {
		return err
	}
	if _, err := db.NewCreateTable().Model((*Note)(nil)).IfNotExists().Exec(ctx); err != nil {
		return fmt.Errorf("create table notes: %w", err)
	}

	events, err := domainevents.Register(db, domainevents.Options{
		Entities: []any{Note{}},
		Logger:   logger,
	})
	if err != nil {
		return err
	}

	<-ctx.Done()

	return events.Close()
}
