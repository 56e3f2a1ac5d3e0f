// Package eventbridge is the Amazon EventBridge destination: it puts every
// event on a configured event bus with PutEvents, gathering concurrent
// events into shared requests.
//
// Importing the package registers the destination under the name
// "eventbridge", so that EVENTS_DESTINATION=eventbridge works:
//
//	import _ "github.com/apsoai/domainevents/publishers/eventbridge"
//
// # Entries
//
// Each event becomes one PutEvents entry with:
//
//   - Source: "apso.domain-events" ([DefaultSource]);
//   - DetailType: the event type, such as "product.created";
//   - Detail: the event body exactly as the relay handed it over, never
//     decoded or re-encoded;
//   - EventBusName: the configured bus.
//
// The event id is inside the Detail (its "id" key); EventBridge assigns the
// entry an id of its own. The entity key and the trace context are not
// carried, and the entry has no Time, so EventBridge stamps the time it
// received it.
//
// # Batching
//
// Publish hands its entries to one background batcher and waits for their
// results. The batcher sends an entry as soon as a request slot is free,
// together with the entries that arrive within [Config.Linger] after it, up
// to [Config.BatchSize] entries (at most 10, the PutEvents limit) and
// [Config.MaxBytes] in total. At most [Config.MaxInFlight] requests run at
// once; while they do, new entries wait and form the next batch. Each caller
// gets the result of its own entries: when PutEvents accepts some entries of
// a request and refuses others, only the callers of the refused ones see an
// error.
//
// # Guarantees
//
// [Publisher.Publish] returns nil only when EventBridge accepted every
// entry. Delivery is at least once: when an answer is lost the relay sends
// the event again and EventBridge does not deduplicate, so consumers dedupe
// on the id inside the Detail. EventBridge promises no order, so neither
// does this package.
//
// # Failures
//
// Before anything is sent, an entry larger than [Config.MaxBytes] (computed
// as AWS does: the UTF-8 bytes of Source, DetailType and Detail), an event
// type that is empty or longer than 128 characters, and a body that is not a
// JSON object are refused with an error wrapping [publishers.ErrPermanent];
// so is an entry EventBridge refuses as MalformedDetail or InvalidArgument.
// Throttling, internal failures, server errors and network failures wrap
// [publishers.ErrUnavailable].
//
// AWS documents 256 KiB as the limit of one entry and of the entries of one
// request together; MaxBytes defaults to that. Raise it only if AWS accepts
// more for your account.
//
// # Environment
//
// The factory registered for "eventbridge" reads:
//
//   - AWS_REGION: the bus's region (required);
//   - EVENTS_EVENTBRIDGE_BUS: the bus name or ARN (required);
//   - EVENTS_EVENTBRIDGE_MAX_BYTES: see [Config.MaxBytes];
//   - EVENTS_EVENTBRIDGE_LINGER: see [Config.Linger], as a Go duration
//     such as "2ms"; "0" sends without a pause.
//
// Credentials come from the AWS SDK's default chain (environment, shared
// files, container and instance roles), and the SDK's endpoint variables
// (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EVENTBRIDGE) keep working.
package eventbridge
