package bunhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/apsoai/domainevents/outbox"
)

// ErrNoTransaction is the error of a write of an opted-in model outside a
// transaction of [Capture.RunInTx].
var ErrNoTransaction = errors.New("bunhooks: write of an event-emitting model outside a " +
	"unit of work; run it on ginevents.Tx(c) in a request, or inside RunInTx of the " +
	"value domainevents.Register returned")

// ErrNeedsReturning is the error of a bulk UPDATE or DELETE of an opted-in
// model that carries no rows.
var ErrNeedsReturning = errors.New("bunhooks: bulk update or delete of an event-emitting " +
	"model carries no rows for the event; add .Returning(\"*\") to the query")

// Config configures a [Capture].
type Config struct {
	// Entities is the manifest: the models whose changes emit events, each a
	// struct value or a pointer to one, such as (*Product)(nil) or
	// models.Product{}. Required.
	Entities []any

	// Mapper turns changes into event types and payloads. Defaults to
	// [DefaultMapper].
	Mapper Mapper

	// Logger receives debug lines for captured events. Defaults to
	// discarding.
	Logger *slog.Logger

	// OnCommit is called after a transaction that wrote events committed,
	// with the number of events. The relay uses it to wake up at once. It
	// must not block.
	OnCommit func(n int)

	// Metadata returns metadata to store with each event of a transaction
	// begun with ctx, over the trace context and what [WithMetadata] put in
	// ctx. Optional.
	Metadata func(ctx context.Context) map[string]string
}

func (c *Config) setDefaults() {
	if c.Mapper == nil {
		c.Mapper = DefaultMapper{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if len(c.Entities) == 0 {
		return errors.New("Entities is empty: name at least one model, such as (*Product)(nil)")
	}
	for i, e := range c.Entities {
		if _, err := entityType(e); err != nil {
			return fmt.Errorf("Entities[%d]: %w", i, err)
		}
	}

	return nil
}

func entityType(e any) (reflect.Type, error) {
	if e == nil {
		return nil, errors.New("nil entry; write (*Product)(nil) or Product{}")
	}

	t := reflect.TypeOf(e)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a struct type", reflect.TypeOf(e))
	}

	return t, nil
}

// entity is one opted-in model.
type entity struct {
	name  string
	table *schema.Table
}

// Capture is the query hook that turns writes of opted-in models into
// events. Create it with [New]; it is safe for concurrent use.
type Capture struct {
	db       *bun.DB
	store    *outbox.Store
	cfg      Config
	entities map[reflect.Type]entity

	mu    sync.Mutex
	units map[uintptr]*unit
}

// unit is the events one transaction has captured so far.
type unit struct {
	mu     sync.Mutex
	events []outbox.Event
	err    error
	meta   map[string]string
}

// New returns a Capture for the models in cfg.Entities and installs it on
// db as a query hook. Install it once per *bun.DB.
func New(db *bun.DB, store *outbox.Store, cfg Config) (*Capture, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bunhooks: invalid config: %w", err)
	}
	if db == nil || store == nil {
		return nil, errors.New("bunhooks: New needs a *bun.DB and an *outbox.Store")
	}

	c := &Capture{
		db:       db,
		store:    store,
		cfg:      cfg,
		entities: map[reflect.Type]entity{},
		units:    map[uintptr]*unit{},
	}
	for _, e := range cfg.Entities {
		t, _ := entityType(e)
		c.entities[t] = entity{name: t.Name(), table: db.Table(t)}
	}

	db.AddQueryHook(c) //nolint:staticcheck // the hook must see queries on this very *bun.DB

	return c, nil
}

// RunInTx runs fn in a transaction and commits it if fn returns nil,
// writing the events that fn's writes captured in the same transaction just
// before COMMIT. It rolls back if fn returns an error or panics (the panic
// goes on), if an event could not be built, or if writing the events fails.
// Writes of opted-in models must go through tx.
func (c *Capture) RunInTx(
	ctx context.Context, opts *sql.TxOptions,
	fn func(ctx context.Context, tx bun.Tx) error,
) (err error) {
	tx, err := c.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("bunhooks: begin transaction: %w", err)
	}

	u := &unit{meta: c.unitMetadata(ctx)}
	key := txKey(tx.Tx)
	c.mu.Lock()
	c.units[key] = u
	c.mu.Unlock()

	committed := false
	defer func() {
		c.mu.Lock()
		delete(c.units, key)
		c.mu.Unlock()

		if !committed {
			_ = tx.Rollback()
		}
	}()

	if err := fn(ctx, tx); err != nil {
		return err
	}

	u.mu.Lock()
	events, uerr := u.events, u.err
	u.mu.Unlock()
	if uerr != nil {
		return uerr
	}

	if err := c.store.Insert(ctx, tx, events); err != nil {
		return fmt.Errorf("bunhooks: write events: %w", err)
	}

	committed = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("bunhooks: commit: %w", err)
	}

	if len(events) > 0 {
		c.cfg.Logger.Debug("events captured", "count", len(events))
		if c.cfg.OnCommit != nil {
			c.cfg.OnCommit(len(events))
		}
	}

	return nil
}

func txKey(tx *sql.Tx) uintptr {
	return reflect.ValueOf(tx).Pointer()
}

