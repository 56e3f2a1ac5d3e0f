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

// ErrNeedsReturning is the error of a write of an opted-in model whose
// model does not identify the rows it writes: a bulk UPDATE or DELETE by a
// WHERE clause on a nil or empty model, or one whose model lacks its primary
// key, and an INSERT with ON CONFLICT, which may skip rows.
var ErrNeedsReturning = errors.New("bunhooks: this write of an event-emitting model " +
	"cannot tell which rows it wrote; add .Returning(\"*\") to the query")

// ErrNeedsModel is the error of a write to an event-emitting table that
// does not go through its model (Table, TableExpr or a map model), so no
// row of the model can be put in the event.
var ErrNeedsModel = errors.New("bunhooks: write to an event-emitting table without its " +
	"model; use Model(&row) or Model(&rows) of the model named in Entities")

// ErrRowsMismatch is the error of a write whose affected rows are not the
// rows its model holds, such as a struct model updated by a WHERE clause
// that matched several rows, or an insert with ON CONFLICT DO NOTHING that
// skipped some. The unit of work rolls back.
var ErrRowsMismatch = errors.New("bunhooks: the rows a write affected are not the rows " +
	"its model holds; write one row per model element, or use a slice model with " +
	".Returning(\"*\") so that the model holds exactly the affected rows")

// ErrUnitClosed is the error of a write through a transaction whose unit of
// work is already committing, such as one from a goroutine the handler left
// running.
var ErrUnitClosed = errors.New("bunhooks: write after the unit of work began to commit")

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
	tables   map[string]string // table name to model name

	mu    sync.Mutex
	units map[uintptr]*unit
}

// unit is the events one transaction has captured so far.
type unit struct {
	mu     sync.Mutex
	idle   *sync.Cond // signalled when active drops to zero
	active int        // captured writes between BeforeQuery and AfterQuery
	sealed bool       // the unit is committing; no more writes
	events []outbox.Event
	err    error
	meta   map[string]string
}

func newUnit(meta map[string]string) *unit {
	u := &unit{meta: meta}
	u.idle = sync.NewCond(&u.mu)

	return u
}

// enter admits a write, unless the unit is committing.
func (u *unit) enter() bool {
	u.mu.Lock()
	defer u.mu.Unlock()

	if u.sealed {
		return false
	}
	u.active++

	return true
}

// leave records the events of an admitted write.
func (u *unit) leave(events []outbox.Event, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()

	if err != nil && u.err == nil {
		u.err = err
	}
	u.events = append(u.events, events...)
	if u.active--; u.active == 0 {
		u.idle.Broadcast()
	}
}

