package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokersTopic is the topic the Kafka tests seed, with brokersPartitions
// partitions.
const (
	brokersTopic      = "shop-events"
	brokersPartitions = 3
)

// brokersStartKafka starts an in-process Kafka cluster of three brokers on
// 127.0.0.1 with the topic seeded, and closes it when the test ends.
func brokersStartKafka(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()

	opts = append([]kfake.Opt{
		kfake.NumBrokers(3),
		kfake.SeedTopics(brokersPartitions, brokersTopic),
	}, opts...)
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(cluster.Close)

	return cluster
}

// brokersUUID matches the event ids inside an uncompressed record batch.
var brokersUUID = regexp.MustCompile(
	`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// brokersBatch is one record batch of a produce request, as the cluster
// received it.
type brokersBatch struct {
	Partition  int32
	ProducerID int64
	Epoch      int16
	Sequence   int32
	Records    int32
	EventIDs   []string
}

// brokersProduceLog records every record batch that reaches the cluster,
// to show how the idempotent producer numbered them. It observes the
// requests and leaves them to the cluster.
type brokersProduceLog struct {
	mu      sync.Mutex
	batches []brokersBatch
}

// observe records the batches that reach cluster from now on.
func (l *brokersProduceLog) observe(cluster *kfake.Cluster) {
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()

		pr, ok := req.(*kmsg.ProduceRequest)
		if !ok {
			return nil, nil, false
		}
		for _, topic := range pr.Topics {
			for _, part := range topic.Partitions {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(part.Records); err != nil {
					continue
				}
				ids := slices.Compact(slices.Sorted(slices.Values(
					brokersUUID.FindAllString(string(b.Records), -1))))

				l.mu.Lock()
				l.batches = append(l.batches, brokersBatch{
					Partition: part.Partition, ProducerID: b.ProducerID,
					Epoch: b.ProducerEpoch, Sequence: b.FirstSequence,
					Records: b.NumRecords, EventIDs: ids,
				})
				l.mu.Unlock()
			}
		}

		return nil, nil, false
	})
}

// reusedSequence returns a description of the first batch that carried
// event id under the producer id, epoch and sequence of a batch of other
// events on the same partition. A broker takes such a batch for a retry of
// the earlier one: it answers success and drops the records.
func (l *brokersProduceLog) reusedSequence(id string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()

	for i, b := range l.batches {
		if !slices.Contains(b.EventIDs, id) {
			continue
		}
		for _, earlier := range l.batches[:i] {
			same := earlier.Partition == b.Partition && earlier.ProducerID == b.ProducerID &&
				earlier.Epoch == b.Epoch && earlier.Sequence == b.Sequence &&
				earlier.Records == b.Records
			if same && !slices.Equal(earlier.EventIDs, b.EventIDs) {
				return fmt.Sprintf("partition %d got event %v and then event %s in batches "+
					"with the same producer id %d, epoch %d and first sequence %d",
					b.Partition, earlier.EventIDs, id, b.ProducerID, b.Epoch, b.Sequence), true
			}
		}
	}

	return "", false
}

// brokersKafkaRecord is one record read back from the topic.
type brokersKafkaRecord struct {
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	Headers   map[string]string
}

// brokersKafkaReader reads the topic from the start with franz-go's kgo, a
// client independent of the shop's, and keeps every record.
type brokersKafkaReader struct {
	client *kgo.Client

	mu      sync.Mutex
	records []brokersKafkaRecord
	next    map[int32]int64
	errs    []string
}

// brokersReadKafka starts reading the topic of the cluster at brokers and
// stops when the test ends.
func brokersReadKafka(t *testing.T, brokers []string) *brokersKafkaReader {
	t.Helper()

	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(brokersTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("start kgo reader: %v", err)
	}

	r := &brokersKafkaReader{client: client, next: map[int32]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		client.Close()
	})

	return r
}

// run keeps every fetched record until ctx is done.
func (r *brokersKafkaReader) run(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := r.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}

		r.mu.Lock()
		fetches.EachError(func(topic string, p int32, err error) {
			r.errs = append(r.errs, fmt.Sprintf("%s/%d: %v", topic, p, err))
		})
		fetches.EachRecord(func(rec *kgo.Record) {
			headers := map[string]string{}
			for _, h := range rec.Headers {
				headers[h.Key] = string(h.Value)
			}
			r.records = append(r.records, brokersKafkaRecord{
				Partition: rec.Partition,
				Offset:    rec.Offset,
				Key:       string(rec.Key),
				Value:     slices.Clone(rec.Value),
				Headers:   headers,
			})
			r.next[rec.Partition] = rec.Offset + 1
		})
		r.mu.Unlock()
	}
}

// Records returns the records read so far, in the order read.
func (r *brokersKafkaReader) Records() []brokersKafkaRecord {
	r.mu.Lock()
	defer r.mu.Unlock()

	return slices.Clone(r.records)
}

// describe says how far the reader got in each partition, and what errors
// it saw.
func (r *brokersKafkaReader) describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()

	var parts []string
	for p := range int32(brokersPartitions) {
		parts = append(parts, fmt.Sprintf("partition %d read up to offset %d", p, r.next[p]))
	}
	if len(r.errs) > 0 {
		parts = append(parts, "fetch errors: "+strings.Join(r.errs, "; "))
	}

	return strings.Join(parts, ", ")
}

// ids counts the records of each event id, from the event_id header.
func (r *brokersKafkaReader) ids() map[string]int {
	n := map[string]int{}
	for _, rec := range r.Records() {
		n[rec.Headers["event_id"]]++
	}

	return n
}

// caughtUp reports whether the reader has read every record the topic
// holds right now.
func (r *brokersKafkaReader) caughtUp() (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req := kmsg.NewPtrListOffsetsRequest()
	topic := kmsg.NewListOffsetsRequestTopic()
	topic.Topic = brokersTopic
	for p := range int32(brokersPartitions) {
		part := kmsg.NewListOffsetsRequestTopicPartition()
		part.Partition = p
		part.Timestamp = -1 // the end of the partition
		topic.Partitions = append(topic.Partitions, part)
	}
	req.Topics = append(req.Topics, topic)

	resp, err := req.RequestWith(ctx, r.client)
	if err != nil {
		return false, fmt.Sprintf("list end offsets: %v", err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()

	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode != 0 {
				return false, fmt.Sprintf("end offset of partition %d: error %d",
					p.Partition, p.ErrorCode)
			}
			if r.next[p.Partition] < p.Offset {
				return false, fmt.Sprintf("partition %d read up to %d of %d",
					p.Partition, r.next[p.Partition], p.Offset)
			}
		}
	}

	return true, ""
}

// brokersSQSEndpoint returns the SQS emulator's address, failing the test
// when it is not set.
func brokersSQSEndpoint(t *testing.T) string {
	t.Helper()

	ep := os.Getenv("EVENTS_TEST_SQS_ENDPOINT")
	if ep == "" {
		t.Fatal("EVENTS_TEST_SQS_ENDPOINT is not set: this test needs the fauxqs SQS " +
			"emulator; run ./scripts/test.sh, which starts it")
	}

	return ep
}

// brokersSQSClient is an SQS client aimed at the emulator with static
// credentials.
func brokersSQSClient(endpoint string) *awssqs.Client {
	return awssqs.New(awssqs.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	})
}

// brokersCreateQueue creates a queue (a FIFO queue for a name ending in
// ".fifo") and returns its URL. The queue is deleted when the test ends.
func brokersCreateQueue(t *testing.T, client *awssqs.Client, name string) string {
	t.Helper()

	in := &awssqs.CreateQueueInput{QueueName: aws.String(name)}
	if strings.HasSuffix(name, ".fifo") {
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.CreateQueue(ctx, in)
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	t.Cleanup(func() {
		// A queue created again under the same name is deleted twice; the
		// second delete fails harmlessly.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})

	return aws.ToString(out.QueueUrl)
}

// brokersSQSMessage is one message read back from a queue.
type brokersSQSMessage struct {
	Body       string
	Attributes map[string]string
	GroupID    string
	DedupID    string
}

// brokersReceive reads and deletes messages from a queue until it has
// seen every id in want (by the event_id attribute), and returns every
// message read, in the order read.
func brokersReceive(
	t *testing.T, client *awssqs.Client, queueURL string, want map[string]bool,
) []brokersSQSMessage {
	t.Helper()

	var got []brokersSQSMessage
	seen := map[string]bool{}
	brokersWait(t, fmt.Sprintf("%d messages on %s", len(want), queueURL), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl:              aws.String(queueURL),
			MaxNumberOfMessages:   10,
			WaitTimeSeconds:       1,
			MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{
				sqstypes.MessageSystemAttributeNameAll,
			},
		})
		if err != nil {
			return false, fmt.Sprintf("receive: %v", err)
		}

		for _, m := range out.Messages {
			msg := brokersSQSMessage{
				Body:       aws.ToString(m.Body),
				Attributes: map[string]string{},
				GroupID:    m.Attributes["MessageGroupId"],
				DedupID:    m.Attributes["MessageDeduplicationId"],
			}
			for k, v := range m.MessageAttributes {
				msg.Attributes[k] = aws.ToString(v.StringValue)
			}
			got = append(got, msg)
			seen[msg.Attributes["event_id"]] = true

			_, err := client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{
				QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle,
			})
			if err != nil {
				t.Fatalf("delete message: %v", err)
			}
		}

		missing := 0
		for id := range want {
			if !seen[id] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d events missing", missing, len(want))
	})

	return got
}

// brokersPutEntry is one PutEvents entry as the fake EventBridge got it.
type brokersPutEntry struct {
	Source       string
	DetailType   string
	Detail       string
	EventBusName string
}

// brokersPutRequest is one PutEvents request and the fake's answer to
// each of its entries (true for accepted).
type brokersPutRequest struct {
	Entries  []brokersPutEntry
	Accepted []bool
}

// brokersEventBridge is a local stand-in for the EventBridge PutEvents API.
// It holds every request until its gate opens, then refuses the first send
// of every entry at an odd index of its request and accepts the rest, so
// that every request of two or more entries fails in part.
type brokersEventBridge struct {
	URL string

	gate      chan struct{}
	closeGate sync.Once

	mu       sync.Mutex
	held     int
	arrived  int
	requests []brokersPutRequest
	sent     map[string]int
	problems []string
}

// brokersStartEventBridge starts the fake on 127.0.0.1 with its gate
// closed, and stops it when the test ends.
func brokersStartEventBridge(t *testing.T) *brokersEventBridge {
	t.Helper()

	eb := &brokersEventBridge{sent: map[string]int{}, gate: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(eb.serve))
	t.Cleanup(func() {
		eb.open()
		srv.Close()
	})
	eb.URL = srv.URL

	return eb
}

// open lets the held requests and every later one through.
func (eb *brokersEventBridge) open() {
	eb.closeGate.Do(func() { close(eb.gate) })
}

// waiting returns how many requests wait at the gate, and how many entries
// they carry.
func (eb *brokersEventBridge) waiting() (requests, entries int) {
	eb.mu.Lock()
	defer eb.mu.Unlock()

	return eb.held, eb.arrived
}

// serve checks a PutEvents request, holds it at the gate, then answers
// for each entry.
func (eb *brokersEventBridge) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)

	var problems []string
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		problems = append(problems, fmt.Sprintf("request %s %s, want POST /", r.Method, r.URL.Path))
	}
	if got := r.Header.Get("X-Amz-Target"); got != "AWSEvents.PutEvents" {
		problems = append(problems, fmt.Sprintf("X-Amz-Target %q", got))
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
		problems = append(problems, fmt.Sprintf("Content-Type %q", got))
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") ||
		!strings.Contains(auth, "/us-east-1/events/aws4_request") {
		problems = append(problems, fmt.Sprintf("Authorization %q is not SigV4 for events", auth))
	}

	var in struct {
		Entries []brokersPutEntry
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.Entries) == 0 {
		problems = append(problems, fmt.Sprintf("body %s: %v", body, err))
	}

	eb.mu.Lock()
	eb.held++
	eb.arrived += len(in.Entries)
	eb.mu.Unlock()
	<-eb.gate

	eb.mu.Lock()
	defer eb.mu.Unlock()
	eb.held--
	eb.arrived -= len(in.Entries)

	if len(problems) > 0 {
		eb.problems = append(eb.problems, problems...)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ValidationException","message":"bad request"}`)
		return
	}

	type result struct {
		EventID      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	req := brokersPutRequest{Entries: in.Entries}

	for i, e := range in.Entries {
		var detail struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(e.Detail), &detail)

		first := eb.sent[detail.ID] == 0
		eb.sent[detail.ID]++
		if first && i%2 == 1 {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{
				ErrorCode: "InternalFailure", ErrorMessage: "refused by the test",
			})
			req.Accepted = append(req.Accepted, false)
			continue
		}
		out.Entries = append(out.Entries, result{EventID: fmt.Sprintf("eb-%d-%d",
			len(eb.requests), i)})
		req.Accepted = append(req.Accepted, true)
	}
	eb.requests = append(eb.requests, req)

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// Requests returns the requests received so far and the problems found
// with them.
func (eb *brokersEventBridge) Requests() ([]brokersPutRequest, []string) {
	eb.mu.Lock()
	defer eb.mu.Unlock()

	return slices.Clone(eb.requests), slices.Clone(eb.problems)
}

