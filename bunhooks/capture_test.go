package bunhooks_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"go.opentelemetry.io/otel/trace"

	"github.com/apsoai/domainevents/bunhooks"
	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/outbox"
)

type Product struct {
	bun.BaseModel `bun:"table:products"`

	ID    int64  `bun:"id,pk,autoincrement" json:"id"`
	Name  string `bun:"name,notnull" json:"name"`
	Stock int    `bun:"stock,notnull" json:"stock"`
}

type Note struct {
	bun.BaseModel `bun:"table:notes"`

	ID        int64     `bun:"id,pk,autoincrement" json:"id"`
	Text      string    `bun:"text" json:"text"`
	DeletedAt time.Time `bun:"deleted_at,soft_delete,nullzero" json:"deleted_at"`
}

type Unlisted struct {
	bun.BaseModel `bun:"table:unlisted"`

	ID   int64  `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
}

type row struct {
	Type      string
	Payload   string
	EntityKey string
}

func setup(t *testing.T, db *bun.DB, cfg bunhooks.Config) *bunhooks.Capture {
	t.Helper()
	ctx := context.Background()

	store, err := outbox.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range []any{(*Product)(nil), (*Note)(nil), (*Unlisted)(nil)} {
		if _, err := db.NewCreateTable().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}

	if cfg.Entities == nil {
		cfg.Entities = []any{Product{}, (*Note)(nil)}
	}
	c, err := bunhooks.New(db, store, cfg)
	if err != nil {
		t.Fatal(err)
	}

	return c
}

func events(t *testing.T, db *bun.DB) []row {
	t.Helper()

	var out []row
	payload := "payload"
	if db.Dialect().Name() == dialect.PG {
		payload = "payload_raw"
	}
	rows, err := db.QueryContext(context.Background(), "SELECT type, "+payload+
		", COALESCE(entity_key, '') FROM events ORDER BY created_at, "+seq(db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.Type, &r.Payload, &r.EntityKey); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}

	return out
}

func seq(db *bun.DB) string {
	if db.Dialect().Name() == dialect.PG {
		return "seq"
	}
	return "rowid"
}

func types(rs []row) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Type)
	}
	return strings.Join(s, " ")
}

func TestCapture_insertUpdateDelete(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()

		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			p := &Product{Name: "lamp", Stock: 3}
			if _, err := tx.NewInsert().Model(p).Exec(ctx); err != nil {
				return err
			}
			p.Stock = 2
			if _, err := tx.NewUpdate().Model(p).WherePK().Exec(ctx); err != nil {
				return err
			}
			_, err := tx.NewDelete().Model(p).WherePK().Exec(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		got := events(t, db)
		if want := "product.created product.updated product.removed"; types(got) != want {
			t.Fatalf("types = %q, want %q", types(got), want)
		}
		var p Product
		if err := json.Unmarshal([]byte(got[1].Payload), &p); err != nil {
			t.Fatal(err)
		}
		if p.ID == 0 || p.Name != "lamp" || p.Stock != 2 {
			t.Errorf("updated payload = %+v", p)
		}
		if got[0].EntityKey != "Product:"+strconv.FormatInt(p.ID, 10) {
			t.Errorf("entity key = %q", got[0].EntityKey)
		}
	})
}

func TestCapture_sliceInsertGivesOneEventPerElement(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()

		ps := []Product{{Name: "a"}, {Name: "b"}, {Name: "c"}}
		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&ps).Exec(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		got := events(t, db)
		if len(got) != 3 {
			t.Fatalf("%d events, want 3", len(got))
		}
		keys := map[string]bool{}
		for _, r := range got {
			keys[r.EntityKey] = true
		}
		if len(keys) != 3 || keys["Product:0"] {
			t.Errorf("entity keys = %v, want three distinct generated ids", keys)
		}
	})
}

func TestCapture_bulkUpdateWithReturning(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()

		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			ps := []Product{{Name: "a", Stock: 1}, {Name: "b", Stock: 1}, {Name: "c", Stock: 9}}
			if _, err := tx.NewInsert().Model(&ps).Exec(ctx); err != nil {
				return err
			}
			var changed []Product
			_, err := tx.NewUpdate().Model(&changed).ModelTableExpr("products").
				Set("stock = stock + 10").Where("stock = ?", 1).Returning("*").Exec(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		got := events(t, db)
		want := "product.created product.created product.created product.updated product.updated"
		if types(got) != want {
			t.Fatalf("types = %q, want %q", types(got), want)
		}
		for _, r := range got[3:] {
			if !strings.Contains(r.Payload, `"stock":11`) {
				t.Errorf("payload %s lacks the stored stock", r.Payload)
			}
		}
	})
}

func TestCapture_bulkWithoutRowsIsRefused(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()

		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewDelete().Model((*Product)(nil)).Where("stock = 0").Exec(ctx)
			return err
		})
		if !errors.Is(err, bunhooks.ErrNeedsReturning) {
			t.Fatalf("err = %v, want ErrNeedsReturning", err)
		}
	})
}

func TestCapture_noMatchEmitsNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()

		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			p := &Product{ID: 404, Name: "ghost"}
			if _, err := tx.NewUpdate().Model(p).WherePK().Exec(ctx); err != nil {
				return err
			}
			var gone []Product
			_, err := tx.NewDelete().Model(&gone).ModelTableExpr("products").
				Where("id = 404").Returning("*").Exec(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := events(t, db); len(got) != 0 {
			t.Fatalf("events = %v, want none", got)
		}
	})
}

func TestCapture_softDeleteIsRemoved(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()

		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			n := &Note{Text: "hi"}
			if _, err := tx.NewInsert().Model(n).Exec(ctx); err != nil {
				return err
			}
			_, err := tx.NewDelete().Model(n).WherePK().Returning("*").Exec(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		got := events(t, db)
		if types(got) != "note.created note.removed" {
			t.Fatalf("types = %q", types(got))
		}
		if strings.Contains(got[1].Payload, `"deleted_at":"0001`) {
			t.Errorf("removed payload %s lacks deleted_at", got[1].Payload)
		}
	})
}

