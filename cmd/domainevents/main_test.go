package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/apsoai/domainevents/internal/testdb"
	"github.com/apsoai/domainevents/outbox"
)

// binary is the command built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "domainevents-cmd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "domainevents")

	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build domainevents:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}

	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func runCommand(t *testing.T, databaseURL string, args ...string) result {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}

	return r
}

func mustRun(t *testing.T, databaseURL string, args ...string) string {
	t.Helper()

	r := runCommand(t, databaseURL, args...)
	if r.code != 0 {
		t.Fatalf("domainevents %v: exit %d\n%s", args, r.code, r.stderr)
	}

	return r.stdout
}

// target is a database the command and the test both reach.
type target struct {
	url string
	db  *bun.DB
}

func targets(t *testing.T) map[string]func(t *testing.T) target {
	t.Helper()

	return map[string]func(t *testing.T) target{
		"sqlite": func(t *testing.T) target {
			path := filepath.Join(t.TempDir(), "app.db")
			return target{url: path, db: testdb.SQLite(t, path)}
		},
		"postgres": func(t *testing.T) target {
			db := testdb.Postgres(t)
			var schema string
			err := db.QueryRowContext(context.Background(), "SELECT current_schema()").Scan(&schema)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(os.Getenv(testdb.EnvPostgres))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return target{url: u.String(), db: db}
		},
	}
}

type row struct {
	Status      string
	Attempts    int
	DeliveredTo string
}

func rows(t *testing.T, db *bun.DB) map[string]row {
	t.Helper()

	rs, err := db.QueryContext(context.Background(),
		"SELECT id, status, attempts, COALESCE(delivered_to, '') FROM events")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()

	out := map[string]row{}
	for rs.Next() {
		var id string
		var r row
		if err := rs.Scan(&id, &r.Status, &r.Attempts, &r.DeliveredTo); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}

	return out
}

// seed writes five events: 0 and 1 failed (0 after "hook" accepted it), 2
// published 40 days ago, 3 published now, 4 pending.
func seed(t *testing.T, db *bun.DB) []string {
	t.Helper()
	ctx := context.Background()

	store, err := outbox.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	types := []string{"product.created", "order.created", "product.created",
		"product.created", "order.created"}
	events := make([]outbox.Event, len(types))
	ids := make([]string, len(types))
	for i, typ := range types {
		ids[i] = uuid.NewString()
		events[i] = outbox.Event{ID: ids[i], Type: typ, Payload: []byte(`{}`)}
	}
	if err := store.Insert(ctx, db, events); err != nil {
		t.Fatal(err)
	}

	if _, err := store.Claim(ctx, 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	err = store.Complete(ctx, []outbox.Outcome{
		{ID: ids[0], Status: outbox.StatusFailed, CountAttempt: true,
			DeliveredTo: []string{"hook"}},
		{ID: ids[1], Status: outbox.StatusFailed, CountAttempt: true},
		{ID: ids[2], Status: outbox.StatusPublished},
		{ID: ids[3], Status: outbox.StatusPublished},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Release(ctx, ids[4:]); err != nil {
		t.Fatal(err)
	}

	var old any = time.Now().Add(-40 * 24 * time.Hour)
	if db.Dialect().Name() == dialect.SQLite {
		old = outbox.FormatTime(old.(time.Time))
	}
	if _, err := db.ExecContext(ctx, "UPDATE events SET published_at = ? WHERE id = ?",
		old, ids[2]); err != nil {
		t.Fatal(err)
	}

	return ids
}

func TestCommand_endToEnd(t *testing.T) {
	for name, open := range targets(t) {
		t.Run(name, func(t *testing.T) {
			tg := open(t)

			if out := mustRun(t, tg.url, "migrate"); !strings.Contains(out, "ready") {
				t.Fatalf("migrate printed %q", out)
			}
			mustRun(t, tg.url, "migrate") // safe to run again
			ids := seed(t, tg.db)

			var st struct {
				Pending       int64   `json:"pending"`
				Failed        int64   `json:"failed"`
				OldestPending *string `json:"oldest_pending"`
			}
			out := mustRun(t, tg.url, "stats", "-json")
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatal(err)
			}
			if st.Pending != 1 || st.Failed != 2 || st.OldestPending == nil {
				t.Fatalf("stats = %+v, want 1 pending, 2 failed, an oldest pending time", st)
			}

			out = mustRun(t, tg.url, "redrive", "-type", "product.created")
			if !strings.Contains(out, "redriven 1 ") {
				t.Fatalf("redrive -type printed %q", out)
			}
			got := rows(t, tg.db)
			if got[ids[0]] != (row{"pending", 0, "hook"}) || got[ids[1]].Status != "failed" {
				t.Fatalf("after redrive -type: %+v and %+v", got[ids[0]], got[ids[1]])
			}

			out = mustRun(t, tg.url, "redrive", "-id", ids[1], "-id", ids[3])
			if !strings.Contains(out, "redriven 1 ") {
				t.Fatalf("redrive -id printed %q", out)
			}
			if out := mustRun(t, tg.url, "redrive"); !strings.Contains(out, "redriven 0 ") {
				t.Fatalf("redrive with nothing failed printed %q", out)
			}

			out = mustRun(t, tg.url, "prune", "-older-than", "720h", "-batch", "1")
			if !strings.Contains(out, "pruned 1 ") {
				t.Fatalf("prune printed %q", out)
			}
			got = rows(t, tg.db)
			if _, ok := got[ids[2]]; ok || len(got) != 4 {
				t.Fatalf("after prune: %d rows, old published row present = %v", len(got), ok)
			}

			out = mustRun(t, tg.url, "stats")
			if !strings.Contains(out, "pending         3\n") ||
				!strings.Contains(out, "failed          0\n") {
				t.Fatalf("stats printed %q", out)
			}
		})
	}
}

func TestCommand_missingTableSaysToMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	r := runCommand(t, path, "stats")
	if r.code != 1 || !strings.Contains(r.stderr, `run "domainevents migrate"`) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCommand_missingSQLiteFileIsNotCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.db")

	for _, args := range [][]string{{"stats"}, {"redrive"}, {"prune", "-older-than", "1h"}} {
		r := runCommand(t, path, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
			t.Fatalf("%v: exit %d, stderr %q; want exit 1 saying the file does not exist",
				args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the command created the missing file: %v", err)
	}
}

func TestCommand_usageErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "unused.db")

	cases := []struct {
		args []string
		want string
	}{
		{nil, "usage: domainevents <command>"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"prune"}, "-older-than is required"},
		{[]string{"prune", "-older-than", "-1h"}, "cannot be negative"},
		{[]string{"prune", "-older-than", "1h", "-batch", "0"}, "-batch must be at least 1"},
		{[]string{"redrive", "-id", "42"}, `-id "42" is not an event id`},
		{[]string{"redrive", "-since", "yesterday"}, "RFC 3339"},
		{[]string{"redrive", "-since", "2026-02-01T00:00:00Z", "-until", "2026-01-01T00:00:00Z"},
			"-since must be before -until"},
		{[]string{"stats", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCommand(t, path, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a usage error touched the database file: %v", err)
	}
}

func TestCommand_badDatabaseURL(t *testing.T) {
	r := runCommand(t, "mysql://app:secret@127.0.0.1:3306/app", "stats")
	if r.code != 1 || !strings.Contains(r.stderr, "DATABASE_URL") ||
		strings.Contains(r.stderr, "secret") {
		t.Fatalf("exit %d, stderr %q; want exit 1 naming DATABASE_URL without the password",
			r.code, r.stderr)
	}
}
