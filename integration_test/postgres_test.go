package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/publishers"
)

// Parcel is the opted-in model of the PostgreSQL tests. Every update bumps
// Version, so the versions one parcel's events carry must reach a
// destination in increasing order.
type Parcel struct {
	bun.BaseModel `bun:"table:parcels"`

	ID      int64 `bun:"id,pk,autoincrement" json:"id"`
	Version int64 `bun:"version,notnull" json:"version"`
}

// pgDelivery is one event a pgRecorder accepted.
type pgDelivery struct {
	ID      string
	Type    string
	Key     string
	Version int64
	At      time.Time
}

// pgRecorder is a destination that records every event it accepts, and
// refuses the events for which refuse returns true.
type pgRecorder struct {
	mu     sync.Mutex
	got    []pgDelivery
	refuse func(eventType string) bool
}

func (r *pgRecorder) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		var body struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Payload struct {
				Version int64 `json:"version"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(m.Payload, &body); err != nil {
			return fmt.Errorf("recorder: body %s: %w", m.Payload, err)
		}

		r.mu.Lock()
		refused := r.refuse != nil && r.refuse(body.Type)
		if !refused {
			r.got = append(r.got, pgDelivery{
				ID:      body.ID,
				Type:    body.Type,
				Key:     m.Metadata.Get(publishers.MetadataEntityKey),
				Version: body.Payload.Version,
				At:      time.Now(),
			})
		}
		r.mu.Unlock()
		if refused {
			return fmt.Errorf("recorder refuses %s", body.Type)
		}
	}

	return nil
}

func (r *pgRecorder) Close() error { return nil }

func (r *pgRecorder) setRefuse(f func(eventType string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.refuse = f
}

func (r *pgRecorder) deliveries() []pgDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()

	return slices.Clone(r.got)
}

// distinct counts the different events delivered.
func (r *pgRecorder) distinct() int {
	seen := map[string]bool{}
	for _, d := range r.deliveries() {
		seen[d.ID] = true
	}

	return len(seen)
}

// pgSetup creates the events and parcels tables on db.
func pgSetup(t *testing.T, db *bun.DB) {
	t.Helper()
	ctx := context.Background()

	if err := domainevents.CreateTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*Parcel)(nil)).IfNotExists().Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// pgRegister wires capture and a relay to dests on db, as one replica of a
// service would, and closes them when the test ends.
func pgRegister(
	t *testing.T, db *bun.DB, relay domainevents.Options, dests ...publishers.Destination,
) *domainevents.Events {
	t.Helper()

	opts := relay
	opts.Entities = []any{(*Parcel)(nil)}
	opts.Destinations = dests
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Getenv = func(string) (string, bool) { return "", false }

	events, err := domainevents.Register(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = events.Close() })

	return events
}

func pgEventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pgCount(t *testing.T, db *bun.DB, where string) int {
	t.Helper()

	var n int
	err := db.QueryRowContext(context.Background(),
		"SELECT count(*) FROM events WHERE "+where).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}

	return n
}

// pgCreateParcels inserts n parcels in one captured transaction.
func pgCreateParcels(t *testing.T, events *domainevents.Events, n int) []int64 {
	t.Helper()

	parcels := make([]Parcel, n)
	err := events.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&parcels).Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	ids := make([]int64, n)
	for i, p := range parcels {
		ids[i] = p.ID
	}

	return ids
}

// pgBump increments the versions of the parcels with the given ids in one
// captured transaction, locking them in id order so that concurrent bumps
// do not deadlock.
func pgBump(ctx context.Context, events *domainevents.Events, ids ...int64) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)

	return events.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, id := range ids {
			p := Parcel{ID: id}
			_, err := tx.NewUpdate().Model(&p).Set("version = version + 1").WherePK().
				Returning("*").Exec(ctx)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// pgCheckOrder fails the test unless every parcel's versions arrived in
// increasing order; with exact, also without gaps or repeats (0, 1, 2, ...).
func pgCheckOrder(t *testing.T, got []pgDelivery, exact bool) {
	t.Helper()

	last := map[string]int64{}
	for _, d := range got {
		prev, seen := last[d.Key]
		switch {
		case !seen && exact && d.Version != 0:
			t.Fatalf("%s: first event carries version %d, want 0", d.Key, d.Version)
		case seen && exact && d.Version != prev+1:
			t.Fatalf("%s: version %d after %d", d.Key, d.Version, prev)
		case seen && d.Version < prev:
			t.Fatalf("%s: version %d after %d", d.Key, d.Version, prev)
		}
		last[d.Key] = d.Version
	}
}

// TestPostgres_threeRelaysShareTheWork runs three replicas, each with its
// own connection pool, capture and relay, writing and relaying at the same
// time: every event is delivered exactly once and in order per parcel.
func TestPostgres_threeRelaysShareTheWork(t *testing.T) {
	db := testdb.Postgres(t)
	pgSetup(t, db)
	dbs := []*bun.DB{db, testdb.PostgresReopen(t, db), testdb.PostgresReopen(t, db)}

	rec := &pgRecorder{}
	replicas := make([]*domainevents.Events, len(dbs))
	for i, d := range dbs {
		replicas[i] = pgRegister(t, d, domainevents.Options{},
			publishers.Destination{Name: "recorder", Publisher: rec})
	}

	const (
		parcels   = 60
		txPerRepl = 500
		perTx     = 2
	)
	start := time.Now()
	ids := pgCreateParcels(t, replicas[0], parcels)

	var wg sync.WaitGroup
	errs := make(chan error, len(replicas))
	for _, events := range replicas {
		wg.Go(func() {
			for range txPerRepl {
				a, b := rand.IntN(parcels), rand.IntN(parcels-1)
				if b >= a {
					b++
				}
				if err := pgBump(context.Background(), events, ids[a], ids[b]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	written := time.Since(start)

	total := parcels + len(replicas)*txPerRepl*perTx
	pgEventually(t, time.Minute, "every event delivered", func() bool {
		return rec.distinct() >= total && pgCount(t, db, "status = 'published'") == total
	})
	took := time.Since(start)

	got := rec.deliveries()
	if len(got) != total || pgCount(t, db, "true") != total {
		t.Fatalf("%d deliveries of %d rows, want %d of each: an event was sent twice",
			len(got), pgCount(t, db, "true"), total)
	}
	pgCheckOrder(t, got, true)

	var shares []int64
	for _, events := range replicas {
		stats, _ := events.Relay().Stats()
		shares = append(shares, stats["published"])
	}
	for i, n := range shares {
		if n == 0 {
			t.Fatalf("relay %d published nothing (shares %v): the test did not exercise three",
				i, shares)
		}
	}
	t.Logf("%d events from %d transactions: written in %s, all delivered after %s "+
		"(%.0f events/s end to end); published per relay %v",
		total, 1+len(replicas)*txPerRepl, written.Round(time.Millisecond),
		took.Round(time.Millisecond), float64(total)/took.Seconds(), shares)
}

// TestPostgres_longTransactionIsDelivered holds a transaction open across
// later commits: its event, written first, commits last and is still
// delivered, so the relay does not skip rows that become visible late.
func TestPostgres_longTransactionIsDelivered(t *testing.T) {
	db := testdb.Postgres(t)
	pgSetup(t, db)
	rec := &pgRecorder{}
	events := pgRegister(t, db, domainevents.Options{},
		publishers.Destination{Name: "recorder", Publisher: rec})

	early := watermill.NewUUID()
	inserted, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- events.RunInTx(context.Background(), nil,
			func(ctx context.Context, tx bun.Tx) error {
				msg := message.NewMessage(early, []byte(`{"version":0}`))
				msg.Metadata.Set(publishers.MetadataType, "parcel.audited")
				msg.Metadata.Set(publishers.MetadataEntityKey, "Audit:1")
				if err := events.Publisher(ctx, tx).Publish("events", msg); err != nil {
					return err
				}
				close(inserted)
				<-release
				return nil
			})
	}()
	<-inserted

	const later = 20
	for range later {
		pgCreateParcels(t, events, 1)
	}
	pgEventually(t, 30*time.Second, "the later events delivered", func() bool {
		return pgCount(t, db, "status = 'published'") == later
	})

	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	pgEventually(t, 30*time.Second, "the early event delivered", func() bool {
		return pgCount(t, db, "status = 'published'") == later+1
	})

	var before bool
	err := db.QueryRowContext(context.Background(), `SELECT
	(SELECT created_at FROM events WHERE id = ?) <
	(SELECT min(published_at) FROM events WHERE id <> ?)`, early, early).Scan(&before)
	if err != nil {
		t.Fatal(err)
	}
	if !before {
		t.Fatal("the early event was not created before the later ones were published; " +
			"the test did not hold its transaction open")
	}

	got := rec.deliveries()
	if len(got) != later+1 || got[len(got)-1].ID != early {
		t.Fatalf("%d deliveries, last %+v; want %d with the early event last",
			len(got), got[len(got)-1], later+1)
	}
}
