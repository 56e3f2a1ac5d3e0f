package forwarder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmforwarder "github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/apsoai/domainevents/forwarder"
	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/outbox"
	"github.com/apsoai/domainevents/publishers"
)

// sink is a destination that records what it accepts and fails on demand.
type sink struct {
	mu    sync.Mutex
	got   []*message.Message
	calls map[string]int
	fail  func(msg *message.Message) error
}

func newSink() *sink { return &sink{calls: map[string]int{}} }

func (s *sink) Publish(_ string, msgs ...*message.Message) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()

	for _, m := range msgs {
		var err error
		if fail != nil {
			err = fail(m)
		}

		s.mu.Lock()
		s.calls[m.UUID]++
		if err == nil {
			s.got = append(s.got, m)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}

	return nil
}

func (s *sink) Close() error { return nil }

func (s *sink) setFail(f func(*message.Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

func (s *sink) received() []*message.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *sink) callsFor(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

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

func insert(t *testing.T, store *outbox.Store, n int, key func(i int) string) []string {
	t.Helper()

	events := make([]outbox.Event, n)
	ids := make([]string, n)
	for i := range events {
		ids[i] = uuid.NewString()
		events[i] = outbox.Event{
			ID:        ids[i],
			Type:      "product.updated",
			Payload:   fmt.Appendf(nil, `{"n":%d,"name":"caf\u00e9 <b>&</b>"}`, i),
			EntityKey: key(i),
		}
	}
	if err := store.Insert(context.Background(), store.DB(), events); err != nil {
		t.Fatal(err)
	}

	return ids
}

func startRelay(t *testing.T, store *outbox.Store, cfg forwarder.Config) *forwarder.Relay {
	t.Helper()

	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	}
	r, err := forwarder.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() { _ = r.Close() })

	return r
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

type rowState struct {
	Status    string
	Attempts  int
	Published bool
}

func states(t *testing.T, db *bun.DB) map[string]rowState {
	t.Helper()

	rows, err := db.QueryContext(context.Background(),
		"SELECT id, status, attempts, published_at IS NOT NULL FROM events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()

	out := map[string]rowState{}
	for rows.Next() {
		var id string
		var s rowState
		if err := rows.Scan(&id, &s.Status, &s.Attempts, &s.Published); err != nil {
			t.Fatal(err)
		}
		out[id] = s
	}

	return out
}

func count(t *testing.T, db *bun.DB, status string) int {
	t.Helper()

	n := 0
	for _, s := range states(t, db) {
		if s.Status == status {
			n++
		}
	}

	return n
}

func TestRelay_deliversBodiesInEntityOrder(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		ids := insert(t, store, 300, func(i int) string { return fmt.Sprintf("Product:%d", i%7) })
		dest := newSink()
		startRelay(t, store, forwarder.Config{
			Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
		})

		eventually(t, "300 deliveries", func() bool { return len(dest.received()) >= 300 })
		eventually(t, "rows published", func() bool { return count(t, db, "published") == 300 })

		seen := map[string]bool{}
		last := map[string]int{}
		for _, m := range dest.received() {
			if seen[m.UUID] {
				t.Fatalf("event %s delivered twice", m.UUID)
			}
			seen[m.UUID] = true

			var body map[string]json.RawMessage
			if err := json.Unmarshal(m.Payload, &body); err != nil {
				t.Fatalf("body %s: %v", m.Payload, err)
			}
			if len(body) != 7 || string(body["status"]) != `"pending"` ||
				string(body["published_at"]) != "null" {
				t.Fatalf("body %s does not have the contract's seven keys", m.Payload)
			}
			var p struct{ N int }
			_ = json.Unmarshal(body["payload"], &p)
			key := m.Metadata.Get(publishers.MetadataEntityKey)
			if prev, ok := last[key]; ok && p.N < prev {
				t.Fatalf("%s: event %d after %d", key, p.N, prev)
			}
			last[key] = p.N
		}
		for _, id := range ids {
			if !states(t, db)[id].Published {
				t.Fatalf("row %s has no published_at", id)
			}
		}
	})
}

