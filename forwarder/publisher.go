package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents/outbox"
	"github.com/apsoai/domainevents/publishers"
)

// TablePublisher is a Watermill publisher that writes messages into the
// events table through one transaction, so that application code can
// publish events of its own atomically with its changes. Wrap it in
// Watermill's forwarder.NewPublisher, or use it directly:
//
//   - A forwarder envelope becomes a row whose id is the inner message's
//     UUID, whose payload is the inner payload, whose type is the inner
//     metadata's [publishers.MetadataType] and whose topic is the envelope's
//     destination topic.
//   - Any other message becomes a row the same way, with the publish topic.
//
// The payload must be JSON and the UUID a UUID, since the table's columns
// say so; other metadata travels to destination headers.
type TablePublisher struct {
	store *outbox.Store
	idb   bun.IDB
	ctx   context.Context
}

// NewTablePublisher returns a publisher that writes through idb, normally
// the bun.Tx of the unit of work, with ctx for the writes.
func NewTablePublisher(ctx context.Context, store *outbox.Store, idb bun.IDB) *TablePublisher {
	return &TablePublisher{store: store, idb: idb, ctx: ctx}
}

// Publish writes the messages as pending rows with one INSERT.
func (p *TablePublisher) Publish(topic string, msgs ...*message.Message) error {
	events := make([]outbox.Event, 0, len(msgs))
	for _, msg := range msgs {
		e, err := tableEvent(topic, msg)
		if err != nil {
			return fmt.Errorf("forwarder: message %s: %w", msg.UUID, err)
		}
		events = append(events, e)
	}

	return p.store.Insert(p.ctx, p.idb, events)
}

// Close does nothing; the transaction belongs to the caller.
func (p *TablePublisher) Close() error { return nil }

func tableEvent(topic string, msg *message.Message) (outbox.Event, error) {
	id, payload, meta := msg.UUID, []byte(msg.Payload), map[string]string(msg.Metadata)

	if env, err := decodeEnvelope(msg.Payload); err == nil {
		id, payload, meta, topic = env.UUID, env.Payload, env.Metadata, env.DestinationTopic
	}

	if _, err := uuid.Parse(id); err != nil {
		return outbox.Event{}, fmt.Errorf("uuid %q is not a UUID, as the events table's id "+
			"must be; create messages with watermill.NewUUID()", id)
	}
	if !json.Valid(payload) {
		return outbox.Event{}, errors.New("payload is not JSON, as the events table's payload must be")
	}

	meta = maps.Clone(meta)
	eventType := meta[publishers.MetadataType]
	if eventType == "" {
		return outbox.Event{}, fmt.Errorf("metadata %q is empty; set it to the event type",
			publishers.MetadataType)
	}
	key := meta[publishers.MetadataEntityKey]
	delete(meta, publishers.MetadataType)
	delete(meta, publishers.MetadataEntityKey)

	return outbox.Event{
		ID:        id,
		Type:      eventType,
		Payload:   payload,
		EntityKey: key,
		Metadata:  meta,
		Topic:     topic,
	}, nil
}
