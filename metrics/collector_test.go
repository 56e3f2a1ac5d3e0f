package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents/forwarder"
	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/metrics"
	"github.com/apsoai/domainevents/outbox"
	"github.com/apsoai/domainevents/publishers"
)

// refuser accepts every event except those in refuse.
type refuser struct {
	mu     sync.Mutex
	refuse map[string]bool
}

func (r *refuser) Publish(_ string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	for _, m := range msgs {
		if r.refuse[m.UUID] {
			return errors.New("receiver refuses this event")
		}
	}

	return nil
}

func (r *refuser) Close() error { return nil }

func newStore(t *testing.T, db *bun.DB) *outbox.Store {
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

func insert(t *testing.T, store *outbox.Store, n int) []string {
	t.Helper()

	events := make([]outbox.Event, n)
	ids := make([]string, n)
	for i := range events {
		ids[i] = uuid.NewString()
		events[i] = outbox.Event{ID: ids[i], Type: "product.created", Payload: []byte(`{}`),
			EntityKey: fmt.Sprintf("Product:%d", i)}
	}
	if err := store.Insert(context.Background(), store.DB(), events); err != nil {
		t.Fatal(err)
	}

	return ids
}

func statusCount(t *testing.T, db *bun.DB, status string) int {
	t.Helper()

	var n int
	err := db.QueryRowContext(context.Background(),
		"SELECT count(*) FROM events WHERE status = ?", status).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}

	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()

	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// relayedStore runs a relay over a SQLite file to two destinations, "hook"
// refusing one of ten events and "queue" accepting all, until it settles
// with nine events published and one failed after two attempts. The relay is
// closed when it returns, so its counters no longer move.
func relayedStore(t *testing.T) (*forwarder.Relay, *outbox.Store, *bun.DB) {
	t.Helper()

	db := testdb.SQLite(t, filepath.Join(t.TempDir(), "events.db"))
	store := newStore(t, db)
	ids := insert(t, store, 10)

	relay, err := forwarder.New(store, forwarder.Config{
		Destinations: []publishers.Destination{
			{Name: "hook", Publisher: &refuser{refuse: map[string]bool{ids[0]: true}}},
			{Name: "queue", Publisher: &refuser{}},
		},
		PollInterval: 10 * time.Millisecond,
		MaxAttempts:  2,
		Backoff:      func(int) time.Duration { return time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	relay.Start()
	t.Cleanup(func() { _ = relay.Close() })

	eventually(t, "9 published and 1 failed", func() bool {
		return statusCount(t, db, "published") == 9 && statusCount(t, db, "failed") == 1
	})
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}

	return relay, store, db
}

func TestCollector_exportsRelayAndBacklog(t *testing.T) {
	relay, store, db := relayedStore(t)

	// Three events the closed relay leaves pending, the oldest 90s old.
	pending := insert(t, store, 3)
	oldest := time.Now().Add(-90 * time.Second)
	_, err := db.ExecContext(context.Background(), "UPDATE events SET created_at = ? WHERE id = ?",
		outbox.FormatTime(oldest), pending[1])
	if err != nil {
		t.Fatal(err)
	}

	c, err := metrics.New(relay, store, metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}

	want := `
# HELP domainevents_backlog_up 1 if the backlog query of this scrape succeeded, 0 if it failed.
# TYPE domainevents_backlog_up gauge
domainevents_backlog_up 1
# HELP domainevents_pending_events Events waiting for delivery, in flight or waiting for a retry.
# TYPE domainevents_pending_events gauge
domainevents_pending_events 3
# HELP domainevents_failed_events Events that ran out of attempts and wait for a redrive.
# TYPE domainevents_failed_events gauge
domainevents_failed_events 1
# HELP domainevents_deliveries_total Events the destination accepted.
# TYPE domainevents_deliveries_total counter
domainevents_deliveries_total{destination="hook"} 9
domainevents_deliveries_total{destination="queue"} 10
# HELP domainevents_delivery_failures_total Deliveries the destination failed or refused.
# TYPE domainevents_delivery_failures_total counter
domainevents_delivery_failures_total{destination="hook"} 2
domainevents_delivery_failures_total{destination="queue"} 0
# HELP domainevents_delivery_deferrals_total Events held back while the destination was judged down.
# TYPE domainevents_delivery_deferrals_total counter
domainevents_delivery_deferrals_total{destination="hook"} 0
domainevents_delivery_deferrals_total{destination="queue"} 0
# HELP domainevents_destination_down 1 while the destination is judged down and only probed.
# TYPE domainevents_destination_down gauge
domainevents_destination_down{destination="hook"} 0
domainevents_destination_down{destination="queue"} 0
# HELP domainevents_relay_claimed_total Rows the relay claimed.
# TYPE domainevents_relay_claimed_total counter
domainevents_relay_claimed_total 11
# HELP domainevents_relay_published_total Rows the relay marked published.
# TYPE domainevents_relay_published_total counter
domainevents_relay_published_total 9
# HELP domainevents_relay_retried_total Rows rescheduled after a counted failed attempt.
# TYPE domainevents_relay_retried_total counter
domainevents_relay_retried_total 1
# HELP domainevents_relay_deferred_total Rows rescheduled without an attempt (destination down).
# TYPE domainevents_relay_deferred_total counter
domainevents_relay_deferred_total 0
# HELP domainevents_relay_failed_total Rows the relay marked failed.
# TYPE domainevents_relay_failed_total counter
domainevents_relay_failed_total 1
`
	err = testutil.CollectAndCompare(c, strings.NewReader(want),
		"domainevents_backlog_up", "domainevents_pending_events", "domainevents_failed_events",
		"domainevents_deliveries_total", "domainevents_delivery_failures_total",
		"domainevents_delivery_deferrals_total", "domainevents_destination_down",
		"domainevents_relay_claimed_total", "domainevents_relay_published_total",
		"domainevents_relay_retried_total", "domainevents_relay_deferred_total",
		"domainevents_relay_failed_total")
	if err != nil {
		t.Fatal(err)
	}

	families := gather(t, c)
	age := families["domainevents_oldest_pending_age_seconds"].GetMetric()[0].GetGauge().GetValue()
	if age < 90 || age > 90+60 {
		t.Fatalf("oldest pending age = %.1fs, want 90s plus the test's run time", age)
	}
	for _, m := range families["domainevents_delivery_duration_seconds"].GetMetric() {
		s := m.GetSummary()
		dest := m.GetLabel()[0].GetValue()
		wantCount := map[string]uint64{"hook": 9, "queue": 10}[dest]
		if s.GetSampleCount() != wantCount || s.GetSampleSum() <= 0 {
			t.Fatalf("%s: delivery duration count %d, sum %g; want %d and a positive sum",
				dest, s.GetSampleCount(), s.GetSampleSum(), wantCount)
		}
	}

	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}

	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}

	return out
}

func TestCollector_backlogFailureKeepsRelayMetrics(t *testing.T) {
	relay, store, db := relayedStore(t)
	c, err := metrics.New(relay, store, metrics.Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	families := gather(t, c)
	if up := families["domainevents_backlog_up"].GetMetric()[0].GetGauge().GetValue(); up != 0 {
		t.Fatalf("backlog_up = %g with the database closed, want 0", up)
	}
	for _, name := range []string{"domainevents_pending_events", "domainevents_failed_events",
		"domainevents_oldest_pending_age_seconds"} {
		if _, ok := families[name]; ok {
			t.Fatalf("%s exported although the backlog could not be read", name)
		}
	}
	published := families["domainevents_relay_published_total"].GetMetric()[0]
	if got := published.GetCounter().GetValue(); got != 9 {
		t.Fatalf("relay_published_total = %g, want 9", got)
	}
}

func TestCollector_withoutRelayExportsBacklogOnly(t *testing.T) {
	store := newStore(t, testdb.SQLite(t, filepath.Join(t.TempDir(), "events.db")))
	insert(t, store, 2)

	c, err := metrics.New(nil, store, metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}

	families := gather(t, c)
	if len(families) != 4 {
		t.Fatalf("exported %d families, want the 4 backlog ones", len(families))
	}
	pending := families["domainevents_pending_events"].GetMetric()[0]
	if got := pending.GetGauge().GetValue(); got != 2 {
		t.Fatalf("pending_events = %g, want 2", got)
	}
}

func TestNew_invalidConfig(t *testing.T) {
	store := newStore(t, testdb.SQLite(t, filepath.Join(t.TempDir(), "events.db")))

	if _, err := metrics.New(nil, store, metrics.Config{Timeout: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "invalid config") {
		t.Fatalf("negative timeout: err = %v, want an invalid config error", err)
	}
	if _, err := metrics.New(nil, nil, metrics.Config{}); err == nil {
		t.Fatal("New accepted a nil store")
	}
}
