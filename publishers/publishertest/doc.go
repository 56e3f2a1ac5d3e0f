// Package publishertest is the conformance suite that every destination in
// [publishers] runs, so that webhook, Kafka, SQS and EventBridge keep the
// same promises to the relay.
//
// A destination's test builds a [Harness] around a fresh publisher and a
// reader of its own (an httptest receiver, a Kafka consumer, a queue poll)
// and hands a constructor of it to [Run]. The suite then checks that:
//
//   - the event body arrives byte for byte, including non-ASCII text, emoji,
//     HTML characters, a large-ish payload and JSON spacing that a
//     re-encoder would change;
//   - the event id and type are carried;
//   - events of one entity arrive in publishing order when the destination
//     promises it ([Harness.OrderedPerEntity]), and all arrive otherwise;
//   - a broken destination makes Publish return an error, and a healed one
//     accepts the retry;
//   - an event over [Harness.MaxBytes] is refused with an error wrapping
//     [publishers.ErrPermanent] and never sent;
//   - Close is idempotent and Publish after Close fails;
//   - Publish from many goroutines at once delivers every event exactly once.
//
// Arrivals are awaited by polling the reader until a generous deadline. The
// deadline only turns a hang into a failure; the suite never measures speed.
// [NewEvent] builds messages exactly as the relay hands them over, so
// destination tests outside the suite can use it too.
package publishertest
