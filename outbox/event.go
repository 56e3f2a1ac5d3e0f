package outbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Status values of the status column.
const (
	StatusPending   = "pending"
	StatusPublished = "published"
	StatusFailed    = "failed"
)

// timeLayout formats timestamps in UTC with a fixed six-digit fraction, so
// that text timestamps (SQLite) sort in time order and the event body shows
// the same precision on every database.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Event is one row to capture.
type Event struct {
	// ID is the event id, a UUID in its 36-character text form.
	ID string

	// Type is the event type, such as "product.created".
	Type string

	// Payload is the JSON the mapper produced; it is stored and sent byte for
	// byte.
	Payload []byte

	// EntityKey identifies the entity, such as "Product:42". Events with the
	// same key are relayed one at a time in capture order. Empty means the
	// event is not ordered with respect to any other.
	EntityKey string

	// Metadata travels with the event to destinations that carry headers,
	// such as the trace context of the request that caused it.
	Metadata map[string]string

	// Topic is the destination topic recorded by a Watermill forwarder
	// envelope; empty for captured events.
	Topic string

	// CreatedAt is the capture time. The store sets it when zero; on
	// PostgreSQL the database clock sets it at insert, so that events of one
	// entity written by different replicas sort in commit order.
	CreatedAt time.Time
}

// Claimed is a row handed to a relay by [Store.Claim].
type Claimed struct {
	Event

	// Attempts is the number of failed delivery attempts so far.
	Attempts int

	// DeliveredTo lists the destinations that already accepted the event.
	DeliveredTo []string

	// Seq orders rows captured at the same instant.
	Seq int64

	// Unreadable says why the row could not be read as an event (a
	// created_at in no known format, a payload that is not JSON); the relay
	// fails such a row at once instead of blocking the others.
	Unreadable error
}

// Body returns the event body of the contract for this row as it stands:
// the JSON object with exactly the keys id, type, payload, status, attempts,
// created_at and published_at. The payload is embedded byte for byte.
func (c *Claimed) Body() []byte {
	b := make([]byte, 0, len(c.Payload)+192)

	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, c.Type)
	b = append(b, `,"payload":`...)
	b = append(b, c.Payload...)
	b = append(b, `,"status":"pending","attempts":`...)
	b = strconv.AppendInt(b, int64(c.Attempts), 10)
	b = append(b, `,"created_at":"`...)
	b = c.CreatedAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","published_at":null}`...)

	return b
}

func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer

	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes

	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// FormatTime formats t the way the store writes timestamps as text.
func FormatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

// scanTime reads a created_at value as the driver returns it: a time, text
// in one of the usual layouts, or a number of Unix seconds or milliseconds
// (as some ORMs write to SQLite).
func scanTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		return parseTime(v)
	case []byte:
		return parseTime(string(v))
	case int64:
		return unixTime(float64(v)), nil
	case float64:
		return unixTime(v), nil
	case nil:
		return time.Time{}, nil
	}

	return time.Time{}, fmt.Errorf("unexpected type %T", v)
}

// unixTime reads Unix seconds, or milliseconds when the number is too
// large to be seconds of this era.
func unixTime(n float64) time.Time {
	if n > 1e11 {
		return time.UnixMilli(int64(n)).UTC()
	}

	return time.Unix(int64(n), 0).UTC()
}

// parseTime reads a timestamp written as text by this or another
// implementation.
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return unixTime(n), nil
	}

	layouts := []string{
		time.RFC3339Nano,
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999-07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999",
	}

	var err error
	for _, layout := range layouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}

	return time.Time{}, err
}
