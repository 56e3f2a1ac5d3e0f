package integration_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/forwarder"
	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/publishers"
)

func pgOpen(t *testing.T, dsn string) *bun.DB {
	t.Helper()

	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), pgdialect.New())
	t.Cleanup(func() { _ = db.Close() })

	return db
}

// pgOwnDatabase creates a database of its own on the test server, dropped
// when the test ends, and returns its DSN.
func pgOwnDatabase(t *testing.T) string {
	t.Helper()

	dsn := os.Getenv(testdb.EnvPostgres)
	if dsn == "" {
		t.Fatalf("%s is not set; run ./scripts/test.sh, which starts PostgreSQL",
			testdb.EnvPostgres)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", testdb.EnvPostgres, err)
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "restart_" + hex.EncodeToString(b)

	admin := pgOpen(t, dsn)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s (the test user needs CREATEDB): %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
	})

	u.Path = "/" + name

	return u.String()
}

// pgRestart stands for a restart of the server: it terminates every other
// connection to the test's own database, so that every pool, listener and
// transaction of the replicas loses its connection as it would when the
// server goes down. The server itself is shared with other tests, so it is
// not stopped, and the database is the test's own so that no other test
// loses a connection. It returns how many connections it ended.
func pgRestart(t *testing.T, admin *bun.DB) int {
	t.Helper()

	var n int
	err := admin.QueryRowContext(context.Background(), `SELECT count(pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatalf("terminate backends: %v", err)
	}

	return n
}

// TestPostgres_relayContinuesAfterRestart ends every connection of two
// replicas twice while they write and relay, and checks that every
// committed event is delivered, in order per parcel.
func TestPostgres_relayContinuesAfterRestart(t *testing.T) {
	dsn := pgOwnDatabase(t)
	admin := pgOpen(t, dsn)
	pgSetup(t, admin)

	rec := &pgRecorder{}
	relayCfg := domainevents.Options{
		PollInterval: 500 * time.Millisecond,
		// A claim whose answer is lost with its connection stays leased;
		// a short lease lets another claim take it soon.
		Relay: forwarder.Config{Lease: 2 * time.Second},
	}
	replicas := []*domainevents.Events{
		pgRegister(t, pgOpen(t, dsn), relayCfg, publishers.Destination{Name: "r", Publisher: rec}),
		pgRegister(t, pgOpen(t, dsn), relayCfg, publishers.Destination{Name: "r", Publisher: rec}),
	}
	ids := pgCreateParcels(t, replicas[0], 40)

	const txPerReplica = 300
	var (
		committed, failed atomic.Int64
		wg                sync.WaitGroup
	)
	for i, events := range replicas {
		wg.Go(func() {
			for n := range txPerReplica {
				a := ids[(i*7+n)%len(ids)]
				b := ids[(i*13+n*3+1)%len(ids)]
				if a == b {
					b = ids[(n+5)%len(ids)]
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := pgBump(ctx, events, a, b); err != nil {
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
				} else {
					committed.Add(1)
				}
				cancel()
			}
		})
	}

	// Restart after a third and after two thirds of the transactions.
	var ended []int
	for _, at := range []int64{2 * txPerReplica / 3, 4 * txPerReplica / 3} {
		pgEventually(t, time.Minute, fmt.Sprintf("%d transactions", at), func() bool {
			return committed.Load()+failed.Load() >= at
		})
		ended = append(ended, pgRestart(t, admin))
	}
	wg.Wait()
	written := time.Now()

	if committed.Load() < txPerReplica {
		t.Fatalf("only %d of %d transactions committed: writes did not resume after the restarts",
			committed.Load(), 2*txPerReplica)
	}

	// Every row that committed, whatever its writer was told, is delivered.
	pgEventually(t, time.Minute, "every committed event delivered", func() bool {
		rows := pgCount(t, admin, "true")
		return pgCount(t, admin, "status = 'published'") == rows && rec.distinct() == rows
	})

	got := rec.deliveries()
	rows := pgCount(t, admin, "true")
	if want := 40 + 2*int(committed.Load()); rows < want {
		t.Fatalf("%d events in the table, want at least %d from the committed transactions",
			rows, want)
	}
	pgCheckOrder(t, got, false)

	var last time.Time
	for _, d := range got {
		if d.At.After(last) {
			last = d.At
		}
	}
	t.Logf("%d events, %d deliveries (%d repeated); %d transactions committed, %d failed "+
		"with their connections; connections ended per restart %v; last delivery %s after "+
		"the last write", rows, len(got), len(got)-rows, committed.Load(), failed.Load(), ended,
		max(last.Sub(written), 0).Round(time.Millisecond))
}
