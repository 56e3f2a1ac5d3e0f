// Package publishers holds the destinations that events are delivered to and
// the factory that builds them from the environment.
//
// Every destination is a Watermill [message.Publisher]. The relay hands each
// one messages whose payload is the event body of the contract (the JSON
// object with id, type, payload, status, attempts, created_at and
// published_at), whose UUID is the event id, and whose metadata carries
// [MetadataType] and [MetadataEntityKey]. A destination sends the payload
// bytes exactly as they are and reports failure through the error that
// Publish returns; it never retries on its own beyond what its client does
// for one request.
//
// Destinations register themselves by name when their package is imported,
// as database/sql drivers do, so that a service links only the clients it
// uses:
//
//	import _ "github.com/apsoai/domainevents/publishers/kafka"
//
// The webhook destination needs only the standard library and is always
// registered by the root package. [FromEnv] reads EVENTS_DESTINATION and the
// variables of each named destination, and fails at start-up with an error
// that names the variable, the valid values and, for a destination that is
// known but not linked, the import to add.
package publishers
