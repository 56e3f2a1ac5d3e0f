package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/publishertest"
	"github.com/apsoai/domainevents/publishers/sqs"
)

// envEndpoint names the variable that holds the SQS emulator's address.
const envEndpoint = "EVENTS_TEST_SQS_ENDPOINT"

// endpoint returns the SQS emulator's address, failing t when it is not
// set.
func endpoint(t testing.TB) string {
	t.Helper()

	ep := os.Getenv(envEndpoint)
	if ep == "" {
		t.Fatalf("%s is not set: these tests need an SQS emulator; "+
			"run ./scripts/test.sh (starts fauxqs)", envEndpoint)
	}

	return ep
}

// awsConfig is an SDK configuration aimed at the emulator with static
// credentials.
func awsConfig(ep string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(ep),
	}
}

// queue is a queue made for one test, with a reader that drains it.
type queue struct {
	client *awssqs.Client
	url    string
	name   string
	attrs  map[string]string

	mu       sync.Mutex
	messages []types.Message
}

var queueSeq struct {
	sync.Mutex
	n int
}

// newQueue creates a queue for t (a FIFO one when fifo is true) and deletes
// it when the test ends.
func newQueue(t testing.TB, ep string, fifo bool, attrs map[string]string) *queue {
	t.Helper()

	queueSeq.Lock()
	queueSeq.n++
	name := fmt.Sprintf("test-%d-%d", time.Now().UnixNano(), queueSeq.n)
	queueSeq.Unlock()

	if attrs == nil {
		attrs = map[string]string{}
	}
	if fifo {
		name += ".fifo"
		attrs["FifoQueue"] = "true"
	}

	q := &queue{client: awssqs.NewFromConfig(awsConfig(ep)), name: name, attrs: attrs}
	q.create(t)
	t.Cleanup(func() {
		_, _ = q.client.DeleteQueue(context.Background(),
			&awssqs.DeleteQueueInput{QueueUrl: aws.String(q.url)})
	})

	return q
}

func (q *queue) create(t testing.TB) {
	t.Helper()

	out, err := q.client.CreateQueue(context.Background(), &awssqs.CreateQueueInput{
		QueueName:  aws.String(q.name),
		Attributes: q.attrs,
	})
	if err != nil {
		t.Fatalf("create queue %s: %v", q.name, err)
	}
	q.url = aws.ToString(out.QueueUrl)
}

func (q *queue) remove(t testing.TB) {
	t.Helper()

	if _, err := q.client.DeleteQueue(context.Background(),
		&awssqs.DeleteQueueInput{QueueUrl: aws.String(q.url)}); err != nil {
		t.Fatalf("delete queue %s: %v", q.name, err)
	}
}

// drain receives and deletes whatever is waiting and returns every message
// received so far, in receive order.
func (q *queue) drain(t testing.TB) []types.Message {
	t.Helper()

	ctx := context.Background()
	for {
		out, err := q.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.url),
			MaxNumberOfMessages:         10,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"},
		})
		if err != nil {
			t.Fatalf("receive from %s: %v", q.name, err)
		}
		if len(out.Messages) == 0 {
			break
		}

		for _, m := range out.Messages {
			if _, err := q.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{
				QueueUrl: aws.String(q.url), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				t.Fatalf("delete message from %s: %v", q.name, err)
			}
		}

		q.mu.Lock()
		q.messages = append(q.messages, out.Messages...)
		q.mu.Unlock()
	}

	q.mu.Lock()
	defer q.mu.Unlock()

	return slices.Clone(q.messages)
}

