package domainevents_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/publishers"
)

type Product struct {
	bun.BaseModel `bun:"table:products"`

	ID   int64  `bun:"id,pk,autoincrement" json:"id"`
	Name string `bun:"name" json:"name"`
}

// printer is a destination that prints what it receives.
type printer struct{ got chan struct{} }

func (p printer) Publish(_ string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		var body struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		_ = json.Unmarshal(msg.Payload, &body)
		fmt.Println(body.Type, string(body.Payload))
		p.got <- struct{}{}
	}
	return nil
}

func (printer) Close() error { return nil }

func ExampleRegister() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "domainevents-example")
	defer os.RemoveAll(dir)

	sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+filepath.Join(dir, "shop.db")+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		log.Fatal(err)
	}
	db := bun.NewDB(sqldb, sqlitedialect.New())
	defer db.Close()

	if err := domainevents.CreateTable(ctx, db); err != nil {
		log.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*Product)(nil)).Exec(ctx); err != nil {
		log.Fatal(err)
	}

	dest := printer{got: make(chan struct{}, 1)}
	events, err := domainevents.Register(db, domainevents.Options{
		Entities:     []any{Product{}},
		Destinations: []publishers.Destination{{Name: "printer", Publisher: dest}},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer events.Close()

	err = events.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&Product{Name: "Lamp"}).Exec(ctx)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	select {
	case <-dest.got:
	case <-time.After(10 * time.Second):
		fmt.Println("not delivered")
	}

	// Output:
	// product.created {"id":1,"name":"Lamp"}
}