// brokersWebhook is a webhook receiver that checks the Standard Webhooks
// signature of every delivery with the specification's own library, and
// answers 503 while it is down.
type brokersWebhook struct {
	URL    string
	Secret string

	verifier *standardwebhooks.Webhook

	mu       sync.Mutex
	down     bool
	accepted map[string][]byte
	refused  map[string]int
	problems []string
}

// brokersStartWebhook starts a receiver on 127.0.0.1 for secret, and stops
// it when the test ends.
func brokersStartWebhook(t *testing.T, secret string) *brokersWebhook {
	t.Helper()

	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}

	wh := &brokersWebhook{
		Secret:   secret,
		verifier: verifier,
		accepted: map[string][]byte{},
		refused:  map[string]int{},
	}
	srv := httptest.NewServer(http.HandlerFunc(wh.serve))
	t.Cleanup(srv.Close)
	wh.URL = srv.URL + "/hooks"

	return wh
}

// serve answers 503 while the receiver is down, else verifies and keeps
// the delivery.
func (wh *brokersWebhook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")

	wh.mu.Lock()
	defer wh.mu.Unlock()

	if wh.down {
		wh.refused[id]++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}

	if err := wh.verifier.Verify(body, r.Header); err != nil {
		wh.problems = append(wh.problems, fmt.Sprintf("event %s: signature: %v", id, err))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if _, dup := wh.accepted[id]; dup {
		// A repeat is allowed (at least once); the first body is kept.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	wh.accepted[id] = body
	w.WriteHeader(http.StatusNoContent)
}

// setDown makes the receiver answer 503 (true) or accept (false).
func (wh *brokersWebhook) setDown(down bool) {
	wh.mu.Lock()
	defer wh.mu.Unlock()

	wh.down = down
}

// state returns copies of the accepted bodies by event id, the refusals by
// event id and the problems found.
func (wh *brokersWebhook) state() (map[string][]byte, map[string]int, []string) {
	wh.mu.Lock()
	defer wh.mu.Unlock()

	accepted := make(map[string][]byte, len(wh.accepted))
	for k, v := range wh.accepted {
		accepted[k] = v
	}
	refused := make(map[string]int, len(wh.refused))
	for k, v := range wh.refused {
		refused[k] = v
	}

	return accepted, refused, slices.Clone(wh.problems)
}
