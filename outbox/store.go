package outbox

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/driver/pgdriver"
)

// DefaultTable is the name of the events table.
const DefaultTable = "events"

// NotifyChannel is the PostgreSQL channel that a commit which wrote events
// notifies, so that relays in other processes wake up at once.
const NotifyChannel = "domainevents"

// ErrUnsupportedDialect is returned for a database other than SQLite and
// PostgreSQL.
var ErrUnsupportedDialect = errors.New("outbox: unsupported database dialect")

// Store reads and writes the events table of one database. It is safe for
// concurrent use.
type Store struct {
	db   *bun.DB
	exec bun.IDB // where queries run: db, or a connection of its pool
	q    queries
	pg   bool

	// simpleQuery says the driver sends a query without arguments as one
	// simple-protocol message, which may hold several statements.
	simpleQuery bool
}

// pgPlannerSettings steer the claim to the ordered index scan.
const pgPlannerSettings = "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off;\n"

// NewStore returns a store for db, which must use the SQLite or PostgreSQL
// dialect of Bun.
func NewStore(db *bun.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("outbox: nil *bun.DB")
	}

	switch name := db.Dialect().Name(); name {
	case dialect.SQLite:
		return &Store{db: db, exec: db, q: sqliteQueries}, nil
	case dialect.PG:
		_, simple := db.Driver().(pgdriver.Driver)
		return &Store{db: db, exec: db, q: pgQueries, pg: true, simpleQuery: simple}, nil
	default:
		return nil, fmt.Errorf("%w %q: use PostgreSQL (pgdialect) or SQLite (sqlitedialect)",
			ErrUnsupportedDialect, name.String())
	}
}

// DB returns the database the store works on.
func (s *Store) DB() *bun.DB { return s.db }

// On returns a copy of the store whose queries run on conn, a connection
// taken from the store's database with DB().Conn. A relay keeps one for its
// claims and one for its marks so that a small idle pool does not make it
// reconnect for every batch.
func (s *Store) On(conn bun.IDB) *Store {
	c := *s
	c.exec = conn

	return &c
}

// Postgres reports whether the store works on PostgreSQL.
func (s *Store) Postgres() bool { return s.pg }

// CreateTable creates the events table and its indexes if they do not exist,
// and adds this library's extra columns to a table that lacks them (one
// created by another implementation). It is safe to call on every start.
func (s *Store) CreateTable(ctx context.Context) error {
	for _, stmt := range s.q.create {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("outbox: create events table: %w", err)
		}
	}

	have, err := s.columns(ctx)
	if err != nil {
		return err
	}

	for _, col := range s.q.extraColumns {
		if have[col.name] {
			continue
		}
		stmt := "ALTER TABLE events ADD COLUMN " + col.name + " " + col.ddl
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("outbox: add column %s to events: %w", col.name, err)
		}
	}

	for _, stmt := range s.q.indexes {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("outbox: create events index: %w", err)
		}
	}

	return nil
}

func (s *Store) columns(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, s.q.listColumns)
	if err != nil {
		return nil, fmt.Errorf("outbox: list events columns: %w", err)
	}
	defer rows.Close()

	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("outbox: list events columns: %w", err)
		}
		have[name] = true
	}

	return have, rows.Err()
}

// Insert writes events as pending rows with one multi-row INSERT through
// idb, which is normally the business transaction. On PostgreSQL the same
// statement notifies [NotifyChannel], which PostgreSQL delivers when the
// transaction commits.
func (s *Store) Insert(ctx context.Context, idb bun.IDB, events []Event) error {
	if len(events) == 0 {
		return nil
	}

	var sb strings.Builder
	args := make([]any, 0, len(events)*s.q.insertArgs)

	sb.WriteString(s.q.insertHead)
	now := time.Now()
	for i := range events {
		e := &events[i]
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(s.q.insertRow)

		meta, err := encodeMetadata(e.Metadata)
		if err != nil {
			return fmt.Errorf("outbox: event %s metadata: %w", e.ID, err)
		}
		created := e.CreatedAt
		if created.IsZero() {
			created = now
		}
		args = s.q.appendInsertArgs(args, e, string(meta), created)
	}
	sb.WriteString(s.q.insertTail)

	if _, err := idb.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("outbox: insert %d events: %w", len(events), err)
	}

	return nil
}

