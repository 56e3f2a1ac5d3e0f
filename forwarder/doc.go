// Package forwarder is the relay: it drains the events table to the
// destinations with Watermill's forwarder (components/forwarder).
//
// The pieces are Watermill's own shapes. A subscriber over the events table
// claims pending rows in batches and emits each as a forwarder envelope whose
// inner message is the event (UUID = event id, payload = the contract's event
// body, metadata = type and entity key). Watermill's Forwarder unwraps it and
// publishes it to a fan-out publisher over the destinations. Acks and nacks
// return to the subscriber, which writes them back in batches. A
// [TablePublisher] writes envelopes made by Watermill's forwarder.NewPublisher
// into the same table, so the forwarder's own write path round-trips.
//
// Guarantees:
//
//   - At least once. A row is marked published only after every destination
//     accepted it. A relay that dies leaves its claimed rows to others once
//     their lease ([Config.Lease]) runs out, so a delivery can repeat:
//     consumers dedupe on the event id.
//   - Order per entity. Events with the same entity key (type and primary
//     key) reach each destination one at a time, in capture order: a row is
//     not claimed while an older row of its entity is pending, even one that
//     waits for a retry. Events of different entities do not wait for each
//     other, and across entities there is no order.
//   - Per-destination progress. A retry goes only to the destinations that
//     have not accepted the event yet.
//   - Failures. A failed delivery costs the row one attempt and a back-off
//     ([Config.Backoff]); the back-off keeps the row out of claims, not out of
//     the order of other entities. After [Config.MaxAttempts] the row is
//     failed. An error wrapping publishers.ErrPermanent fails it at once.
//   - Outages. A destination that fails [Config.TripAfter] deliveries in a
//     row, of at least two events or with no answer at all, is judged down:
//     no more attempts are spent on it, one event probes it every
//     [Config.ProbeInterval] while rows are available (a row whose probe
//     failed waits [Config.DeferDelay]), and the first success resumes full
//     speed: rows put off while it was down become claimable at once. An
//     event that one destination rejects while others succeed still fails
//     after its attempts.
//   - Latency. [Relay.Wake] makes the relay claim at once; the library calls
//     it after every commit that wrote events, and on PostgreSQL with Bun's
//     pgdriver a LISTEN on the commit's NOTIFY wakes relays in other
//     processes. [Config.PollInterval] is the fallback.
package forwarder
