package domainevents_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/internal/testdb"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

func TestRegister_startupErrorsNameTheFix(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"unknown destination", map[string]string{"EVENTS_DESTINATION": "carrier-pigeon"},
			[]string{"EVENTS_DESTINATION", "carrier-pigeon", "eventbridge, kafka, sqs, webhook"}},
		{"missing url", map[string]string{"EVENTS_DESTINATION": "webhook",
			"EVENTS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			[]string{"EVENTS_WEBHOOK_URL"}},
		{"secret that does not decode", map[string]string{"EVENTS_DESTINATION": "webhook",
			"EVENTS_WEBHOOK_URL": "http://127.0.0.1:9/hooks", "EVENTS_WEBHOOK_SECRET": "whsec_%%%"},
			[]string{"EVENTS_WEBHOOK_SECRET"}},
		{"destination not linked", map[string]string{"EVENTS_DESTINATION": "kafka"},
			[]string{"github.com/apsoai/domainevents/publishers/kafka"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := testdb.Open(t, "sqlite")
			if err := domainevents.CreateTable(context.Background(), db); err != nil {
				t.Fatal(err)
			}

			_, err := domainevents.Register(db, domainevents.Options{
				Entities: []any{Product{}},
				Getenv:   env(tc.env),
			})
			if err == nil {
				t.Fatal("Register succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestRegister_missingTable(t *testing.T) {
	db := testdb.Open(t, "sqlite")

	_, err := domainevents.Register(db, domainevents.Options{
		Entities: []any{Product{}},
		Getenv:   env(nil),
	})
	if !errors.Is(err, domainevents.ErrNoTable) ||
		!strings.Contains(err.Error(), "domainevents.CreateTable") {
		t.Fatalf("err = %v, want ErrNoTable naming CreateTable", err)
	}
}

func TestRegister_withoutDestinationCapturesOnly(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	ctx := context.Background()
	if err := domainevents.CreateTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*Product)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	events, err := domainevents.Register(db, domainevents.Options{
		Entities: []any{(*Product)(nil)},
		Getenv:   env(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if events.Relay() != nil {
		t.Fatal("a relay runs without a destination")
	}

	err = events.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&Product{Name: "x"}).Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	backlog, err := events.Store().Backlog(ctx)
	if err != nil || backlog.Pending != 1 {
		t.Fatalf("pending = %d (%v), want 1 captured event", backlog.Pending, err)
	}
}