// Claim leases up to limit pending rows whose time has come, oldest first,
// at most one per entity key and never one whose entity has an older pending
// row. The lease keeps other relays away until it runs out, it is renewed by
// nothing, and it ends with [Store.Complete] or [Store.Release].
func (s *Store) Claim(ctx context.Context, limit int, lease time.Duration) ([]Claimed, error) {
	var args []any
	if s.pg {
		args = []any{lease.Milliseconds(), limit}
	} else {
		now := time.Now()
		args = []any{FormatTime(now.Add(lease)), FormatTime(now), limit}
	}

	var out []Claimed
	claim := func(ctx context.Context, conn bun.IDB, query string) error {
		rows, err := conn.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()

		for rows.Next() {
			c, err := s.scanClaimed(rows)
			if err != nil {
				return err
			}
			out = append(out, c)
		}

		return rows.Err()
	}

	// On PostgreSQL the share of pending rows swings from none to all, so
	// the planner's statistics are often stale, and with them it may sort the
	// whole backlog for every claim. Walking the pending index in order keeps
	// a claim as cheap with a million pending rows as with ten.
	var err error
	switch {
	case s.pg && s.simpleQuery:
		// One round trip: the statements of one simple query share an
		// implicit transaction, which SET LOCAL lasts for.
		err = claim(ctx, s.exec, pgPlannerSettings+s.q.claim)
	case s.pg:
		err = s.exec.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, pgPlannerSettings); err != nil {
				return err
			}
			return claim(ctx, tx, s.q.claim)
		})
	default:
		err = claim(ctx, s.exec, s.q.claim)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: claim events: %w", err)
	}

	sortClaimed(out)

	return out, nil
}

func (s *Store) scanClaimed(rows *sql.Rows) (Claimed, error) {
	var (
		c                           Claimed
		raw, jsonText               sql.NullString
		created                     any
		key, delivered, meta, topic sql.NullString
	)

	err := rows.Scan(&c.ID, &c.Type, &raw, &jsonText, &c.Attempts, &created,
		&key, &delivered, &meta, &topic, &c.Seq)
	if err != nil {
		return c, err
	}

	switch {
	case raw.Valid:
		c.Payload = []byte(raw.String)
	case jsonText.Valid:
		c.Payload = []byte(jsonText.String)
	default:
		c.Payload = []byte("null")
	}

	if c.CreatedAt, err = scanTime(created); err != nil {
		c.Unreadable = fmt.Errorf("created_at %v: %w", created, err)
	}
	if !json.Valid(c.Payload) {
		c.Unreadable = errors.New("payload is not JSON")
	}

	c.EntityKey = key.String
	c.Topic = topic.String
	if delivered.String != "" {
		c.DeliveredTo = strings.Split(delivered.String, ",")
	}
	if meta.String != "" {
		if err := json.Unmarshal([]byte(meta.String), &c.Metadata); err != nil {
			c.Unreadable = fmt.Errorf("metadata: %w", err)
		}
	}

	return c, nil
}

// Outcome is what became of one claimed row.
type Outcome struct {
	// ID is the event id.
	ID string

	// Status is the row's new status: StatusPublished, StatusFailed, or
	// StatusPending to try again.
	Status string

	// CountAttempt adds one to the row's attempts. A delivery that was not
	// tried (its destination was down, or the relay is shutting down) does
	// not count.
	CountAttempt bool

	// RetryAfter is how long a pending row waits before it can be claimed
	// again.
	RetryAfter time.Duration

	// DeliveredTo lists every destination that has accepted the event so
	// far.
	DeliveredTo []string

	// Error describes the last failure; empty on success.
	Error string
}

// maxBatch bounds the rows one statement writes.
const maxBatch = 500

// Complete writes the outcomes of claimed rows, in as few statements as the
// batch allows: one for the published rows, one for the rest.
func (s *Store) Complete(ctx context.Context, outcomes []Outcome) error {
	for len(outcomes) > 0 {
		n := min(len(outcomes), maxBatch)
		if err := s.complete(ctx, outcomes[:n]); err != nil {
			return err
		}
		outcomes = outcomes[n:]
	}

	return nil
}

