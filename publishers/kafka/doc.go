// Package kafka is the Kafka destination: it writes every event as one record
// to a configured topic through Watermill's Kafka publisher (Sarama).
//
// Importing the package registers the destination under the name "kafka",
// so that EVENTS_DESTINATION=kafka works:
//
//	import _ "github.com/apsoai/domainevents/publishers/kafka"
//
// # Records
//
// The record value is the event body exactly as the relay handed it over;
// it is never decoded or re-encoded. The record key is the entity key (such
// as "Product:42"), so that all events of one entity land in one partition.
// Events without an entity key have no record key and are spread over the
// partitions. The headers are:
//
//   - event_id: the event id ([HeaderEventID]);
//   - event_type: the event type, such as "product.created" ([HeaderEventType]);
//   - entity_key: the entity key, when there is one ([HeaderEntityKey]);
//   - traceparent: the W3C trace context, when there is one ([HeaderTraceParent]);
//   - _watermill_message_uuid: the event id again, so that a Watermill
//     subscriber sees it as the message UUID.
//
// Consumers must not rely on the order of the headers.
//
// # Guarantees
//
// [Publisher.Publish] returns nil only when every in-sync replica of the
// partition has the record (acks=all). The producer is idempotent, so a
// retry inside Sarama never writes a record twice, and it keeps one request
// in flight per broker, so retries do not reorder records: an event published
// after Publish returned for an earlier event with the same key lands after
// it in the same partition. Delivery to consumers is still at least once
// overall: the relay sends an event again when it cannot tell whether an
// earlier attempt arrived, so consumers dedupe on the event id.
//
// The partition of a key is chosen by Sarama's default hash partitioner
// (FNV-1a). It differs from the murmur2 partitioner of the Java client, so a
// key lands in a different partition than it would from a Java producer.
// Ordering holds between events written by this package.
//
// # Failures
//
// A record larger than [Config.MaxBytes] (in Sarama's estimate of its encoded
// size) is refused before anything is sent, with an error wrapping
// [publishers.ErrPermanent]; a record the broker refuses as too large
// (MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE) gets the same treatment. Keep
// MaxBytes at or below the topic's max.message.bytes: Sarama also caps its
// batches at MaxBytes, so a larger MaxBytes could let a batch of small
// records be refused by the broker. Errors that mean the cluster cannot take
// records right now (no broker reachable, no leader, not enough replicas,
// timeouts, throttling) wrap [publishers.ErrUnavailable].
//
// [New] connects to the cluster. A cluster that cannot be reached is not an
// error there: the publisher connects on its first Publish, so a service
// starts, and captures events, while Kafka is down. A broker that refuses the
// TLS handshake or the SASL credentials fails New at start-up. Sarama
// reconnects on its own once connected.
//
// # Environment
//
// The factory registered for "kafka" reads:
//
//   - EVENTS_KAFKA_BROKERS: comma-separated host:port list (required);
//   - EVENTS_KAFKA_TOPIC: the topic (required);
//   - EVENTS_KAFKA_TLS: "true" to connect with TLS, verified against the
//     system's roots (default false);
//   - EVENTS_KAFKA_TLS_CA_FILE: a PEM file of CA certificates to trust
//     instead of the system's roots; setting it turns TLS on;
//   - EVENTS_KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
//     (default none);
//   - EVENTS_KAFKA_SASL_USERNAME, EVENTS_KAFKA_SASL_PASSWORD: required with
//     a mechanism;
//   - EVENTS_KAFKA_MAX_BYTES: see [Config.MaxBytes];
//   - EVENTS_KAFKA_VERSION: see [Config.Version].
//
// A malformed value is a start-up error that names the variable.
package kafka
