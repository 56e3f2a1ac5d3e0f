package eventbridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/apsoai/domainevents/publishers"
)

// entry is one event on its way through the batcher.
type entry struct {
	id   string
	req  types.PutEventsRequestEntry
	size int

	// done receives the entry's result exactly once.
	done chan error
}

// newEntry builds the PutEvents entry of msg, or returns an error wrapping
// publishers.ErrPermanent when PutEvents would refuse it for what it is.
func (p *Publisher) newEntry(msg *message.Message) (*entry, error) {
	detailType := msg.Metadata.Get(publishers.MetadataType)

	switch n := utf8.RuneCountInString(detailType); {
	case n == 0:
		return nil, fmt.Errorf("eventbridge: event %s has no event type for DetailType: %w",
			msg.UUID, publishers.ErrPermanent)
	case n > maxDetailTypeLength:
		return nil, fmt.Errorf("eventbridge: event %s: event type of %d characters is over the "+
			"%d-character DetailType limit: %w",
			msg.UUID, n, maxDetailTypeLength, publishers.ErrPermanent)
	}

	if !isJSONObject(msg.Payload) {
		return nil, fmt.Errorf("eventbridge: event %s (%s): body is not a JSON object: %w",
			msg.UUID, detailType, publishers.ErrPermanent)
	}

	e := &entry{
		id: msg.UUID,
		req: types.PutEventsRequestEntry{
			EventBusName: aws.String(p.cfg.EventBus),
			Source:       aws.String(p.cfg.Source),
			DetailType:   aws.String(detailType),
			Detail:       aws.String(string(msg.Payload)),
		},
		done: make(chan error, 1),
	}
	e.size = entrySize(e.req)

	if e.size > p.cfg.MaxBytes {
		return nil, fmt.Errorf("eventbridge: event %s (%s) is a %d-byte entry, over the "+
			"%d-byte limit: %w",
			msg.UUID, detailType, e.size, p.cfg.MaxBytes, publishers.ErrPermanent)
	}

	return e, nil
}

// entrySize computes the size of an entry as AWS documents it for the
// PutEvents limit: the UTF-8 bytes of Source, DetailType, Detail and every
// Resource, plus 14 when Time is set.
func entrySize(e types.PutEventsRequestEntry) int {
	size := len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) +
		len(aws.ToString(e.Detail))

	if e.Time != nil {
		size += 14
	}
	for _, r := range e.Resources {
		size += len(r)
	}

	return size
}

// isJSONObject reports whether b is one valid JSON object, as EventBridge
// requires of a Detail.
func isJSONObject(b []byte) bool {
	trimmed := bytes.TrimLeft(b, " \t\r\n")

	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(b)
}
