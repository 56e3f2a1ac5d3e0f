package outbox_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/outbox"
)

// opsRow is one row of the events table as the operators' tests see it.
type opsRow struct {
	Status      string
	Attempts    int
	LastError   string
	DeliveredTo string
	Leased      bool
}

func newOpsStore(t *testing.T, db *bun.DB) *outbox.Store {
	t.Helper()

	store, err := outbox.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}

	return store
}

// day returns midnight UTC of the given day of January 2026.
func day(d int) time.Time {
	return time.Date(2026, time.January, d, 0, 0, 0, 0, time.UTC)
}

// timeValue is t as the test database stores timestamps.
func timeValue(db *bun.DB, t time.Time) any {
	if db.Dialect().Name() == dialect.PG {
		return t
	}

	return outbox.FormatTime(t)
}

func setColumn(t *testing.T, db *bun.DB, id, column string, value time.Time) {
	t.Helper()

	_, err := db.ExecContext(context.Background(),
		"UPDATE events SET "+column+" = ? WHERE id = ?", timeValue(db, value), id)
	if err != nil {
		t.Fatal(err)
	}
}

func insertEvents(t *testing.T, store *outbox.Store, types ...string) []string {
	t.Helper()

	events := make([]outbox.Event, len(types))
	ids := make([]string, len(types))
	for i, typ := range types {
		ids[i] = uuid.NewString()
		events[i] = outbox.Event{ID: ids[i], Type: typ, Payload: []byte(`{"n":1}`)}
	}
	if err := store.Insert(context.Background(), store.DB(), events); err != nil {
		t.Fatal(err)
	}

	return ids
}

