package domainevents

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents/bunhooks"
	"github.com/apsoai/domainevents/forwarder"
	"github.com/apsoai/domainevents/outbox"
	"github.com/apsoai/domainevents/publishers"
	_ "github.com/apsoai/domainevents/publishers/webhook" // webhooks need only the standard library
)

// Options configures [Register].
type Options struct {
	// Entities is the manifest: the models whose changes emit events, as
	// struct values or pointers, such as (*Product)(nil) or models.Product{}.
	// Required.
	Entities []any

	// Mapper overrides the event type and payload of captured changes.
	// Defaults to bunhooks.DefaultMapper.
	Mapper bunhooks.Mapper

	// PollInterval is the relay's fallback poll. Defaults to 5s.
	PollInterval time.Duration

	// BatchSize is the most rows one claim takes. Defaults to 50.
	BatchSize int

	// Logger receives the library's logs. Defaults to slog.Default().
	Logger *slog.Logger

	// Destinations replaces EVENTS_DESTINATION when not empty.
	Destinations []publishers.Destination

	// Getenv reads the environment. Defaults to os.LookupEnv.
	Getenv publishers.Env

	// Relay adjusts the relay beyond PollInterval, BatchSize and Logger,
	// which override the same fields in it. Optional.
	Relay forwarder.Config

	// Metadata returns metadata stored with the events of a unit of work
	// begun with ctx, such as its trace context. Optional.
	Metadata func(ctx context.Context) map[string]string
}

// Events is the running library: capture installed on the database and,
// when destinations are configured, the relay. Close it on shutdown.
type Events struct {
	db      *bun.DB
	store   *outbox.Store
	capture *bunhooks.Capture
	relay   *forwarder.Relay
	log     *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Register installs capture on db for opts.Entities and starts the relay
// to the destinations that EVENTS_DESTINATION names (or opts.Destinations).
// With no destination configured the relay does not start, capture goes on
// and one warning says so. Every configuration error is returned here,
// naming the variable or option at fault and the fix: an unknown
// destination, a missing variable, a webhook secret that does not decode, a
// missing events table.
func Register(db *bun.DB, opts Options) (*Events, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}

	store, err := outbox.NewStore(db)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Check(ctx); err != nil {
		return nil, err
	}

	dests := opts.Destinations
	if len(dests) == 0 {
		if dests, err = publishers.FromEnv(opts.Getenv, opts.Logger); err != nil {
			return nil, err
		}
	}

	e := &Events{db: db, store: store, log: opts.Logger}

	if len(dests) > 0 {
		cfg := opts.Relay
		cfg.Destinations = dests
		cfg.Logger = opts.Logger
		if opts.PollInterval != 0 {
			cfg.PollInterval = opts.PollInterval
		}
		if opts.BatchSize != 0 {
			cfg.BatchSize = opts.BatchSize
		}
		if e.relay, err = forwarder.New(store, cfg); err != nil {
			closeDestinations(dests)
			return nil, err
		}
	}

	e.capture, err = bunhooks.New(db, store, bunhooks.Config{
		Entities: opts.Entities,
		Mapper:   opts.Mapper,
		Logger:   opts.Logger,
		Metadata: opts.Metadata,
		OnCommit: e.wake,
	})
	if err != nil {
		if e.relay != nil {
			_ = e.relay.Close()
		}
		return nil, err
	}

	if e.relay == nil {
		opts.Logger.Warn("no event destination configured; events are captured but not relayed",
			"variable", publishers.EnvDestination)
		return e, nil
	}

	e.relay.Start()
	names := make([]string, len(dests))
	for i, d := range dests {
		names[i] = d.Name
	}
	opts.Logger.Info("domain events registered", "entities", len(opts.Entities),
		"destinations", strings.Join(names, ","))

	return e, nil
}

func closeDestinations(dests []publishers.Destination) {
	for _, d := range dests {
		_ = d.Publisher.Close()
	}
}

func (e *Events) wake(int) {
	if e.relay != nil {
		e.relay.Wake()
	}
}

// RunInTx runs fn in a transaction whose writes of opted-in models are
// captured, and commits it with their events if fn returns nil. It is the
// unit of work for code outside HTTP requests (jobs, commands); the Gin
// middleware uses it for requests.
func (e *Events) RunInTx(
	ctx context.Context, opts *sql.TxOptions,
	fn func(ctx context.Context, tx bun.Tx) error,
) error {
	return e.capture.RunInTx(ctx, opts, fn)
}

// Publisher returns a Watermill publisher that writes messages into the
// events table through tx, for events the application builds itself. Wrap
// it with Watermill's forwarder.NewPublisher or use it as it is; see
// forwarder.TablePublisher.
func (e *Events) Publisher(ctx context.Context, tx bun.IDB) message.Publisher {
	return forwarder.NewTablePublisher(ctx, e.store, tx)
}

// DB returns the database the events are captured on.
func (e *Events) DB() *bun.DB { return e.db }

// Store returns the events table store, for operators' tasks such as
// redrive and retention.
func (e *Events) Store() *outbox.Store { return e.store }

// Relay returns the running relay, or nil when no destination is
// configured.
func (e *Events) Relay() *forwarder.Relay { return e.relay }

// Close stops the relay: it stops claiming, lets deliveries in flight
// finish or releases them, and closes the destinations. Capture stays
// installed, but nothing relays what is captured afterwards until the next
// start. It is safe to call more than once.
func (e *Events) Close() error {
	e.closeOnce.Do(func() {
		if e.relay != nil {
			e.closeErr = e.relay.Close()
		}
	})

	return e.closeErr
}

// CreateTable creates the events table and its indexes if needed, and adds
// the columns this library uses to a table another implementation created.
// It is safe to call on every start. Users of migration tools apply
// outbox/schema/postgres.sql or outbox/schema/sqlite.sql instead.
func CreateTable(ctx context.Context, db *bun.DB) error {
	store, err := outbox.NewStore(db)
	if err != nil {
		return err
	}

	return store.CreateTable(ctx)
}

// ErrNoTable reports a missing or incomplete events table; test for it with
// errors.Is.
var ErrNoTable = outbox.ErrNoTable