func TestRelay_failsAfterMaxAttemptsWithoutBlockingOthers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		ids := insert(t, store, 20, func(i int) string { return fmt.Sprintf("Product:%d", i) })
		poison := ids[0]

		dest := newSink()
		dest.setFail(func(m *message.Message) error {
			if m.UUID == poison {
				return errors.New("receiver rejects this one")
			}
			return nil
		})
		startRelay(t, store, forwarder.Config{
			Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
		})

		eventually(t, "poison failed", func() bool { return states(t, db)[poison].Status == "failed" })
		if n := count(t, db, "published"); n != 19 {
			t.Fatalf("published = %d, want 19", n)
		}
		if s := states(t, db)[poison]; s.Attempts != 5 || dest.callsFor(poison) != 5 {
			t.Fatalf("poison attempts = %d, calls = %d, want 5 and 5",
				s.Attempts, dest.callsFor(poison))
		}
	})
}

func TestRelay_permanentErrorFailsAtOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		ids := insert(t, store, 1, func(int) string { return "Product:1" })
		dest := newSink()
		dest.setFail(func(*message.Message) error {
			return fmt.Errorf("too large: %w", publishers.ErrPermanent)
		})
		startRelay(t, store, forwarder.Config{
			Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
		})

		eventually(t, "row failed", func() bool { return states(t, db)[ids[0]].Status == "failed" })
		if c := dest.callsFor(ids[0]); c != 1 {
			t.Fatalf("calls = %d, want 1", c)
		}
	})
}

func TestRelay_outageSpendsNoAttemptsAndRecovers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		dest := newSink()
		var down sync.Mutex
		isDown := true
		dest.setFail(func(*message.Message) error {
			down.Lock()
			defer down.Unlock()
			if isDown {
				return fmt.Errorf("connection refused: %w", publishers.ErrUnavailable)
			}
			return nil
		})
		r := startRelay(t, store, forwarder.Config{
			Destinations:  []publishers.Destination{{Name: "sink", Publisher: dest}},
			ProbeInterval: 20 * time.Millisecond,
			// Rows put off during the outage must come back when the
			// destination does, not when this runs out.
			DeferDelay: time.Hour,
		})
		ids := insert(t, store, 100, func(i int) string { return fmt.Sprintf("Product:%d", i) })
		r.Wake()

		// Long enough for many probes: without the breaker every row would
		// burn its five attempts in this time.
		eventually(t, "destination judged down", func() bool {
			_, d := r.Stats()
			return d["sink"].Down && d["sink"].Failures > 30
		})
		if n := count(t, db, "failed"); n != 0 {
			t.Fatalf("%d rows failed during the outage", n)
		}

		down.Lock()
		isDown = false
		down.Unlock()

		eventually(t, "all published", func() bool { return count(t, db, "published") == len(ids) })
		for id, s := range states(t, db) {
			if s.Attempts > 2 {
				t.Fatalf("row %s spent %d attempts", id, s.Attempts)
			}
		}
	})
}

func TestRelay_retrySkipsDestinationsThatAccepted(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		ids := insert(t, store, 1, func(int) string { return "Product:1" })
		good, flaky := newSink(), newSink()
		var mu sync.Mutex
		fails := 2
		flaky.setFail(func(*message.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if fails > 0 {
				fails--
				return errors.New("flaky")
			}
			return nil
		})
		startRelay(t, store, forwarder.Config{Destinations: []publishers.Destination{
			{Name: "good", Publisher: good}, {Name: "flaky", Publisher: flaky},
		}})

		eventually(t, "published", func() bool { return states(t, db)[ids[0]].Status == "published" })
		if g, f := good.callsFor(ids[0]), flaky.callsFor(ids[0]); g != 1 || f != 3 {
			t.Fatalf("calls good=%d flaky=%d, want 1 and 3", g, f)
		}
		if s := states(t, db)[ids[0]]; s.Attempts != 2 {
			t.Fatalf("attempts = %d, want 2", s.Attempts)
		}
	})
}

func TestRelay_twoRelaysNeverSendTwice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		dest := newSink()
		for range 2 {
			startRelay(t, store, forwarder.Config{
				Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
				BatchSize:    25,
			})
		}
		const n = 1000
		for range 10 {
			insert(t, store, n/10, func(i int) string { return fmt.Sprintf("Order:%d", i%50) })
		}

		eventually(t, "all published", func() bool { return count(t, db, "published") == n })
		got := dest.received()
		seen := map[string]bool{}
		for _, m := range got {
			if seen[m.UUID] {
				t.Fatalf("event %s sent twice", m.UUID)
			}
			seen[m.UUID] = true
		}
		if len(seen) != n {
			t.Fatalf("delivered %d, want %d", len(seen), n)
		}
	})
}