// seal closes the unit to new writes, waits for the writes under way, and
// returns what the unit captured.
func (u *unit) seal() ([]outbox.Event, error) {
	u.mu.Lock()
	defer u.mu.Unlock()

	u.sealed = true
	for u.active > 0 {
		u.idle.Wait()
	}

	return u.events, u.err
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
	c.tables = map[string]string{}
	for _, e := range cfg.Entities {
		t, _ := entityType(e)
		table := db.Table(t)
		if table.Name == outbox.DefaultTable {
			return nil, fmt.Errorf("bunhooks: invalid config: %s is the events table itself; "+
				"it never emits events", t)
		}
		c.entities[t] = entity{name: t.Name(), table: table}
		c.tables[table.Name] = t.Name()
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

	u := newUnit(c.unitMetadata(ctx))
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

	events, uerr := u.seal()
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

// Keys of the values the hook keeps in a query's QueryEvent.Stash between
// BeforeQuery and AfterQuery.
type (
	admittedKey struct{}
	refusedKey  struct{}
)

// BeforeQuery refuses writes of opted-in models that could not be captured
// atomically, by handing Bun a context that is already done with the reason
// as its error.
func (c *Capture) BeforeQuery(ctx context.Context, ev *bun.QueryEvent) context.Context {
	action, ent, ok := c.classify(ev)
	if !ok {
		if name, emits := c.modelless(ev); emits {
			return c.refuse(ctx, ev, fmt.Errorf("%w (table of %s)", ErrNeedsModel, name))
		}
		return ctx
	}

	u := c.unitOf(ev.IQuery)
	if u == nil {
		return c.refuse(ctx, ev, fmt.Errorf("%w (model %s)", ErrNoTransaction, ent.name))
	}

	if action != Created && !hasReturning(ev.Query) && !identifiesRows(ev.IQuery, ent) {
		return c.refuse(ctx, ev, fmt.Errorf("%w (model %s)", ErrNeedsReturning, ent.name))
	}

	// An insert that may skip rows gets back fewer rows than its model
	// holds, and Bun fills the model's elements in order with what comes
	// back: only RETURNING * makes the elements the rows that were written.
	if action == Created && mayskip(ev.Query) && !strings.Contains(ev.Query, " RETURNING *") {
		return c.refuse(ctx, ev, fmt.Errorf("%w (model %s: an insert with ON CONFLICT "+
			"may skip rows)", ErrNeedsReturning, ent.name))
	}

	if !u.enter() {
		return c.refuse(ctx, ev, fmt.Errorf("%w (model %s)", ErrUnitClosed, ent.name))
	}
	stash(ev)[admittedKey{}] = u

	return ctx
}

func (c *Capture) refuse(ctx context.Context, ev *bun.QueryEvent, err error) context.Context {
	stash(ev)[refusedKey{}] = err

	return refused{ctx, err}
}

func stash(ev *bun.QueryEvent) map[any]any {
	if ev.Stash == nil {
		ev.Stash = map[any]any{}
	}

	return ev.Stash
}

// AfterQuery records the events of a write that BeforeQuery admitted.
func (c *Capture) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	u, admitted := ev.Stash[admittedKey{}].(*unit)
	if !admitted {
		err, refused := ev.Stash[refusedKey{}].(error)
		switch {
		case !refused:
		case ev.Err == nil:
			// The driver ran the write although its context was done.
			c.cfg.Logger.Error("a refused write ran anyway and has no event; "+
				"the driver ignored its cancelled context", "error", err)
		case !errors.Is(ev.Err, err):
			// The driver failed the write with an error of its own; say why.
			c.cfg.Logger.Warn("write refused", "reason", err, "driver_error", ev.Err)
		}
		return
	}
	if ev.Err != nil {
		u.leave(nil, nil)
		return
	}

	affected := int64(-1)
	if ev.Result != nil {
		if n, err := ev.Result.RowsAffected(); err == nil {
			affected = n
		}
	}
	if affected == 0 {
		u.leave(nil, nil)
		return
	}

	action, ent, _ := c.classify(ev)
	events, err := c.events(ev.IQuery, ent, action, u.meta)
	if err == nil && affected > 0 && affected != int64(len(events)) {
		err = fmt.Errorf("%w (%s of model %s: %d rows affected, %d in the model)",
			ErrRowsMismatch, strings.ToLower(ev.IQuery.Operation()), ent.name,
			affected, len(events))
	}
	u.leave(events, err)
}

// modelless reports a write to an opted-in table that does not go through
// the table's model.
func (c *Capture) modelless(ev *bun.QueryEvent) (string, bool) {
	switch ev.IQuery.(type) {
	case *bun.InsertQuery, *bun.UpdateQuery, *bun.DeleteQuery:
	default:
		return "", false
	}

	q, ok := ev.IQuery.(interface{ GetTableName() string })
	if !ok {
		return "", false
	}
	name, ok := c.tables[strings.Trim(q.GetTableName(), "\"`")]

	return name, ok
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

// mayskip reports an insert that can leave rows of its model unwritten or
// update them instead.
func mayskip(query string) bool {
	head := query[:min(len(query), 32)]

	return strings.Contains(query, " ON CONFLICT ") || strings.Contains(query, " ON DUPLICATE KEY ") ||
		strings.Contains(head, "INSERT OR ")
}

func hasReturning(query string) bool {
	return strings.Contains(query, " RETURNING ")
}

// identifiesRows reports whether the model of an update or delete without
// RETURNING says which rows it writes and holds their data: a struct, or a
// non-empty slice of structs, each with its primary key set and a value
// besides it.
func identifiesRows(q bun.Query, ent entity) bool {
	rows := modelRows(q.GetModel())
	if len(rows) == 0 || len(ent.table.PKs) == 0 {
		return false
	}

	for _, row := range rows {
		for _, pk := range ent.table.PKs {
			if pk.HasZeroValue(row) {
				return false
			}
		}
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

// Deadline is in the past, for drivers that look at the deadline rather
// than at Done before they write (database/sql's Conn does not check Done
// first, and pgdriver then only honours the deadline).
func (r refused) Deadline() (time.Time, bool) { return time.Unix(1, 0), true }
