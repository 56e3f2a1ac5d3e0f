package sqs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apsoai/domainevents/publishers"
)

// Message attribute names of the messages this package sends.
const (
	// AttributeEventID carries the event id.
	AttributeEventID = "event_id"

	// AttributeEventType carries the event type, such as "product.created".
	AttributeEventType = "event_type"

	// AttributeEntityKey carries the entity key, such as "Product:42". It is
	// absent when the event has none.
	AttributeEntityKey = "entity_key"

	// AttributeTraceParent carries the W3C trace context of the request that
	// caused the event. It is absent when there was none.
	AttributeTraceParent = "traceparent"
)

// stringType is the SQS data type of every attribute this package sends.
const stringType = "String"

// maxGroupIDLength is the longest MessageGroupId SQS accepts.
const maxGroupIDLength = 128

// Keys of types.Message.Attributes that carry the FIFO ids from the
// marshaler to sendInput. They are SQS's own system attribute names.
var (
	groupIDKey = string(types.MessageSystemAttributeNameMessageGroupId)
	dedupIDKey = string(types.MessageSystemAttributeNameMessageDeduplicationId)
)

// marshaler turns a relay message into an SQS message. It implements
// Watermill's Marshaler, whose default would copy every metadata entry into
// an attribute and could pass SQS's limit of ten.
type marshaler struct {
	fifo bool
}

// Marshal builds the SQS message for msg: the payload as body, the event id
// and type (plus entity key and trace context) as attributes and, for a FIFO
// queue, the group and deduplication ids.
func (m marshaler) Marshal(msg *message.Message) (*types.Message, error) {
	attrs := map[string]types.MessageAttributeValue{
		AttributeEventID:   stringAttribute(msg.UUID),
		AttributeEventType: stringAttribute(msg.Metadata.Get(publishers.MetadataType)),
		wsqs.UUIDAttribute: stringAttribute(msg.UUID),
	}

	key := msg.Metadata.Get(publishers.MetadataEntityKey)
	if key != "" {
		attrs[AttributeEntityKey] = stringAttribute(key)
	}
	if tp := msg.Metadata.Get(publishers.MetadataTraceParent); tp != "" {
		attrs[AttributeTraceParent] = stringAttribute(tp)
	}

	out := &types.Message{
		Body:              aws.String(string(msg.Payload)),
		MessageAttributes: attrs,
	}

	if m.fifo {
		group := key
		if group == "" {
			group = msg.UUID
		}
		out.Attributes = map[string]string{
			groupIDKey: groupID(group),
			dedupIDKey: msg.UUID,
		}
	}

	return out, nil
}

func stringAttribute(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String(stringType), StringValue: aws.String(v)}
}

// sendInput builds the SendMessage request for a marshaled message. It is
// Watermill's GenerateSendMessageInputFunc, extended with the FIFO ids.
func sendInput(
	_ context.Context, queueURL wsqs.QueueURL, msg *types.Message,
) (*awssqs.SendMessageInput, error) {
	in := &awssqs.SendMessageInput{
		QueueUrl:          aws.String(string(queueURL)),
		MessageBody:       msg.Body,
		MessageAttributes: msg.MessageAttributes,
	}

	if group, ok := msg.Attributes[groupIDKey]; ok {
		in.MessageGroupId = aws.String(group)
	}
	if dedup, ok := msg.Attributes[dedupIDKey]; ok {
		in.MessageDeduplicationId = aws.String(dedup)
	}

	return in, nil
}

// messageSize counts a message as SQS does against its size limit: the body
// plus each attribute's name, data type and value.
func messageSize(msg *types.Message) int {
	size := len(aws.ToString(msg.Body))
	for name, v := range msg.MessageAttributes {
		size += len(name) + len(aws.ToString(v.DataType)) +
			len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}

	return size
}

// groupID returns key when SQS accepts it as a MessageGroupId, else a
// stable digest of it that SQS accepts.
func groupID(key string) string {
	if validGroupID(key) {
		return key
	}

	sum := sha256.Sum256([]byte(key))

	return "sha256:" + hex.EncodeToString(sum[:])
}

// validGroupID reports whether s is 1 to 128 ASCII letters, digits and
// punctuation characters.
func validGroupID(s string) bool {
	if s == "" || len(s) > maxGroupIDLength {
		return false
	}

	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '!' || c > '~' {
			return false
		}
	}

	return true
}
