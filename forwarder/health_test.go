package forwarder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents/forwarder"
	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/publishers"
)

func health(t *testing.T, r *forwarder.Relay) forwarder.Health {
	t.Helper()

	h, err := r.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	return h
}

func TestRelay_Health(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		store := newStore(t, db)
		dest := newSink()
		var mu sync.Mutex
		down := false
		dest.setFail(func(*message.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return fmt.Errorf("connection refused: %w", publishers.ErrUnavailable)
			}
			return nil
		})
		setDown := func(v bool) {
			mu.Lock()
			defer mu.Unlock()
			down = v
		}

		r, err := forwarder.New(store, forwarder.Config{
			Destinations:  []publishers.Destination{{Name: "sink", Publisher: dest}},
			PollInterval:  20 * time.Millisecond,
			ProbeInterval: 20 * time.Millisecond,
			DeferDelay:    50 * time.Millisecond,
			Backoff:       func(int) time.Duration { return 10 * time.Millisecond },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		insert(t, store, 3, func(i int) string { return fmt.Sprintf("Product:%d", i) })

		if h := health(t, r); h.Running || h.Healthy || h.Pending != 3 || h.OldestPending.IsZero() {
			t.Fatalf("before Start: %+v, want not running, not healthy, 3 pending", h)
		}

		r.Start()
		eventually(t, "healthy with nothing pending", func() bool {
			h := health(t, r)
			return h.Running && h.Healthy && h.Pending == 0 && h.OldestPending.IsZero()
		})

		setDown(true)
		insert(t, store, 5, func(i int) string { return fmt.Sprintf("Order:%d", i) })
		r.Wake()
		eventually(t, "destination reported down", func() bool {
			h := health(t, r)
			return !h.Healthy && h.Running && slices.Equal(h.DestinationsDown, []string{"sink"})
		})

		setDown(false)
		eventually(t, "healthy again", func() bool {
			h := health(t, r)
			return h.Healthy && len(h.DestinationsDown) == 0 && h.Pending == 0
		})

		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if h := health(t, r); h.Running || h.Healthy {
			t.Fatalf("after Close: %+v, want not running and not healthy", h)
		}
	})
}

func TestHealthHandler(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	store := newStore(t, db)
	r := startRelay(t, store, forwarder.Config{
		Destinations: []publishers.Destination{{Name: "sink", Publisher: newSink()}},
	})
	srv := httptest.NewServer(forwarder.HealthHandler(r))
	t.Cleanup(srv.Close)

	get := func(t *testing.T, method string) (int, map[string]any) {
		t.Helper()

		req, err := http.NewRequest(method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()

		var body map[string]any
		if method == http.MethodGet && resp.StatusCode != http.StatusMethodNotAllowed {
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content-type %q", ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
		}

		return resp.StatusCode, body
	}

	eventually(t, "relay running", func() bool { return health(t, r).Running })
	code, body := get(t, http.MethodGet)
	if code != http.StatusOK || body["healthy"] != true || body["running"] != true ||
		body["pending"] != 0.0 {
		t.Fatalf("healthy relay: %d %v", code, body)
	}
	if code, _ := get(t, http.MethodHead); code != http.StatusOK {
		t.Fatalf("HEAD: %d", code)
	}
	if code, _ := get(t, http.MethodPost); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", code)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, body = get(t, http.MethodGet)
	if code != http.StatusServiceUnavailable || body["healthy"] != false ||
		body["error"] != "the events table could not be read" {
		t.Fatalf("database closed: %d %v, want 503 with the error", code, body)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body = get(t, http.MethodGet); code != http.StatusServiceUnavailable ||
		body["running"] != false {
		t.Fatalf("closed relay: %d %v, want 503, not running", code, body)
	}
}