func TestCapture_rollbackLeavesNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()
		boom := errors.New("boom")

		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(&Product{Name: "x"}).Exec(ctx); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}

		n, err := db.NewSelect().Model((*Product)(nil)).Count(ctx)
		if err != nil || n != 0 {
			t.Fatalf("products = %d (%v), want 0", n, err)
		}
		if got := events(t, db); len(got) != 0 {
			t.Fatalf("events = %v, want none", got)
		}
	})
}

type failingMapper struct{ bunhooks.DefaultMapper }

func (failingMapper) Payload(any, bunhooks.Action) ([]byte, error) {
	return nil, errors.New("cannot serialize")
}

func TestCapture_payloadErrorRollsBack(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{Mapper: failingMapper{}})
		ctx := context.Background()

		err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&Product{Name: "x"}).Exec(ctx)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "cannot serialize") {
			t.Fatalf("err = %v, want the mapper's error", err)
		}
		n, _ := db.NewSelect().Model((*Product)(nil)).Count(ctx)
		if n != 0 {
			t.Fatalf("products = %d, want 0", n)
		}
	})
}

func TestCapture_writeOutsideUnitIsRefused(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		setup(t, db, bunhooks.Config{})
		ctx := context.Background()

		_, err := db.NewInsert().Model(&Product{Name: "bare"}).Exec(ctx)
		if !errors.Is(err, bunhooks.ErrNoTransaction) {
			t.Fatalf("bare db: err = %v, want ErrNoTransaction", err)
		}

		err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&Product{Name: "foreign tx"}).Exec(ctx)
			return err
		})
		if !errors.Is(err, bunhooks.ErrNoTransaction) {
			t.Fatalf("foreign tx: err = %v, want ErrNoTransaction", err)
		}

		n, _ := db.NewSelect().Model((*Product)(nil)).Count(ctx)
		if n != 0 {
			t.Fatalf("products = %d, want 0: a refused write ran", n)
		}

		if _, err := db.NewInsert().Model(&Unlisted{Name: "u"}).Exec(ctx); err != nil {
			t.Fatalf("unlisted model: %v", err)
		}
		if got := events(t, db); len(got) != 0 {
			t.Fatalf("events = %v, want none", got)
		}
	})
}

func TestCapture_onCommitCountsEvents(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		var woke int
		c := setup(t, db, bunhooks.Config{OnCommit: func(n int) { woke += n }})
		ctx := context.Background()

		_ = c.RunInTx(ctx, &sql.TxOptions{}, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&[]Product{{Name: "a"}, {Name: "b"}}).Exec(ctx)
			return err
		})
		_ = c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return nil })
		if woke != 2 {
			t.Fatalf("OnCommit saw %d events, want 2", woke)
		}
	})
}

func TestNew_invalidConfig(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	store, _ := outbox.NewStore(db)

	for name, cfg := range map[string]bunhooks.Config{
		"no entities": {},
		"not struct":  {Entities: []any{42}},
		"nil entry":   {Entities: []any{nil}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := bunhooks.New(db, store, cfg); err == nil ||
				!strings.Contains(err.Error(), "invalid config") {
				t.Fatalf("err = %v, want invalid config", err)
			}
		})
	}
}

