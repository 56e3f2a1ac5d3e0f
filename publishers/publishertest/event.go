package publishertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// Topic is the topic the suite passes to Publish. Destinations that take
// their target from configuration ignore it.
const Topic = "domain-events"

// body is the event body of the contract: exactly these seven keys, in this
// order.
type body struct {
	ID          string  `json:"id"`
	Type        string  `json:"type"`
	Payload     any     `json:"payload"`
	Status      string  `json:"status"`
	Attempts    int     `json:"attempts"`
	CreatedAt   string  `json:"created_at"`
	PublishedAt *string `json:"published_at"`
}

// createdAtLayout writes RFC 3339 in UTC with microseconds, as the events
// table stores them.
const createdAtLayout = "2006-01-02T15:04:05.000000Z07:00"

// NewEvent builds a message exactly as the relay hands it to a destination:
// its UUID is a fresh UUID v4, its payload is the contract's event body
// (id, type, payload, status, attempts, created_at, published_at) with
// status "pending", and its metadata carries [publishers.MetadataType] and,
// when entityKey is not empty, [publishers.MetadataEntityKey].
//
// The payload is encoded with encoding/json without HTML escaping, so that
// characters such as < and & travel as themselves. NewEvent panics if the
// payload cannot be encoded, as that is a mistake in the calling test.
func NewEvent(eventType, entityKey string, payload any) *message.Message {
	id := watermill.NewUUID()

	raw, err := encodeBody(body{
		ID:        id,
		Type:      eventType,
		Payload:   payload,
		Status:    "pending",
		CreatedAt: time.Now().UTC().Format(createdAtLayout),
	})
	if err != nil {
		panic(fmt.Sprintf("publishertest: encode event body: %v", err))
	}

	return newMessage(id, eventType, entityKey, raw)
}

func encodeBody(b body) ([]byte, error) {
	var buf bytes.Buffer

	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}

	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func newMessage(id, eventType, entityKey string, raw []byte) *message.Message {
	msg := message.NewMessage(id, raw)
	msg.Metadata.Set(publishers.MetadataType, eventType)
	if entityKey != "" {
		msg.Metadata.Set(publishers.MetadataEntityKey, entityKey)
	}

	return msg
}

// newHandWrittenEvent builds an event whose body is valid JSON that any
// decode and re-encode would change: odd spacing, escaped characters and a
// number in exponent form.
func newHandWrittenEvent(eventType string) *message.Message {
	id := watermill.NewUUID()
	raw := fmt.Sprintf(`{ "id" : %q,`+"\n\t"+`"type":%q, "payload" : `+
		`{"note": "caf\u00e9 \u2028 \/ \"q\"", "n": 1.0e2, "empty": {}, "list": [ 1,2 , 3 ]},`+
		` "status":"pending", "attempts" : 0,`+
		` "created_at": "2026-12-04T15:21:24.123456Z", "published_at": null }`,
		id, eventType)

	return newMessage(id, eventType, "Note:1", []byte(raw))
}