func TestRelay_expiredLeaseIsClaimedAgain(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		ids := insert(t, store, 3, func(i int) string { return fmt.Sprintf("Product:%d", i) })

		// A relay that claims and dies.
		claimed, err := store.Claim(context.Background(), 10, time.Second)
		if err != nil || len(claimed) != 3 {
			t.Fatalf("claim = %d rows, %v", len(claimed), err)
		}
		if again, _ := store.Claim(context.Background(), 10, time.Second); len(again) != 0 {
			t.Fatalf("leased rows claimed again at once: %d", len(again))
		}

		dest := newSink()
		startRelay(t, store, forwarder.Config{
			Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
		})
		eventually(t, "rows delivered after the lease", func() bool {
			return count(t, db, "published") == len(ids)
		})
	})
}

func TestRelay_closeReleasesInFlightRows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		insert(t, store, 5, func(i int) string { return fmt.Sprintf("Product:%d", i) })

		block := make(chan struct{})
		dest := newSink()
		dest.setFail(func(*message.Message) error { <-block; return nil })
		r, err := forwarder.New(store, forwarder.Config{
			Destinations:    []publishers.Destination{{Name: "sink", Publisher: dest}},
			ShutdownTimeout: 100 * time.Millisecond,
			Lease:           time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		r.Start()
		eventually(t, "rows claimed", func() bool {
			s, _ := r.Stats()
			return s["claimed"] == 5
		})

		// The stuck delivery ends only after Close has released the rows.
		go func() {
			time.Sleep(300 * time.Millisecond)
			close(block)
		}()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}

		again, err := store.Claim(context.Background(), 10, time.Second)
		if err != nil || len(again) != 5 {
			t.Fatalf("after close, claim = %d rows (%v), want all 5 released", len(again), err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestTablePublisher_roundTripsWatermillForwarderEnvelopes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		ctx := context.Background()

		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		pub := wmforwarder.NewPublisher(forwarder.NewTablePublisher(ctx, store, tx),
			wmforwarder.PublisherConfig{ForwarderTopic: "events_forwarder"})
		msg := message.NewMessage(watermill.NewUUID(), []byte(`{"sku":"A-1","qty":2}`))
		msg.Metadata.Set(publishers.MetadataType, "stock.reserved")
		msg.Metadata.Set(publishers.MetadataEntityKey, "Stock:A-1")
		msg.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		if err := pub.Publish("inventory", msg); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}

		dest := newSink()
		startRelay(t, store, forwarder.Config{
			Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
		})
		eventually(t, "delivery", func() bool { return len(dest.received()) == 1 })

		got := dest.received()[0]
		var body struct {
			ID      string          `json:"id"`
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(got.Payload, &body); err != nil {
			t.Fatal(err)
		}
		if got.UUID != msg.UUID || body.ID != msg.UUID || body.Type != "stock.reserved" ||
			string(body.Payload) != `{"sku":"A-1","qty":2}` {
			t.Fatalf("delivered %s %s, want the published message", got.UUID, got.Payload)
		}
		if got.Metadata.Get("traceparent") != msg.Metadata.Get("traceparent") ||
			got.Metadata.Get(publishers.MetadataEntityKey) != "Stock:A-1" {
			t.Fatalf("metadata = %v", got.Metadata)
		}
	})
}