func TestDefaultMapper_eventType(t *testing.T) {
	m := bunhooks.DefaultMapper{}
	for in, want := range map[string]string{
		"Product":   "product.created",
		"OrderItem": "orderItem.created",
	} {
		if got := m.EventType(in, bunhooks.Created); got != want {
			t.Errorf("EventType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCapture_metadataFromSpanAndContext(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	c := setup(t, db, bunhooks.Config{
		Metadata: func(context.Context) map[string]string { return map[string]string{"tenant": "t1"} },
	})

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(
		trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	ctx = bunhooks.WithMetadata(ctx, map[string]string{"source": "import-job"})

	err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&Product{Name: "x"}).Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	var raw string
	if err := db.NewSelect().Table("events").Column("metadata").Scan(ctx, &raw); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"source":      "import-job",
		"tenant":      "t1",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("metadata = %v, want %v", got, want)
	}
}

type Order struct {
	bun.BaseModel `bun:"table:orders"`

	ID    int64   `bun:"id,pk,autoincrement" json:"id"`
	Note  string  `bun:"note" json:"note"`
	Items []*Item `bun:"rel:has-many,join:id=order_id" json:"items"`
}

type Item struct {
	bun.BaseModel `bun:"table:items"`

	ID      int64  `bun:"id,pk,autoincrement" json:"id"`
	OrderID int64  `bun:"order_id" json:"order_id"`
	Name    string `bun:"name" json:"name"`
}

func TestCapture_payloadIsShallow(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	c := setup(t, db, bunhooks.Config{Entities: []any{(*Order)(nil)}})
	ctx := context.Background()
	if _, err := db.NewCreateTable().Model((*Order)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		o := &Order{Note: "first", Items: []*Item{{Name: "lamp"}}}
		_, err := tx.NewInsert().Model(o).Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if got := events(t, db)[0].Payload; got != `{"id":1,"note":"first"}` {
		t.Fatalf("payload = %s, want the order's own columns only", got)
	}
}

func TestCapture_refusesWritesItCannotCapture(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		c := setup(t, db, bunhooks.Config{})
		ctx := context.Background()
		seed := &Product{Name: "seed", Stock: 1}
		if err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(seed).Exec(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		before := len(events(t, db))

		cases := map[string]struct {
			write func(ctx context.Context, tx bun.Tx) error
			want  error
		}{
			"struct without its key updated by WHERE": {func(ctx context.Context, tx bun.Tx) error {
				_, err := tx.NewUpdate().Model(&Product{Stock: 7}).Column("stock").
					Where("stock > 0").Exec(ctx)
				return err
			}, bunhooks.ErrNeedsReturning},
			"insert on conflict without RETURNING *": {func(ctx context.Context, tx bun.Tx) error {
				ps := []Product{{ID: seed.ID, Name: "dup"}, {Name: "new"}}
				_, err := tx.NewInsert().Model(&ps).On("CONFLICT (id) DO NOTHING").Exec(ctx)
				return err
			}, bunhooks.ErrNeedsReturning},
			"table without its model": {func(ctx context.Context, tx bun.Tx) error {
				_, err := tx.NewUpdate().Table("products").Set("stock = 0").
					Where("id = ?", seed.ID).Exec(ctx)
				return err
			}, bunhooks.ErrNeedsModel},
			"slice delete matching part of it": {func(ctx context.Context, tx bun.Tx) error {
				ps := []Product{{ID: seed.ID, Name: "seed"}, {ID: 999, Name: "ghost"}}
				_, err := tx.NewDelete().Model(&ps).WherePK().Exec(ctx)
				return err
			}, bunhooks.ErrRowsMismatch},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				err := c.RunInTx(ctx, nil, tc.write)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}

		var stored Product
		if err := db.NewSelect().Model(&stored).Where("id = ?", seed.ID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if stored.Stock != 1 || len(events(t, db)) != before {
			t.Fatalf("a refused write changed something: %+v, %d events", stored, len(events(t, db)))
		}
	})
}

func TestCapture_writeThroughFinishedUnitIsRefused(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	c := setup(t, db, bunhooks.Config{})
	ctx := context.Background()

	var leaked bun.Tx
	err := c.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		leaked = tx
		_, err := tx.NewInsert().Model(&Product{Name: "a"}).Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	_, err = leaked.NewInsert().Model(&Product{Name: "late"}).Exec(ctx)
	if err == nil {
		t.Fatal("a write through a finished unit of work succeeded")
	}
}

func TestNew_refusesTheEventsTable(t *testing.T) {
	type EventRow struct {
		bun.BaseModel `bun:"table:events"`
		ID            string `bun:"id,pk"`
	}
	db := testdb.Open(t, "sqlite")
	store, _ := outbox.NewStore(db)

	_, err := bunhooks.New(db, store, bunhooks.Config{Entities: []any{EventRow{}}})
	if err == nil || !strings.Contains(err.Error(), "events table") {
		t.Fatalf("err = %v, want a refusal of the events table", err)
	}
}
