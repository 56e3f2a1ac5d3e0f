// Package metrics exports the state of the events table and of a relay as
// Prometheus metrics. It is the only package of this module that imports the
// Prometheus client; services that do not use it do not link it.
//
// A [Collector] reads everything at scrape time: the relay's counters from
// forwarder.Relay.Stats, and the backlog from outbox.Store.Backlog with one
// query bounded by [Config.Timeout]. Register it once:
//
//	c, err := metrics.New(events.Relay(), events.Store(), metrics.Config{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	prometheus.MustRegister(c)
//
// Metrics, all prefixed domainevents_. From the events table:
//
//   - pending_events (gauge): rows waiting for delivery.
//   - failed_events (gauge): rows that ran out of attempts.
//   - oldest_pending_age_seconds (gauge): age of the oldest pending row, 0
//     when none is pending.
//   - backlog_up (gauge): 1 if the backlog query of the scrape succeeded.
//
// Per destination, with the label destination:
//
//   - deliveries_total (counter): events the destination accepted.
//   - delivery_failures_total (counter): deliveries it failed or refused.
//   - delivery_deferrals_total (counter): events held back while it was
//     judged down.
//   - delivery_duration_seconds (summary, sum and count only): time spent
//     in accepted deliveries; sum over count is the mean latency.
//   - destination_down (gauge): 1 while it is judged down.
//
// From the relay: relay_claimed_total, relay_published_total,
// relay_retried_total (rescheduled after a counted failure),
// relay_deferred_total (rescheduled without an attempt) and
// relay_failed_total, all counters of rows.
//
// The backlog gauges describe the whole table, so every replica reports the
// same values: aggregate them with max, not sum. The counters belong to one
// relay and start at zero when its process starts. When the backlog query
// fails, backlog_up is 0, the three backlog gauges are left out of that
// scrape, and the relay's metrics are still exported.
//
// Alert suggestions: failed_events above zero (events wait for a redrive),
// oldest_pending_age_seconds above a few minutes (the relay is stuck or too
// slow), destination_down at 1 for more than a few minutes.
package metrics