// waitFor drains the queue until n messages arrived or ten seconds passed.
func (q *queue) waitFor(t testing.TB, n int) []types.Message {
	t.Helper()

	stop := time.Now().Add(10 * time.Second)
	for {
		msgs := q.drain(t)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(stop) {
			t.Fatalf("waited 10s for %d messages in %s, got %d", n, q.name, len(msgs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (q *queue) received(t *testing.T) []publishertest.Received {
	t.Helper()

	var out []publishertest.Received
	for _, m := range q.drain(t) {
		out = append(out, publishertest.Received{
			ID:        attr(m, sqs.AttributeEventID),
			Type:      attr(m, sqs.AttributeEventType),
			EntityKey: attr(m, sqs.AttributeEntityKey),
			Body:      []byte(aws.ToString(m.Body)),
		})
	}

	return out
}

func attr(m types.Message, name string) string {
	v, ok := m.MessageAttributes[name]
	if !ok {
		return ""
	}

	return aws.ToString(v.StringValue)
}

func newPublisher(t testing.TB, cfg sqs.Config) *sqs.Publisher {
	t.Helper()

	pub, err := sqs.New(cfg)
	if err != nil {
		t.Fatalf("sqs.New: %v", err)
	}
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})

	return pub
}

func TestPublisher_conformance(t *testing.T) {
	ep := endpoint(t)

	for _, fifo := range []bool{false, true} {
		name := "standard"
		if fifo {
			name = "fifo"
		}

		t.Run(name, func(t *testing.T) {
			publishertest.Run(t, func(t *testing.T) publishertest.Harness {
				q := newQueue(t, ep, fifo, nil)
				cfg := sqs.Config{QueueURL: q.url, AWS: awsConfig(ep), MaxBytes: 100_000}

				pub, err := sqs.New(cfg)
				if err != nil {
					t.Fatalf("sqs.New: %v", err)
				}

				return publishertest.Harness{
					Publisher: pub,
					Received:  q.received,
					// A deleted queue fails every send; a queue of the same
					// name has the same URL.
					Break:            func() { q.remove(t) },
					Heal:             func() { q.create(t) },
					MaxBytes:         cfg.MaxBytes,
					OrderedPerEntity: fifo,
					// Known gap: the emulator refuses characters above
					// U+FFFF, so emoji bodies are not checked against SQS.
					NoAstralReason: "fauxqs 2.4.1 refuses characters above U+FFFF " +
						"(InvalidMessageContents); real SQS accepts them",
				}
			})
		})
	}
}

func TestPublisher_messageLayout(t *testing.T) {
	ep := endpoint(t)
	q := newQueue(t, ep, false, nil)
	pub := newPublisher(t, sqs.Config{QueueURL: q.url, AWS: awsConfig(ep)})

	msg := publishertest.NewEvent("product.created", "Product:42", map[string]any{"id": 42})
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	msg.Metadata.Set(publishers.MetadataTraceParent, tp)
	msg.Metadata.Set("relay_internal_note", "not for the wire")

	if err := pub.Publish("ignored", msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	got := q.waitFor(t, 1)[0]
	if aws.ToString(got.Body) != string(msg.Payload) {
		t.Errorf("body = %s, want %s", aws.ToString(got.Body), msg.Payload)
	}

	want := map[string]string{
		sqs.AttributeEventID:      msg.UUID,
		sqs.AttributeEventType:    "product.created",
		sqs.AttributeEntityKey:    "Product:42",
		sqs.AttributeTraceParent:  tp,
		"_watermill_message_uuid": msg.UUID,
	}
	if len(got.MessageAttributes) != len(want) {
		t.Errorf("message has %d attributes, want %d: %v",
			len(got.MessageAttributes), len(want), got.MessageAttributes)
	}
	for name, value := range want {
		v := got.MessageAttributes[name]
		if aws.ToString(v.StringValue) != value || aws.ToString(v.DataType) != "String" {
			t.Errorf("attribute %s = %s %q, want String %q",
				name, aws.ToString(v.DataType), aws.ToString(v.StringValue), value)
		}
	}
	if _, ok := got.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]; ok {
		t.Error("a message on a standard queue has a MessageGroupId")
	}
}

func TestPublisher_fifoGroupAndDeduplicationIDs(t *testing.T) {
	ep := endpoint(t)
	q := newQueue(t, ep, true, nil)
	pub := newPublisher(t, sqs.Config{QueueURL: q.url, AWS: awsConfig(ep)})

	longKey := "Document:" + strings.Repeat("x", 200)
	withKey := publishertest.NewEvent("product.created", "Product:42", nil)
	withoutKey := publishertest.NewEvent("system.started", "", nil)
	oddKey := publishertest.NewEvent("city.created", "City:São Paulo", nil)
	tooLong := publishertest.NewEvent("document.created", longKey, nil)

	if err := pub.Publish("ignored", withKey, withoutKey, oddKey, tooLong); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	byID := map[string]types.Message{}
	for _, m := range q.waitFor(t, 4) {
		byID[attr(m, sqs.AttributeEventID)] = m
	}

	cases := []struct {
		msg       *message.Message
		wantGroup string
	}{
		{withKey, "Product:42"},
		{withoutKey, withoutKey.UUID},
		{oddKey, ""},
		{tooLong, ""},
	}
	groups := map[string]bool{}
	for _, c := range cases {
		m, ok := byID[c.msg.UUID]
		if !ok {
			t.Fatalf("event %s did not arrive", c.msg.UUID)
		}

		group := m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
		dedup := m.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)]
		if c.wantGroup != "" && group != c.wantGroup {
			t.Errorf("event %s: group id = %q, want %q", c.msg.UUID, group, c.wantGroup)
		}
		if c.wantGroup == "" && (!strings.HasPrefix(group, "sha256:") || len(group) > 128) {
			t.Errorf("event %s: group id = %q, want a sha256 digest of the key", c.msg.UUID, group)
		}
		if dedup != c.msg.UUID {
			t.Errorf("event %s: deduplication id = %q, want the event id", c.msg.UUID, dedup)
		}
		groups[group] = true
	}
	if len(groups) != len(cases) {
		t.Errorf("the four events share groups: %v", groups)
	}
}

func TestPublisher_fifoDropsRepeatOfSameEvent(t *testing.T) {
	ep := endpoint(t)
	q := newQueue(t, ep, true, nil)
	pub := newPublisher(t, sqs.Config{QueueURL: q.url, AWS: awsConfig(ep)})

	msg := publishertest.NewEvent("order.created", "Order:1", nil)
	next := publishertest.NewEvent("order.updated", "Order:1", nil)
	for _, m := range []*message.Message{msg, msg, next} {
		if err := pub.Publish("ignored", m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}

	// next follows msg in the same group, so once it arrived a second copy
	// of msg would have too.
	got := q.waitFor(t, 2)
	var ids []string
	for _, m := range got {
		ids = append(ids, attr(m, sqs.AttributeEventID))
	}
	if !slices.Equal(ids, []string{msg.UUID, next.UUID}) {
		t.Fatalf("received %v, want %v once each", ids, []string{msg.UUID, next.UUID})
	}
}

func TestPublisher_attributesCountTowardsTheLimit(t *testing.T) {
	ep := endpoint(t)
	q := newQueue(t, ep, false, nil)
	pub := newPublisher(t, sqs.Config{QueueURL: q.url, AWS: awsConfig(ep), MaxBytes: 2000})

	msg := publishertest.NewEvent("note.created", "Note:1", nil)
	pad := 2000 - len(msg.Payload)
	msg = publishertest.NewEvent("note.created", "Note:1", map[string]any{
		"text": strings.Repeat("x", max(pad-40, 0)),
	})
	if len(msg.Payload) > 2000 {
		t.Fatalf("test body is %d bytes; it must fit the limit on its own", len(msg.Payload))
	}

	err := pub.Publish("ignored", msg)
	if !errors.Is(err, publishers.ErrPermanent) {
		t.Fatalf("Publish of a %d-byte body with attributes over a 2000-byte limit: err = %v, "+
			"want ErrPermanent", len(msg.Payload), err)
	}
}

func TestPublisher_queueSizeLimitIsPermanent(t *testing.T) {
	ep := endpoint(t)
	q := newQueue(t, ep, false, map[string]string{"MaximumMessageSize": "1024"})
	// MaxBytes above the queue's limit, so that SQS is the one refusing.
	pub := newPublisher(t, sqs.Config{QueueURL: q.url, AWS: awsConfig(ep)})

	msg := publishertest.NewEvent("note.created", "Note:1", map[string]any{
		"text": strings.Repeat("x", 2000),
	})
	err := pub.Publish("ignored", msg)
	if !errors.Is(err, publishers.ErrPermanent) {
		t.Fatalf("Publish over the queue's MaximumMessageSize: err = %v, want ErrPermanent", err)
	}
}

func TestPublisher_unreachableEndpointIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()

	cfg := sqs.Config{
		QueueURL: closed + "/000000000000/gone",
		AWS:      awsConfig(closed),
	}
	cfg.AWS.RetryMaxAttempts = 1
	pub := newPublisher(t, cfg)

	err = pub.Publish("ignored", publishertest.NewEvent("a.created", "A:1", nil))
	if !errors.Is(err, publishers.ErrUnavailable) {
		t.Fatalf("Publish to a closed port: err = %v, want ErrUnavailable", err)
	}
}

func TestPublisher_missingQueueIsUnavailable(t *testing.T) {
	ep := endpoint(t)
	q := newQueue(t, ep, false, nil)
	pub := newPublisher(t, sqs.Config{QueueURL: q.url, AWS: awsConfig(ep)})
	q.remove(t)

	err := pub.Publish("ignored", publishertest.NewEvent("a.created", "A:1", nil))
	if !errors.Is(err, publishers.ErrUnavailable) {
		t.Fatalf("Publish to a deleted queue: err = %v, want ErrUnavailable", err)
	}

	// The publisher neither created the queue nor looked it up.
	out, err := q.client.ListQueues(context.Background(), &awssqs.ListQueuesInput{
		QueueNamePrefix: aws.String(q.name),
	})
	if err != nil {
		t.Fatalf("list queues: %v", err)
	}
	if len(out.QueueUrls) != 0 {
		t.Fatalf("queue %s exists again after Publish: %v", q.name, out.QueueUrls)
	}
}
