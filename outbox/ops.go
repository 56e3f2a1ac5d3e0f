package outbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// RedriveFilter selects the failed rows that [Store.Redrive] sends again.
// The fields combine with AND; an empty field selects everything, so the
// zero value selects every failed row.
type RedriveFilter struct {
	// IDs selects rows by event id.
	IDs []string

	// Types selects rows by event type, such as "product.created".
	Types []string

	// From selects rows created at or after it.
	From time.Time

	// To selects rows created before it.
	To time.Time
}

// Redrive puts the failed rows that f selects back to pending, to be
// delivered again by any running relay, and returns how many it changed.
// Their attempts go back to zero and their back-off and last error are
// cleared, but the destinations that already accepted an event stay
// recorded, so that a redriven event goes only to those that have not. On
// PostgreSQL it notifies [NotifyChannel], so that relays wake up at once.
//
// A redriven event arrives after the newer events of its entity that were
// delivered while it was failed; newer events of its entity still pending
// wait for it. On SQLite, From and To compare as text with created_at, which
// is exact for rows this store wrote.
func (s *Store) Redrive(ctx context.Context, f RedriveFilter) (int64, error) {
	for _, id := range f.IDs {
		if _, err := uuid.Parse(id); err != nil {
			return 0, fmt.Errorf("outbox: redrive: id %q is not a UUID", id)
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return 0, fmt.Errorf("outbox: redrive: From (%s) is not before To (%s)",
			FormatTime(f.From), FormatTime(f.To))
	}

	query, args := s.redriveQuery(f)
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("outbox: redrive failed events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("outbox: redrive failed events: %w", err)
	}

	if n > 0 && s.pg {
		// The rows are already committed; a lost wake-up only means relays
		// find them at their next poll.
		_, _ = s.db.ExecContext(ctx, "SELECT pg_notify(?, '')", NotifyChannel)
	}

	return n, nil
}

func (s *Store) redriveQuery(f RedriveFilter) (string, []any) {
	var sb strings.Builder
	var args []any

	sb.WriteString(`UPDATE events
SET status = 'pending', attempts = 0, available_at = NULL, last_error = NULL
WHERE status = 'failed'`)
	if len(f.IDs) > 0 {
		sb.WriteString(" AND id IN (?)")
		args = append(args, bun.In(f.IDs))
	}
	if len(f.Types) > 0 {
		sb.WriteString(" AND type IN (?)")
		args = append(args, bun.In(f.Types))
	}
	if !f.From.IsZero() {
		sb.WriteString(" AND created_at >= ?")
		args = append(args, s.timeArg(f.From))
	}
	if !f.To.IsZero() {
		sb.WriteString(" AND created_at < ?")
		args = append(args, s.timeArg(f.To))
	}

	return sb.String(), args
}

// timeArg is t as the dialect compares it with a timestamp column: a
// timestamptz on PostgreSQL, text in the store's fixed format on SQLite.
func (s *Store) timeArg(t time.Time) any {
	if s.pg {
		return t.UTC()
	}

	return FormatTime(t)
}

// DefaultPruneBatch is the number of rows one statement of [Store.Prune]
// deletes when the caller gives none.
const DefaultPruneBatch = 1000

// Prune statements delete one batch, oldest first, so that the scan of the
// (status, created_at) index finds old rows before recent ones. Arguments:
// cutoff, batch size.
const (
	sqlitePrune = `DELETE FROM events WHERE rowid IN (
	SELECT rowid FROM events
	WHERE status = 'published' AND published_at < ?
	ORDER BY created_at
	LIMIT ?)`

	pgPrune = `DELETE FROM events WHERE id IN (
	SELECT id FROM events
	WHERE status = 'published' AND published_at < ?
	ORDER BY created_at
	LIMIT ?)`
)

// Prune deletes published rows whose published_at is older than olderThan,
// batch rows per statement (DefaultPruneBatch if batch is not positive),
// until a statement deletes fewer; it returns how many rows it deleted.
// Each statement is a transaction of its own, so no lock is held for long
// and relays go on between batches. Pending and failed rows are never
// deleted. On SQLite timestamps compare as text, which orders correctly for
// the format this store writes.
func (s *Store) Prune(ctx context.Context, olderThan time.Duration, batch int) (int64, error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("outbox: prune: negative age %s", olderThan)
	}
	if batch <= 0 {
		batch = DefaultPruneBatch
	}

	query := sqlitePrune
	if s.pg {
		query = pgPrune
	}
	cutoff := s.timeArg(time.Now().Add(-olderThan))

	var total int64
	for {
		res, err := s.db.ExecContext(ctx, query, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("outbox: prune published events: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("outbox: prune published events: %w", err)
		}
		total += n

		if n < int64(batch) {
			return total, nil
		}
	}
}

// Backlog is the state of the rows not yet published.
type Backlog struct {
	// Pending counts rows waiting for delivery, including rows being
	// delivered and rows waiting for a retry.
	Pending int64

	// Failed counts rows that ran out of attempts and wait for a redrive.
	Failed int64

	// OldestPending is the capture time of the oldest pending row; zero
	// when there is none.
	OldestPending time.Time
}

// backlogQuery reads the backlog on both dialects: SQLite has aggregate
// FILTER clauses since 3.30, and min over its text timestamps is the oldest
// because the store's format sorts in time order.
const backlogQuery = `SELECT
	count(*) FILTER (WHERE status = 'pending'),
	count(*) FILTER (WHERE status = 'failed'),
	min(created_at) FILTER (WHERE status = 'pending')
FROM events WHERE status IN ('pending', 'failed')`

// Backlog counts pending and failed rows and finds the oldest pending one,
// in one query served by the (status, created_at) index.
func (s *Store) Backlog(ctx context.Context) (Backlog, error) {
	var (
		b      Backlog
		oldest any
	)
	err := s.db.QueryRowContext(ctx, backlogQuery).Scan(&b.Pending, &b.Failed, &oldest)
	if err != nil {
		return Backlog{}, fmt.Errorf("outbox: read backlog: %w", err)
	}

	// A created_at this library cannot read leaves the age unknown rather
	// than failing health checks and metrics.
	b.OldestPending, _ = scanTime(oldest)

	return b, nil
}
