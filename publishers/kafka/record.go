package kafka

import (
	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// Header names of the records this package writes.
const (
	// HeaderEventID carries the event id.
	HeaderEventID = "event_id"

	// HeaderEventType carries the event type, such as "product.created".
	HeaderEventType = "event_type"

	// HeaderEntityKey carries the entity key, such as "Product:42". It is
	// absent when the event has none.
	HeaderEntityKey = "entity_key"

	// HeaderTraceParent carries the W3C trace context of the request that
	// caused the event. It is absent when there was none.
	HeaderTraceParent = "traceparent"
)

// recordMarshaler turns a relay message into a Kafka record. It implements
// Watermill's Marshaler, whose default would copy every metadata entry into
// a header and set no key.
type recordMarshaler struct{}

// Marshal builds the record for msg: the payload as value, the entity key as
// key, the event id and type (plus entity key and trace context) as headers.
func (recordMarshaler) Marshal(
	topic string, msg *message.Message,
) (*sarama.ProducerMessage, error) {
	headers := []sarama.RecordHeader{
		header(HeaderEventID, msg.UUID),
		header(HeaderEventType, msg.Metadata.Get(publishers.MetadataType)),
		header(wkafka.UUIDHeaderKey, msg.UUID),
	}

	record := &sarama.ProducerMessage{
		Topic: topic,
		Value: sarama.ByteEncoder(msg.Payload),
	}

	if key := msg.Metadata.Get(publishers.MetadataEntityKey); key != "" {
		record.Key = sarama.StringEncoder(key)
		headers = append(headers, header(HeaderEntityKey, key))
	}
	if tp := msg.Metadata.Get(publishers.MetadataTraceParent); tp != "" {
		headers = append(headers, header(HeaderTraceParent, tp))
	}
	record.Headers = headers

	return record, nil
}

func header(key, value string) sarama.RecordHeader {
	return sarama.RecordHeader{Key: []byte(key), Value: []byte(value)}
}

// recordSize is Sarama's estimate of the encoded size of a record in a v2
// record batch, the one it compares with Producer.MaxMessageBytes.
func recordSize(record *sarama.ProducerMessage) int {
	const recordBatchVersion = 2

	return record.ByteSize(recordBatchVersion)
}