// BeforeQuery refuses writes of opted-in models that could not be captured
// atomically, by handing Bun a context that is already done with the reason
// as its error.
func (c *Capture) BeforeQuery(ctx context.Context, ev *bun.QueryEvent) context.Context {
	action, ent, ok := c.classify(ev)
	if !ok {
		return ctx
	}

	if c.unitOf(ev.IQuery) == nil {
		return refused{ctx, fmt.Errorf("%w (model %s)", ErrNoTransaction, ent.name)}
	}

	if action != Created && !hasReturning(ev.Query) && !carriesRows(ev.IQuery, ent) {
		return refused{ctx, fmt.Errorf("%w (model %s)", ErrNeedsReturning, ent.name)}
	}

	return ctx
}

// AfterQuery records the events of a successful write.
func (c *Capture) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	if ev.Err != nil {
		return
	}

	action, ent, ok := c.classify(ev)
	if !ok {
		return
	}

	u := c.unitOf(ev.IQuery)
	if u == nil {
		return // refused in BeforeQuery
	}

	if ev.Result != nil {
		if n, err := ev.Result.RowsAffected(); err == nil && n == 0 {
			return
		}
	}

	events, err := c.events(ev.IQuery, ent, action, u.meta)

	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil && u.err == nil {
		u.err = err
	}
	u.events = append(u.events, events...)
}

// classify says whether the query writes an opted-in model, and how.
func (c *Capture) classify(ev *bun.QueryEvent) (Action, entity, bool) {
	var action Action
	switch ev.IQuery.(type) {
	case *bun.InsertQuery:
		action = Created
	case *bun.UpdateQuery:
		action = Updated
	case *bun.DeleteQuery:
		action = Removed
	default:
		return "", entity{}, false
	}

	tm, ok := ev.IQuery.GetModel().(bun.TableModel)
	if !ok || tm.Table() == nil {
		return "", entity{}, false
	}

	ent, ok := c.entities[tm.Table().Type]

	return action, ent, ok
}

func (c *Capture) unitOf(q bun.Query) *unit {
	key, ok := queryTx(q)
	if !ok {
		return nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	return c.units[key]
}

// queryTx finds the *sql.Tx a query runs on. Bun keeps the connection in an
// unexported field and offers no accessor, so it is read by reflection; the
// tests pin this against the Bun version in go.mod.
func queryTx(q bun.Query) (uintptr, bool) {
	v := reflect.ValueOf(q)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0, false
	}

	f := v.Elem().FieldByName("conn")
	if !f.IsValid() || f.Kind() != reflect.Interface || f.IsNil() {
		return 0, false
	}

	conn := f.Elem()
	switch conn.Type() {
	case reflect.TypeFor[bun.Tx]():
		tx := conn.FieldByName("Tx")
		if tx.IsNil() {
			return 0, false
		}
		return tx.Pointer(), true
	case reflect.TypeFor[*sql.Tx]():
		return conn.Pointer(), true
	}

	return 0, false
}

func hasReturning(query string) bool {
	return strings.Contains(query, " RETURNING ")
}

// carriesRows reports whether the query's model holds row data: a non-nil
// struct with a value besides its primary key, or a non-empty slice.
func carriesRows(q bun.Query, ent entity) bool {
	rows := modelRows(q.GetModel())
	if len(rows) == 0 {
		return false
	}

	for _, row := range rows {
		for _, f := range ent.table.Fields {
			if !f.IsPK && !f.HasZeroValue(row) {
				return true
			}
		}
	}

	return false
}

// modelRows returns the struct values a model holds.
func modelRows(m bun.Model) []reflect.Value {
	if m == nil {
		return nil
	}

	v := reflect.ValueOf(m.Value())
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}

	switch v.Kind() {
	case reflect.Struct:
		return []reflect.Value{v}
	case reflect.Slice:
		rows := make([]reflect.Value, 0, v.Len())
		for i := range v.Len() {
			e := v.Index(i)
			for e.Kind() == reflect.Pointer {
				if e.IsNil() {
					break
				}
				e = e.Elem()
			}
			if e.Kind() == reflect.Struct {
				rows = append(rows, e)
			}
		}
		return rows
	}

	return nil
}

func (c *Capture) events(
	q bun.Query, ent entity, action Action, meta map[string]string,
) ([]outbox.Event, error) {
	rows := modelRows(q.GetModel())
	eventType := c.cfg.Mapper.EventType(ent.name, action)
	now := time.Now()

	events := make([]outbox.Event, 0, len(rows))
	for _, row := range rows {
		payload, err := c.cfg.Mapper.Payload(row.Addr().Interface(), action)
		if err != nil {
			return nil, fmt.Errorf("bunhooks: payload of %s: %w", eventType, err)
		}

		id, err := uuid.NewRandom()
		if err != nil {
			return nil, fmt.Errorf("bunhooks: event id: %w", err)
		}

		events = append(events, outbox.Event{
			ID:        id.String(),
			Type:      eventType,
			Payload:   payload,
			EntityKey: entityKey(ent, row),
			Metadata:  meta,
			CreatedAt: now,
		})
	}

	return events, nil
}

// entityKey is "Type:pk" (or "Type:pk1,pk2"); empty for a model without a
// primary key.
func entityKey(ent entity, row reflect.Value) string {
	if len(ent.table.PKs) == 0 {
		return ""
	}

	var b strings.Builder
	b.WriteString(ent.name)
	b.WriteByte(':')
	for i, pk := range ent.table.PKs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, pk.Value(row).Interface())
	}

	return b.String()
}

// refused is a context that is already done, with the reason a write was
// refused as its error; database/sql returns that error before it touches a
// connection.
type refused struct {
	context.Context
	err error
}

var closed = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (r refused) Done() <-chan struct{} { return closed }
func (r refused) Err() error            { return r.err }