func (s *Store) complete(ctx context.Context, outcomes []Outcome) error {
	var published []string
	var other []Outcome

	for _, o := range outcomes {
		if o.Status == StatusPublished {
			published = append(published, o.ID)
		} else {
			other = append(other, o)
		}
	}

	if len(published) > 0 {
		var args []any
		if !s.pg {
			args = append(args, FormatTime(time.Now()))
		}
		args = append(args, bun.In(published))
		if _, err := s.exec.ExecContext(ctx, s.q.markPublished, args...); err != nil {
			return fmt.Errorf("outbox: mark %d events published: %w", len(published), err)
		}
	}

	if len(other) == 0 {
		return nil
	}

	var sb strings.Builder
	args := make([]any, 0, len(other)*6)

	sb.WriteString(s.q.updateHead)
	now := time.Now()
	for i, o := range other {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(s.q.updateRow)

		inc := 0
		if o.CountAttempt {
			inc = 1
		}
		var retry any = o.RetryAfter.Milliseconds()
		if !s.pg {
			retry = FormatTime(now.Add(o.RetryAfter))
		}
		args = append(args, o.ID, o.Status, inc, retry,
			strings.Join(o.DeliveredTo, ","), truncate(o.Error, 1000))
	}
	sb.WriteString(s.q.updateTail)

	if _, err := s.exec.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("outbox: record %d delivery failures: %w", len(other), err)
	}

	return nil
}

// Release ends the lease of claimed rows that were not delivered, so that
// any relay can claim them at once. It leaves attempts as they are.
func (s *Store) Release(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}

	_, err := s.exec.ExecContext(ctx,
		"UPDATE events SET available_at = NULL WHERE status = 'pending' AND id IN (?)",
		bun.In(ids))
	if err != nil {
		return fmt.Errorf("outbox: release %d events: %w", len(ids), err)
	}

	return nil
}

// ReleaseDeferred makes pending rows that a relay put off for at most within
// claimable at once. A row whose wait is longer (a lease another relay holds,
// or a back-off) is left alone.
func (s *Store) ReleaseDeferred(ctx context.Context, ids []string, within time.Duration) error {
	if len(ids) == 0 {
		return nil
	}

	query := `UPDATE events SET available_at = NULL
WHERE status = 'pending' AND id IN (?) AND available_at <= now() + ? * interval '1 millisecond'`
	args := []any{bun.In(ids), within.Milliseconds()}
	if !s.pg {
		query = `UPDATE events SET available_at = NULL
WHERE status = 'pending' AND id IN (?) AND available_at <= ?`
		args = []any{bun.In(ids), FormatTime(time.Now().Add(within))}
	}

	if _, err := s.exec.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("outbox: release %d deferred events: %w", len(ids), err)
	}

	return nil
}

func encodeMetadata(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}

	return json.Marshal(m)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}

	return s[:n]
}

func sortClaimed(cs []Claimed) {
	slices.SortFunc(cs, func(a, b Claimed) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}

// ErrNoTable is returned by [Store.Check] when the events table or some of
// its columns are missing.
var ErrNoTable = errors.New("outbox: events table is missing or incomplete")

// Check verifies that the events table exists with every column the store
// uses, so that a missing migration fails at start-up, not at the first
// event.
func (s *Store) Check(ctx context.Context) error {
	have, err := s.columns(ctx)
	if err != nil {
		return err
	}

	var missing []string
	want := []string{"id", "type", "payload", "status", "attempts", "created_at", "published_at"}
	for _, col := range s.q.extraColumns {
		want = append(want, col.name)
	}
	for _, col := range want {
		if !have[col] {
			missing = append(missing, col)
		}
	}
	if len(missing) == 0 {
		return nil
	}

	file := "sqlite.sql"
	if s.pg {
		file = "postgres.sql"
	}
	if len(missing) == len(want) {
		return fmt.Errorf("%w: no table named events; call domainevents.CreateTable(ctx, db) "+
			"at start-up, or apply outbox/schema/%s with your migration tool", ErrNoTable, file)
	}

	return fmt.Errorf("%w: columns %s are missing; call domainevents.CreateTable(ctx, db), "+
		"which adds them, or apply outbox/schema/%s", ErrNoTable, strings.Join(missing, ", "), file)
}
