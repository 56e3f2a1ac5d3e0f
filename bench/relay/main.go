// Command relay measures the relay: how fast it drains a backlog of events
// to a local webhook receiver, whether that speed holds as the backlog
// grows, and how long a committed change takes to reach the receiver.
//
//	go run ./bench/relay -db sqlite -backlog 10000,50000,100000
//	go run ./bench/relay -db postgres -dsn postgres://... -latency 500
//
// Every server it talks to is started by it on 127.0.0.1.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/internal/dbopen"
	"github.com/apsoai/domainevents/outbox"
	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// Item is the entity the latency run writes.
type Item struct {
	bun.BaseModel `bun:"table:bench_items"`

	ID   int64  `bun:"id,pk,autoincrement" json:"id"`
	Name string `bun:"name" json:"name"`
}

func main() {
	dbKind := flag.String("db", "sqlite", "sqlite or postgres")
	dsn := flag.String("dsn", os.Getenv("EVENTS_TEST_POSTGRES_DSN"), "PostgreSQL URL")
	backlogs := flag.String("backlog", "10000,50000", "backlog sizes to drain, comma-separated")
	latency := flag.Int("latency", 200, "commits whose delivery latency to measure")
	batch := flag.Int("batch", 50, "relay batch size")
	inflight := flag.Int("inflight", 0, "relay max in flight (0: 8 x batch)")
	entities := flag.Int("entities", 0, "distinct entity keys in the backlog (0: one per event)")
	dest := flag.String("dest", "webhook", "webhook (a local receiver) or null (accepts at once)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the drains to this file")
	flag.Parse()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	destKind = *dest
	rcv := startReceiver()
	defer rcv.srv.Close()

	for _, s := range strings.Split(*backlogs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			log.Fatalf("bad -backlog entry %q", s)
		}
		db := open(*dbKind, *dsn)
		rate := drain(db, rcv, n, *batch, *inflight, *entities)
		fmt.Printf("%-8s backlog %7d  batch %3d  drained at %8.0f events/s\n", *dbKind, n, *batch, rate)
		_ = db.Close()
	}

	if *latency > 0 {
		db := open(*dbKind, *dsn)
		measureLatency(db, rcv, *latency)
		_ = db.Close()
	}
}

type receiver struct {
	url  string
	srv  *http.Server
	got  atomic.Int64
	mu   sync.Mutex
	seen map[string]time.Time
}

func startReceiver() *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}

	r := &receiver{url: "http://" + ln.Addr().String() + "/", seen: map[string]time.Time{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.seen[req.Header.Get("webhook-id")] = time.Now()
		r.mu.Unlock()
		r.got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = r.srv.Serve(ln) }()

	return r
}

func open(kind, dsn string) *bun.DB {
	url := filepath.Join(os.TempDir(), "relay-bench-"+uuid.NewString()+".db")
	if kind == "postgres" {
		if dsn == "" {
			log.Fatal("-db postgres needs -dsn or EVENTS_TEST_POSTGRES_DSN")
		}
		url = dsn
	}

	db, err := dbopen.Open(url)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if kind == "postgres" {
		for _, table := range []string{"events", "bench_items"} {
			stmt := "DROP TABLE IF EXISTS " + table
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				log.Fatal(err)
			}
		}
	}
	if err := domainevents.CreateTable(ctx, db); err != nil {
		log.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*Item)(nil)).IfNotExists().Exec(ctx); err != nil {
		log.Fatal(err)
	}

	return db
}

// nullDest accepts every event at once, to measure the relay without a
// transport.
type nullDest struct{ rcv *receiver }

func (n nullDest) Publish(_ string, msgs ...*message.Message) error {
	n.rcv.got.Add(int64(len(msgs)))
	return nil
}

func (nullDest) Close() error { return nil }

var destKind = "webhook"

func destinations(rcv *receiver) []publishers.Destination {
	if destKind == "null" {
		return []publishers.Destination{{Name: "null", Publisher: nullDest{rcv}}}
	}
	pub, err := webhook.New(webhook.Config{URL: rcv.url, Secret: secret})
	if err != nil {
		log.Fatal(err)
	}

	return []publishers.Destination{{Name: "webhook", Publisher: pub}}
}

// drain fills the table with n pending events, then times a relay that
// delivers them all.
func drain(db *bun.DB, rcv *receiver, n, batch, inflight, entities int) float64 {
	ctx := context.Background()
	store, err := outbox.NewStore(db)
	if err != nil {
		log.Fatal(err)
	}

	payload := []byte(`{"id":1,"name":"bench item","price_cents":1999,"stock":3}`)
	for done := 0; done < n; {
		chunk := min(1000, n-done)
		events := make([]outbox.Event, chunk)
		for i := range events {
			key := done + i
			if entities > 0 {
				key %= entities
			}
			events[i] = outbox.Event{ID: uuid.NewString(), Type: "item.updated",
				Payload: payload, EntityKey: "Item:" + strconv.Itoa(key)}
		}
		if err := store.Insert(ctx, db, events); err != nil {
			log.Fatal(err)
		}
		done += chunk
	}

	start := rcv.got.Load()
	events, err := domainevents.Register(db, domainevents.Options{
		Entities:     []any{(*Item)(nil)},
		Destinations: destinations(rcv),
		BatchSize:    batch,
		PollInterval: time.Second,
		Logger:       quiet(),
	})
	if err != nil {
		log.Fatal(err)
	}
	if inflight > 0 {
		log.Print("-inflight is applied through Options.Relay in a later version")
	}

	t0 := time.Now()
	for rcv.got.Load()-start < int64(n) {
		time.Sleep(time.Millisecond)
	}
	for {
		var pending int
		err := db.NewSelect().Table("events").ColumnExpr("count(*)").
			Where("status = 'pending'").Scan(ctx, &pending)
		if err != nil {
			log.Fatal(err)
		}
		if pending == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(t0)
	_ = events.Close()

	if got := rcv.got.Load() - start; got < int64(n) {
		log.Fatalf("receiver got %d of %d events", got, n)
	}

	return float64(n) / took.Seconds()
}

// measureLatency commits one change at a time and reports how long each
// took from the commit to the receiver, with the default 5s poll.
func measureLatency(db *bun.DB, rcv *receiver, n int) {
	ctx := context.Background()
	events, err := domainevents.Register(db, domainevents.Options{
		Entities:     []any{(*Item)(nil)},
		Destinations: destinations(rcv),
		Logger:       quiet(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer events.Close()

	var lat []time.Duration
	for i := range n {
		var id string
		err := events.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&Item{Name: "item " + strconv.Itoa(i)}).Exec(ctx)
			return err
		})
		if err != nil {
			log.Fatal(err)
		}
		committed := time.Now()
		if err := db.NewSelect().Table("events").Column("id").
			OrderExpr("created_at DESC").Limit(1).Scan(ctx, &id); err != nil {
			log.Fatal(err)
		}

		deadline := time.Now().Add(10 * time.Second)
		for {
			rcv.mu.Lock()
			at, ok := rcv.seen[id]
			rcv.mu.Unlock()
			if ok {
				lat = append(lat, max(at.Sub(committed), 0))
				break
			}
			if time.Now().After(deadline) {
				log.Fatalf("event %s not delivered in 10s", id)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}

	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("commit to delivery over %d commits (poll 5s): p50 %v  p90 %v  p99 %v  max %v\n",
		len(lat), pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1])
}
