package bunhooks

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
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
// honouring its json tags, shallow: without its Bun relation fields (rel or
// m2m tags), loaded or not. Embed it to override one operation.
type DefaultMapper struct{}

// EventType returns the contract's default event type.
func (DefaultMapper) EventType(entity string, action Action) string {
	r, size := utf8.DecodeRuneInString(entity)
	return string(unicode.ToLower(r)) + entity[size:] + "." + string(action)
}

// Payload returns json.Marshal(entity) without the keys of relation fields.
func (DefaultMapper) Payload(entity any, _ Action) ([]byte, error) {
	b, err := json.Marshal(entity)
	if err != nil {
		return nil, err
	}

	drop := relationKeys(reflect.TypeOf(entity))
	if len(drop) == 0 {
		return b, nil
	}

	return dropKeys(b, drop)
}

// relationCache maps a struct type to the JSON keys of its relation fields.
var relationCache sync.Map

func relationKeys(t reflect.Type) map[string]bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	if keys, ok := relationCache.Load(t); ok {
		return keys.(map[string]bool)
	}

	keys := map[string]bool{}
	for f := range t.Fields() {
		tag := f.Tag.Get("bun")
		if !f.IsExported() || (!strings.Contains(tag, "rel:") && !strings.Contains(tag, "m2m:")) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys[name] = true
	}
	relationCache.Store(t, keys)

	return keys
}

// dropKeys removes top-level keys from a JSON object, keeping the other
// members byte for byte and in order.
func dropKeys(b []byte, drop map[string]bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return b, nil // not an object: nothing to drop
	}

	out := make([]byte, 0, len(b))
	out = append(out, '{')
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}

		key := tok.(string)
		if drop[key] {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(key)
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, value...)
	}

	return append(out, '}'), nil
}
