package bunhooks

import (
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// Action is what happened to an entity.
type Action string

// The three actions of the contract.
const (
	Created Action = "created"
	Updated Action = "updated"
	Removed Action = "removed"
)

// Mapper turns a change into an event. Both operations must be safe for
// concurrent use.
type Mapper interface {
	// EventType returns the event type for the named entity type (the Go type
	// name, such as "OrderItem") and the action.
	EventType(entity string, action Action) string

	// Payload serializes the entity, a pointer to the changed struct, as JSON.
	// An error fails the write: the business change does not commit either.
	Payload(entity any, action Action) ([]byte, error)
}

// DefaultMapper is the contract's mapping: the type name with its first
// letter lower-cased, a dot and the action ("OrderItem" and Removed give
// "orderItem.removed"); the payload is the entity as encoding/json writes it,
// honouring its json tags. Embed it to override one operation.
type DefaultMapper struct{}

// EventType returns the contract's default event type.
func (DefaultMapper) EventType(entity string, action Action) string {
	r, size := utf8.DecodeRuneInString(entity)
	return string(unicode.ToLower(r)) + entity[size:] + "." + string(action)
}

// Payload returns json.Marshal(entity).
func (DefaultMapper) Payload(entity any, _ Action) ([]byte, error) {
	return json.Marshal(entity)
}
