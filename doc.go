// Package domainevents gives Gin and Bun services reliable domain events:
// every committed change of an opted-in model becomes an event, delivered at
// least once to a webhook, Kafka, SQS or EventBridge. No event is emitted for
// a change that was rolled back, and none is lost once the change committed.
//
// One call wires capture and relay:
//
//	events, err := domainevents.Register(db, domainevents.Options{
//		Entities: []any{(*Product)(nil), (*Order)(nil)},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer events.Close()
//
//	router.Use(ginevents.Middleware(events))
//
// Capture (package bunhooks) writes one row per changed entity into the
// events table, inside the transaction of the change; the table is created
// by [CreateTable]. The relay (package forwarder) claims pending rows in
// batches and delivers them through Watermill's forwarder to the
// destinations that EVENTS_DESTINATION names (package publishers).
//
// Delivery is at least once: consumers must dedupe on the event id. Events
// of one entity arrive in commit order; events of different entities in no
// particular order.
package domainevents
