// Package sqs is the Amazon SQS destination: it sends every event as one
// message to a configured queue through Watermill's SQS publisher.
//
// Importing the package registers the destination under the name "sqs", so
// that EVENTS_DESTINATION=sqs works:
//
//	import _ "github.com/apsoai/domainevents/publishers/sqs"
//
// # Messages
//
// The message body is the event body exactly as the relay handed it over;
// it is never decoded or re-encoded. The message attributes, all of type
// String, are:
//
//   - event_id: the event id ([AttributeEventID]);
//   - event_type: the event type, such as "product.created"
//     ([AttributeEventType]);
//   - entity_key: the entity key, when there is one ([AttributeEntityKey]);
//   - traceparent: the W3C trace context, when there is one
//     ([AttributeTraceParent]);
//   - _watermill_message_uuid: the event id again, so that a Watermill
//     subscriber sees it as the message UUID.
//
// That is at most five of the ten attributes SQS allows; other metadata is
// not sent.
//
// On a FIFO queue (a URL ending in ".fifo") the message group id is the
// entity key, or the event id for an event without one, and the
// deduplication id is the event id. An entity key that SQS would refuse as a
// group id (longer than 128 characters, or holding characters other than
// ASCII letters, digits and punctuation) is replaced by "sha256:" and the hex
// digest of the key, so the events of one entity still share a group.
//
// # Guarantees
//
// [Publisher.Publish] returns nil only when SQS accepted every message.
// Delivery is at least once: a retry after an answer that was lost sends
// the message again, and a standard queue may itself deliver a message more
// than once, so consumers dedupe on the event id. On a FIFO queue SQS drops
// a repeat within its five-minute deduplication window and keeps the
// messages of one group in the order they were sent, so events of one entity
// stay in order when the relay publishes one after the other. A standard
// queue promises no order.
//
// Each message is sent with its own SendMessage call: Watermill's SQS
// publisher (v1.0.1) has no batch path, so SendMessageBatch is not used.
// Concurrent calls to Publish run their requests in parallel.
//
// The queue must exist: the publisher uses the configured URL as it is and
// never looks it up by name or creates it.
//
// # Failures
//
// A message larger than [Config.MaxBytes], counting the body and every
// attribute's name, type and value as SQS does, is refused before sending
// with an error wrapping [publishers.ErrPermanent], as is a message SQS
// refuses for its content. Throttling, server errors, a missing queue and
// network failures wrap [publishers.ErrUnavailable].
//
// SQS accepted at most 256 KiB per message for a long time; AWS has since
// raised the limit to 1 MiB. MaxBytes defaults to 256 KiB so that it works
// with queues whose MaximumMessageSize was left at the old default; raise it
// (and the queue's MaximumMessageSize) to send larger events.
//
// # Environment
//
// The factory registered for "sqs" reads:
//
//   - AWS_REGION: the queue's region (required);
//   - EVENTS_SQS_QUEUE_URL: the queue URL (required);
//   - EVENTS_SQS_MAX_BYTES: see [Config.MaxBytes].
//
// Credentials come from the AWS SDK's default chain (environment, shared
// files, container and instance roles), and the SDK's endpoint variables
// (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SQS) keep working, so a local emulator
// can stand in for SQS.
package sqs