func TestNew_invalidConfig(t *testing.T) {
	store := newStore(t, testdb.Open(t, "sqlite"))
	dest := publishers.Destination{Name: "sink", Publisher: newSink()}

	cases := map[string]forwarder.Config{
		"no destinations": {},
		"duplicate":       {Destinations: []publishers.Destination{dest, dest}},
		"batch too big":   {Destinations: []publishers.Destination{dest}, BatchSize: 10000},
		"negative lease":  {Destinations: []publishers.Destination{dest}, Lease: -time.Second},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := forwarder.New(store, cfg)
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestRelay_bodyKeepsPayloadBytes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		// jsonb would sort these keys and respace them.
		payload := `{"zeta":1,"alpha":[1, 2],"name":"caf\u00e9 \u003cb\u003e"}`
		id := uuid.NewString()
		err := store.Insert(context.Background(), db, []outbox.Event{{
			ID: id, Type: "thing.created", Payload: []byte(payload), EntityKey: "Thing:1",
		}})
		if err != nil {
			t.Fatal(err)
		}

		dest := newSink()
		startRelay(t, store, forwarder.Config{
			Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
		})
		eventually(t, "delivery", func() bool { return len(dest.received()) == 1 })

		body := string(dest.received()[0].Payload)
		want := `{"id":"` + id + `","type":"thing.created","payload":` + payload +
			`,"status":"pending","attempts":0,"created_at":"`
		if !strings.HasPrefix(body, want) || !strings.HasSuffix(body, `Z","published_at":null}`) {
			t.Fatalf("body = %s\nwant it to start with %s", body, want)
		}
	})
}

func TestRelay_closeRightAfterStart(t *testing.T) {
	store := newStore(t, testdb.Open(t, "sqlite"))

	for range 20 {
		r, err := forwarder.New(store, forwarder.Config{
			Destinations:    []publishers.Destination{{Name: "sink", Publisher: newSink()}},
			ShutdownTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		r.Start()
		if err := r.Close(); err != nil {
			t.Fatalf("Close right after Start: %v", err)
		}
	}
}

func TestRelay_unreadableRowFailsAloneAndRunAfterClose(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		ctx := context.Background()
		ids := insert(t, store, 3, func(i int) string { return fmt.Sprintf("Product:%d", i) })

		// A row another program wrote: the oldest, with a payload that is
		// not JSON.
		bad := uuid.NewString()
		_, err := db.ExecContext(ctx, `INSERT INTO events (id, type, payload, status, attempts,
			created_at) VALUES (?, 'x.created', ?, 'pending', 0, ?)`,
			bad, "not json", time.Now().Add(-time.Hour))
		if err != nil {
			if db.Dialect().Name() != dialect.PG {
				t.Fatal(err)
			}
			// jsonb refuses it; use one PostgreSQL accepts but the body
			// cannot carry: a payload_raw that is not JSON.
			_, err = db.ExecContext(ctx, `INSERT INTO events (id, type, payload, payload_raw,
				status, attempts, created_at) VALUES (?, 'x.created', '{}', 'not json',
				'pending', 0, now() - interval '1 hour')`, bad)
			if err != nil {
				t.Fatal(err)
			}
		}

		dest := newSink()
		r := startRelay(t, store, forwarder.Config{
			Destinations: []publishers.Destination{{Name: "sink", Publisher: dest}},
		})
		eventually(t, "good rows published", func() bool {
			s := states(t, db)
			return s[ids[0]].Published && s[ids[1]].Published && s[ids[2]].Published &&
				s[bad].Status == "failed"
		})
		if dest.callsFor(bad) != 0 {
			t.Fatalf("the unreadable row was sent")
		}

		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Run(ctx); err == nil {
			t.Fatal("Run after Close returned nil")
		}
	})
}

func TestRelay_unreachableDestinationSpendsNoAttemptsOnALoneEvent(t *testing.T) {
	store := newStore(t, testdb.Open(t, "sqlite"))
	ids := insert(t, store, 1, func(int) string { return "Product:1" })

	dest := newSink()
	var down atomic.Bool
	down.Store(true)
	dest.setFail(func(*message.Message) error {
		if down.Load() {
			return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return nil
	})
	r := startRelay(t, store, forwarder.Config{
		Destinations:  []publishers.Destination{{Name: "sink", Publisher: dest}},
		ProbeInterval: 10 * time.Millisecond,
		DeferDelay:    20 * time.Millisecond,
	})

	// Without the breaker, one event would spend its five attempts long
	// before this many calls.
	eventually(t, "many probes", func() bool { return dest.callsFor(ids[0]) > 8 })
	if _, d := r.Stats(); !d["sink"].Down {
		t.Fatal("destination not judged down")
	}
	down.Store(false)

	eventually(t, "published", func() bool {
		return states(t, store.DB())[ids[0]].Status == "published"
	})
	if a := states(t, store.DB())[ids[0]].Attempts; a >= 5 {
		t.Fatalf("attempts = %d: the outage spent them", a)
	}
}
