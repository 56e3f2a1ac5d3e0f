package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/forwarder"
	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/outbox"
	"github.com/apsoai/domainevents/publishers"
)

// TestPostgres_redriveAndPrune fails the events one of two destinations
// refuses, redrives them from another connection, as the operators' command
// would, once that destination is fixed, and prunes old published events.
func TestPostgres_redriveAndPrune(t *testing.T) {
	ctx := context.Background()
	db := testdb.Postgres(t)
	pgSetup(t, db)

	good, picky := &pgRecorder{}, &pgRecorder{}
	picky.setRefuse(func(eventType string) bool { return eventType == "parcel.updated" })
	events := pgRegister(t, db, domainevents.Options{
		// Retries wait for the next poll; the redrive wakes the relay at
		// once through NOTIFY.
		PollInterval: time.Second,
		Relay: forwarder.Config{
			MaxAttempts: 2,
			Backoff:     func(int) time.Duration { return 10 * time.Millisecond },
			TripAfter:   100, // refusals of some events must not look like an outage
		},
	}, publishers.Destination{Name: "good", Publisher: good},
		publishers.Destination{Name: "picky", Publisher: picky})

	ids := pgCreateParcels(t, events, 10)
	for _, id := range ids[:5] {
		if err := pgBump(ctx, events, id); err != nil {
			t.Fatal(err)
		}
	}
	pgEventually(t, 30*time.Second, "10 published and 5 failed", func() bool {
		return pgCount(t, db, "status = 'published'") == 10 &&
			pgCount(t, db, "status = 'failed'") == 5
	})

	// The operator works through a connection of its own.
	ops, err := outbox.NewStore(testdb.PostgresReopen(t, db))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ops.Backlog(ctx)
	if err != nil || b.Failed != 5 || b.Pending != 0 {
		t.Fatalf("Backlog = %+v, %v; want 5 failed, 0 pending", b, err)
	}

	picky.setRefuse(nil)
	redriven := time.Now()
	n, err := ops.Redrive(ctx, outbox.RedriveFilter{Types: []string{"parcel.updated"}})
	if err != nil || n != 5 {
		t.Fatalf("Redrive = %d, %v; want 5", n, err)
	}
	pgEventually(t, 30*time.Second, "the redriven events delivered", func() bool {
		return pgCount(t, db, "status = 'published'") == 15
	})
	took := time.Since(redriven)

	// The destination that accepted them before the redrive did not get
	// them again; the one that refused them got each once.
	if g, p := len(good.deliveries()), len(picky.deliveries()); g != 15 || p != 15 {
		t.Fatalf("deliveries good=%d picky=%d, want 15 and 15", g, p)
	}
	if picky.distinct() != 15 {
		t.Fatalf("picky got %d distinct events, want 15", picky.distinct())
	}
	pgCheckOrder(t, good.deliveries(), true)

	// Age the created events past the retention, then prune in batches.
	_, err = db.ExecContext(ctx, `UPDATE events SET published_at = now() - interval '31 days'
WHERE type = 'parcel.created'`)
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := ops.Prune(ctx, 30*24*time.Hour, 3)
	if err != nil || pruned != 10 {
		t.Fatalf("Prune = %d, %v; want 10", pruned, err)
	}
	if left := pgCount(t, db, "true"); left != 5 || pgCount(t, db, "type = 'parcel.updated'") != 5 {
		t.Fatalf("%d rows left, want the 5 recent updated events", left)
	}
	if b, err := ops.Backlog(ctx); err != nil || b != (outbox.Backlog{}) {
		t.Fatalf("Backlog after all = %+v, %v; want empty", b, err)
	}

	t.Logf("redriven events delivered %s after the redrive (poll interval 1s)",
		took.Round(time.Millisecond))
}