// settle claims every pending row and records the given outcome for the
// rows in ids, releasing the others.
func settle(t *testing.T, store *outbox.Store, outcomes ...outbox.Outcome) {
	t.Helper()
	ctx := context.Background()

	claimed, err := store.Claim(ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	var release []string
	for _, c := range claimed {
		if !slices.ContainsFunc(outcomes, func(o outbox.Outcome) bool { return o.ID == c.ID }) {
			release = append(release, c.ID)
		}
	}
	if err := store.Complete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	if err := store.Release(ctx, release); err != nil {
		t.Fatal(err)
	}
}

func failed(id string, deliveredTo ...string) outbox.Outcome {
	return outbox.Outcome{ID: id, Status: outbox.StatusFailed, CountAttempt: true,
		DeliveredTo: deliveredTo, Error: "receiver said no"}
}

func published(id string) outbox.Outcome {
	return outbox.Outcome{ID: id, Status: outbox.StatusPublished}
}

func opsRows(t *testing.T, db *bun.DB) map[string]opsRow {
	t.Helper()

	rows, err := db.QueryContext(context.Background(), `SELECT id, status, attempts,
	COALESCE(last_error, ''), COALESCE(delivered_to, ''), available_at IS NOT NULL
FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()

	out := map[string]opsRow{}
	for rows.Next() {
		var id string
		var r opsRow
		if err := rows.Scan(&id, &r.Status, &r.Attempts, &r.LastError, &r.DeliveredTo,
			&r.Leased); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	return out
}

func TestStore_Redrive(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newOpsStore(t, db)
		ctx := context.Background()

		// Rows 0-2 failed, 3 pending after a retry, 4 published; created on
		// the 1st to the 5th of January.
		seed := func(t *testing.T) []string {
			t.Helper()

			if _, err := db.ExecContext(ctx, "DELETE FROM events"); err != nil {
				t.Fatal(err)
			}
			ids := insertEvents(t, store, "product.created", "product.created",
				"order.created", "order.created", "product.created")
			settle(t, store,
				failed(ids[0], "hook"), failed(ids[1]), failed(ids[2]),
				outbox.Outcome{ID: ids[3], Status: outbox.StatusPending, CountAttempt: true,
					RetryAfter: time.Hour, Error: "try later"},
				published(ids[4]))
			for i, id := range ids {
				setColumn(t, db, id, "created_at", day(i+1))
			}

			return ids
		}

		cases := []struct {
			name   string
			filter func(ids []string) outbox.RedriveFilter
			want   []int
		}{
			{"empty filter redrives every failed row",
				func([]string) outbox.RedriveFilter { return outbox.RedriveFilter{} },
				[]int{0, 1, 2}},
			{"ids", func(ids []string) outbox.RedriveFilter {
				return outbox.RedriveFilter{IDs: []string{ids[1], ids[3], ids[4]}}
			}, []int{1}},
			{"types", func([]string) outbox.RedriveFilter {
				return outbox.RedriveFilter{Types: []string{"order.created", "user.created"}}
			}, []int{2}},
			{"from inclusive", func([]string) outbox.RedriveFilter {
				return outbox.RedriveFilter{From: day(2)}
			}, []int{1, 2}},
			{"to exclusive", func([]string) outbox.RedriveFilter {
				return outbox.RedriveFilter{To: day(2)}
			}, []int{0}},
			{"all fields together", func(ids []string) outbox.RedriveFilter {
				return outbox.RedriveFilter{IDs: ids, Types: []string{"product.created"},
					From: day(1), To: day(3)}
			}, []int{0, 1}},
			{"nothing matches", func([]string) outbox.RedriveFilter {
				return outbox.RedriveFilter{Types: []string{"user.created"}}
			}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ids := seed(t)
				before := opsRows(t, db)

				n, err := store.Redrive(ctx, tc.filter(ids))
				if err != nil {
					t.Fatal(err)
				}
				if n != int64(len(tc.want)) {
					t.Fatalf("Redrive = %d, want %d", n, len(tc.want))
				}

				after := opsRows(t, db)
				for i, id := range ids {
					got := after[id]
					if !slices.Contains(tc.want, i) {
						if got != before[id] {
							t.Fatalf("row %d changed from %+v to %+v", i, before[id], got)
						}
						continue
					}
					want := opsRow{Status: outbox.StatusPending,
						DeliveredTo: before[id].DeliveredTo}
					if got != want {
						t.Fatalf("row %d after redrive = %+v, want %+v", i, got, want)
					}
				}
			})
		}
	})
}

func TestStore_Redrive_keepsDeliveredTo(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newOpsStore(t, db)
		ctx := context.Background()
		ids := insertEvents(t, store, "product.created")
		settle(t, store, failed(ids[0], "hook", "queue"))

		if n, err := store.Redrive(ctx, outbox.RedriveFilter{IDs: ids}); err != nil || n != 1 {
			t.Fatalf("Redrive = %d, %v", n, err)
		}

		claimed, err := store.Claim(ctx, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 1 || claimed[0].Attempts != 0 ||
			!slices.Equal(claimed[0].DeliveredTo, []string{"hook", "queue"}) {
			t.Fatalf("claimed after redrive: %+v", claimed)
		}
	})
}

func TestStore_Redrive_rejectsBadFilter(t *testing.T) {
	store := newOpsStore(t, testdb.Open(t, "sqlite"))

	cases := map[string]outbox.RedriveFilter{
		"id not a uuid":    {IDs: []string{"42"}},
		"from after to":    {From: day(3), To: day(2)},
		"from equal to to": {From: day(2), To: day(2)},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := store.Redrive(context.Background(), f)
			if err == nil || !strings.HasPrefix(err.Error(), "outbox: redrive: ") {
				t.Fatalf("Redrive(%+v) error = %v, want an outbox: redrive error", f, err)
			}
		})
	}
}

// deleteCounter counts the DELETE statements run on a database.
type deleteCounter struct{ n int }

func (c *deleteCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (c *deleteCounter) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	if strings.HasPrefix(strings.TrimSpace(ev.Query), "DELETE") {
		c.n++
	}
}

func TestStore_Prune(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newOpsStore(t, db)
		ctx := context.Background()
		counter := &deleteCounter{}
		db.AddQueryHook(counter)

		old := time.Now().Add(-40 * 24 * time.Hour)
		ids := insertEvents(t, store, "a.created", "a.created", "a.created", "a.created",
			"a.created", "a.created", "a.created", "a.created", "a.created")
		var outcomes []outbox.Outcome
		for _, id := range ids[:7] {
			outcomes = append(outcomes, published(id))
		}
		settle(t, store, append(outcomes, failed(ids[7]))...)
		for _, id := range ids[:5] {
			setColumn(t, db, id, "published_at", old)
		}
		// An old failed row and an old pending row are never pruned.
		setColumn(t, db, ids[7], "created_at", old)
		setColumn(t, db, ids[8], "created_at", old)

		n, err := store.Prune(ctx, 30*24*time.Hour, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 || counter.n != 3 {
			t.Fatalf("Prune = %d rows in %d statements, want 5 in 3 (2+2+1)", n, counter.n)
		}

		left := opsRows(t, db)
		for i, id := range ids {
			if _, ok := left[id]; ok == (i < 5) {
				t.Fatalf("row %d (%s): present = %v after prune", i, id, ok)
			}
		}

		n, err = store.Prune(ctx, time.Hour, 0)
		if err != nil || n != 0 {
			t.Fatalf("second Prune = %d, %v, want 0 (recent rows stay)", n, err)
		}
	})
}

func TestStore_Prune_rejectsNegativeAge(t *testing.T) {
	store := newOpsStore(t, testdb.Open(t, "sqlite"))

	if _, err := store.Prune(context.Background(), -time.Hour, 10); err == nil {
		t.Fatal("Prune accepted a negative age")
	}
}

func TestStore_Backlog(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newOpsStore(t, db)
		ctx := context.Background()

		b, err := store.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b != (outbox.Backlog{}) {
			t.Fatalf("empty table: Backlog = %+v, want zero", b)
		}

		ids := insertEvents(t, store, "a.created", "a.created", "a.created", "a.created",
			"a.created")
		settle(t, store, failed(ids[0]), published(ids[1]))
		oldest := time.Date(2026, time.March, 4, 15, 21, 24, 123456000, time.UTC)
		setColumn(t, db, ids[0], "created_at", oldest.Add(-time.Hour)) // failed
		setColumn(t, db, ids[1], "created_at", oldest.Add(-time.Hour)) // published
		setColumn(t, db, ids[3], "created_at", oldest)

		b, err = store.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := outbox.Backlog{Pending: 3, Failed: 1, OldestPending: oldest}
		if b.Pending != want.Pending || b.Failed != want.Failed ||
			!b.OldestPending.Equal(want.OldestPending) {
			t.Fatalf("Backlog = %+v, want %+v", b, want)
		}
	})
}
