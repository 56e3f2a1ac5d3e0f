package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/apsoai/domainevents/internal/dbopen"
	"github.com/apsoai/domainevents/outbox"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `usage: domainevents <command> [flags]

commands:
  migrate   create the events table, or add the columns it lacks
  stats     print pending and failed counts and the oldest pending event
  redrive   put failed events back to pending
  prune     delete old published events

DATABASE_URL names the database: empty for the SQLite file example.db, the
path of a SQLite file, or postgres://user:password@host:5432/db.
Run "domainevents <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv(dbopen.EnvVar), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: its flags are defined on fs; once they parsed,
// check (if any) judges them and run is called with the store.
type command struct {
	fs    *flag.FlagSet
	check func() error
	run   runFunc

	// needsTable is false for migrate, which creates the table.
	needsTable bool
}

type runFunc = func(ctx context.Context, store *outbox.Store, stdout io.Writer) error

func run(ctx context.Context, args []string, databaseURL string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}

	cmd, err := newCommand(args[0], stderr)
	if err != nil {
		fmt.Fprintf(stderr, "domainevents: %v\n\n%s", err, usage)
		return exitUsage
	}
	if err := cmd.fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if cmd.fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", cmd.fs.Arg(0))
	} else if cmd.check != nil {
		err = cmd.check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "domainevents %s: %v\n", args[0], err)
		cmd.fs.Usage()
		return exitUsage
	}

	if err := withStore(ctx, databaseURL, cmd, stdout); err != nil {
		fmt.Fprintf(stderr, "domainevents %s: %v\n", args[0], err)
		return exitError
	}

	return exitOK
}

func withStore(ctx context.Context, databaseURL string, cmd *command, stdout io.Writer) error {
	// Opening a SQLite file creates it; only migrate may do that, so that a
	// mistyped path is reported instead of read as an empty database.
	if path, ok := dbopen.SQLitePath(databaseURL); ok && cmd.needsTable {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("SQLite file %q does not exist; set %s to the service's database",
				path, dbopen.EnvVar)
		}
	}

	db, err := dbopen.Open(databaseURL)
	if err != nil {
		return err
	}
	defer db.Close()

	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s %q: %w", dbopen.EnvVar, dbopen.Redacted(databaseURL), err)
	}

	store, err := outbox.NewStore(db)
	if err != nil {
		return err
	}

	if cmd.needsTable {
		if err := store.Check(ctx); err != nil {
			if errors.Is(err, outbox.ErrNoTable) {
				return fmt.Errorf("%w\nrun \"domainevents migrate\" to create or complete it", err)
			}
			return err
		}
	}

	return cmd.run(ctx, store, stdout)
}

// synopsis is each command's usage line.
var synopsis = map[string]string{
	"migrate": "migrate",
	"stats":   "stats [-json]",
	"redrive": "redrive [-id ID]... [-type TYPE]... [-since RFC3339] [-until RFC3339]",
	"prune":   "prune -older-than 720h [-batch 1000]",
}

func newCommand(name string, stderr io.Writer) (*command, error) {
	fs := flag.NewFlagSet("domainevents "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: domainevents %s\n", synopsis[name])
		fs.PrintDefaults()
	}
	cmd := &command{fs: fs, needsTable: true}

	switch name {
	case "migrate":
		cmd.needsTable = false
		cmd.run = migrate
	case "stats":
		asJSON := fs.Bool("json", false, "print one JSON object instead of text")
		cmd.run = func(ctx context.Context, store *outbox.Store, stdout io.Writer) error {
			return stats(ctx, store, stdout, *asJSON)
		}
	case "redrive":
		cmd.check, cmd.run = redriveCommand(fs)
	case "prune":
		cmd.check, cmd.run = pruneCommand(fs)
	default:
		return nil, fmt.Errorf("unknown command %q", name)
	}

	return cmd, nil
}

func migrate(ctx context.Context, store *outbox.Store, stdout io.Writer) error {
	if err := store.CreateTable(ctx); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "events table is ready")

	return nil
}

// statsOutput is what stats prints with -json.
type statsOutput struct {
	Pending       int64   `json:"pending"`
	Failed        int64   `json:"failed"`
	OldestPending *string `json:"oldest_pending"`
	OldestAge     float64 `json:"oldest_pending_age_seconds"`
}

func stats(ctx context.Context, store *outbox.Store, stdout io.Writer, asJSON bool) error {
	b, err := store.Backlog(ctx)
	if err != nil {
		return err
	}

	var age time.Duration
	if !b.OldestPending.IsZero() {
		age = max(time.Since(b.OldestPending), 0)
	}

	if asJSON {
		out := statsOutput{Pending: b.Pending, Failed: b.Failed, OldestAge: age.Seconds()}
		if !b.OldestPending.IsZero() {
			s := b.OldestPending.UTC().Format(time.RFC3339Nano)
			out.OldestPending = &s
		}
		return json.NewEncoder(stdout).Encode(out)
	}

	oldest := "none"
	if !b.OldestPending.IsZero() {
		oldest = fmt.Sprintf("%s (%s ago)", b.OldestPending.UTC().Format(time.RFC3339Nano),
			age.Round(time.Second))
	}
	fmt.Fprintf(stdout, "pending         %d\nfailed          %d\noldest pending  %s\n",
		b.Pending, b.Failed, oldest)

	return nil
}

// listFlag collects the values of a flag that may repeat.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)

	return nil
}

// timeFlag is an RFC 3339 time.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}

	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(v string) error {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", err)
	}
	f.t = t

	return nil
}

func redriveCommand(fs *flag.FlagSet) (check func() error, run runFunc) {
	var ids, types listFlag
	var since, until timeFlag
	fs.Var(&ids, "id", "redrive the event with this `ID` (repeatable)")
	fs.Var(&types, "type", "redrive events of this `TYPE`, such as product.created (repeatable)")
	fs.Var(&since, "since", "redrive events captured at or after this `RFC3339` time")
	fs.Var(&until, "until", "redrive events captured before this `RFC3339` time")

	check = func() error {
		for _, id := range ids {
			if _, err := uuid.Parse(id); err != nil {
				return fmt.Errorf("-id %q is not an event id (a UUID)", id)
			}
		}
		if !since.t.IsZero() && !until.t.IsZero() && !since.t.Before(until.t) {
			return errors.New("-since must be before -until")
		}
		return nil
	}

	run = func(ctx context.Context, store *outbox.Store, stdout io.Writer) error {
		n, err := store.Redrive(ctx, outbox.RedriveFilter{
			IDs: ids, Types: types, From: since.t, To: until.t,
		})
		if err != nil {
			return err
		}

		fmt.Fprintf(stdout, "redriven %d failed events; they are pending again\n", n)

		return nil
	}

	return check, run
}

func pruneCommand(fs *flag.FlagSet) (check func() error, run runFunc) {
	olderThan := fs.Duration("older-than", 0,
		"delete published events published longer ago than this, such as 720h (required)")
	batch := fs.Int("batch", outbox.DefaultPruneBatch, "rows deleted per statement")

	check = func() error {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "older-than" })
		switch {
		case !set:
			return errors.New("-older-than is required, such as -older-than 720h for 30 days")
		case *olderThan < 0:
			return errors.New("-older-than cannot be negative")
		case *batch < 1:
			return errors.New("-batch must be at least 1")
		}
		return nil
	}

	run = func(ctx context.Context, store *outbox.Store, stdout io.Writer) error {
		n, err := store.Prune(ctx, *olderThan, *batch)
		fmt.Fprintf(stdout, "pruned %d published events older than %s\n", n, *olderThan)

		return err
	}

	return check, run
}
