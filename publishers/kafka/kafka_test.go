package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/kafka"
	"github.com/apsoai/domainevents/publishers/publishertest"
)

const (
	testTopic      = "domain-events"
	testPartitions = 4
)

// startCluster starts an in-process Kafka cluster of three brokers on
// 127.0.0.1 with the test topic seeded, and closes it when the test ends.
func startCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()

	opts = append([]kfake.Opt{
		kfake.NumBrokers(3),
		kfake.SeedTopics(testPartitions, testTopic),
	}, opts...)

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(cluster.Close)

	return cluster
}

// testConfig is a Config for cluster with short retries, so that a failing
// case fails quickly.
func testConfig(cluster *kfake.Cluster) kafka.Config {
	return kafka.Config{
		Brokers:      cluster.ListenAddrs(),
		Topic:        testTopic,
		Timeout:      5 * time.Second,
		Retries:      2,
		RetryBackoff: 10 * time.Millisecond,
	}
}

func newPublisher(t testing.TB, cfg kafka.Config) *kafka.Publisher {
	t.Helper()

	pub, err := kafka.New(cfg)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})

	return pub
}

// reader consumes the test topic from the start with franz-go, a client
// independent of the one under test, and keeps every record it saw.
type reader struct {
	mu      sync.Mutex
	records []*kgo.Record
	err     error
}

func startReader(t *testing.T, cluster *kfake.Cluster, opts ...kgo.Opt) *reader {
	t.Helper()

	opts = append([]kgo.Opt{
		kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics(testTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(50 * time.Millisecond),
	}, opts...)

	client, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("start kgo reader: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := &reader{}
	go func() {
		defer close(done)
		r.run(ctx, client)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		client.Close()
	})

	return r
}

func (r *reader) run(ctx context.Context, client *kgo.Client) {
	for ctx.Err() == nil {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}

		r.mu.Lock()
		fetches.EachError(func(topic string, partition int32, err error) {
			if r.err == nil {
				r.err = fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
			}
		})
		r.records = append(r.records, fetches.Records()...)
		r.mu.Unlock()
	}
}

// all returns every record read so far, failing t if the reader failed.
func (r *reader) all(t *testing.T) []*kgo.Record {
	t.Helper()

	r.mu.Lock()
	defer r.mu.Unlock()

	if r.err != nil {
		t.Fatalf("kgo reader: %v", r.err)
	}

	return slices.Clone(r.records)
}

// received converts the records read so far for the conformance suite.
func (r *reader) received(t *testing.T) []publishertest.Received {
	t.Helper()

	var out []publishertest.Received
	for _, rec := range r.all(t) {
		h := headers(rec)
		out = append(out, publishertest.Received{
			ID:        h[kafka.HeaderEventID],
			Type:      h[kafka.HeaderEventType],
			EntityKey: string(rec.Key),
			Body:      rec.Value,
		})
	}

	return out
}

// waitForRecords polls the reader until n records arrived or ten seconds
// passed.
func (r *reader) waitForRecords(t *testing.T, n int) []*kgo.Record {
	t.Helper()

	stop := time.Now().Add(10 * time.Second)
	for {
		recs := r.all(t)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(stop) {
			t.Fatalf("waited 10s for %d records, got %d", n, len(recs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func headers(rec *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, hd := range rec.Headers {
		h[hd.Key] = string(hd.Value)
	}

	return h
}

// failProduce makes the cluster answer every produce request with
// NOT_ENOUGH_REPLICAS while broken is true.
func failProduce(cluster *kfake.Cluster, broken *atomic.Bool) {
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !broken.Load() {
			return nil, nil, false
		}

		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}

		return resp, nil, true
	})
}

func TestPublisher_conformance(t *testing.T) {
	publishertest.Run(t, func(t *testing.T) publishertest.Harness {
		cluster := startCluster(t)
		cfg := testConfig(cluster)
		cfg.MaxBytes = 200_000

		var broken atomic.Bool
		failProduce(cluster, &broken)

		pub, err := kafka.New(cfg)
		if err != nil {
			t.Fatalf("kafka.New: %v", err)
		}
		r := startReader(t, cluster)

		return publishertest.Harness{
			Publisher:        pub,
			Received:         r.received,
			Break:            func() { broken.Store(true) },
			Heal:             func() { broken.Store(false) },
			MaxBytes:         cfg.MaxBytes,
			OrderedPerEntity: true,
		}
	})
}

func TestPublisher_recordLayout(t *testing.T) {
	cluster := startCluster(t)
	pub := newPublisher(t, testConfig(cluster))
	r := startReader(t, cluster)

	withKey := publishertest.NewEvent("product.created", "Product:42", map[string]any{"id": 42})
	withKey.Metadata.Set(publishers.MetadataTraceParent,
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	withoutKey := publishertest.NewEvent("system.started", "", map[string]any{"ok": true})

	if err := pub.Publish("ignored-topic", withKey, withoutKey); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	recs := r.waitForRecords(t, 2)
	byID := map[string]*kgo.Record{}
	for _, rec := range recs {
		byID[headers(rec)[kafka.HeaderEventID]] = rec
	}

	got := byID[withKey.UUID]
	if got == nil {
		t.Fatalf("no record with event_id %s among %d records", withKey.UUID, len(recs))
	}
	if string(got.Value) != string(withKey.Payload) {
		t.Errorf("value = %s, want %s", got.Value, withKey.Payload)
	}
	if string(got.Key) != "Product:42" {
		t.Errorf("key = %q, want %q", got.Key, "Product:42")
	}
	wantHeaders := map[string]string{
		kafka.HeaderEventID:       withKey.UUID,
		kafka.HeaderEventType:     "product.created",
		kafka.HeaderEntityKey:     "Product:42",
		kafka.HeaderTraceParent:   withKey.Metadata.Get(publishers.MetadataTraceParent),
		"_watermill_message_uuid": withKey.UUID,
	}
	if h := headers(got); !mapsEqual(h, wantHeaders) {
		t.Errorf("headers = %v, want %v", h, wantHeaders)
	}

	bare := byID[withoutKey.UUID]
	if bare == nil {
		t.Fatalf("no record with event_id %s", withoutKey.UUID)
	}
	if bare.Key != nil {
		t.Errorf("record of an event without entity key has key %q, want none", bare.Key)
	}
	h := headers(bare)
	if _, ok := h[kafka.HeaderEntityKey]; ok {
		t.Errorf("record of an event without entity key has header %s", kafka.HeaderEntityKey)
	}
	if h[kafka.HeaderEventType] != "system.started" {
		t.Errorf("event_type header = %q, want system.started", h[kafka.HeaderEventType])
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}

	return true
}

func TestPublisher_entityStaysInOnePartitionInOrder(t *testing.T) {
	cluster := startCluster(t)
	pub := newPublisher(t, testConfig(cluster))
	r := startReader(t, cluster)

	const entities, perEntity = 12, 15

	want := map[string][]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for e := range entities {
		key := fmt.Sprintf("Order:%d", e)
		wg.Add(1)
		go func() {
			defer wg.Done()

			// One entity's events go one after another, as the relay sends
			// them; different entities go at the same time.
			for i := range perEntity {
				msg := publishertest.NewEvent("order.updated", key, map[string]any{"i": i})
				if err := pub.Publish(testTopic, msg); err != nil {
					t.Errorf("%s event %d: Publish: %v", key, i, err)
					return
				}
				mu.Lock()
				want[key] = append(want[key], msg.UUID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	recs := r.waitForRecords(t, entities*perEntity)

	partitions := map[string]map[int32]bool{}
	got := map[string][]*kgo.Record{}
	usedPartitions := map[int32]bool{}
	for _, rec := range recs {
		key := string(rec.Key)
		if partitions[key] == nil {
			partitions[key] = map[int32]bool{}
		}
		partitions[key][rec.Partition] = true
		usedPartitions[rec.Partition] = true
		got[key] = append(got[key], rec)
	}

	for key, ids := range want {
		if len(partitions[key]) != 1 {
			t.Errorf("%s: records in partitions %v, want one", key, partitions[key])
			continue
		}
		recsOfKey := got[key]
		slices.SortFunc(recsOfKey, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
		var gotIDs []string
		for _, rec := range recsOfKey {
			gotIDs = append(gotIDs, headers(rec)[kafka.HeaderEventID])
		}
		if !slices.Equal(gotIDs, ids) {
			t.Errorf("%s: offsets hold %v, published %v", key, gotIDs, ids)
		}
	}
	if len(usedPartitions) < 2 {
		t.Errorf("%d entities all landed in partitions %v; keys are not spread",
			entities, usedPartitions)
	}
}

func TestPublisher_refusesOversizeBeforeSending(t *testing.T) {
	cluster := startCluster(t)
	cfg := testConfig(cluster)
	cfg.MaxBytes = 10_000
	pub := newPublisher(t, cfg)
	r := startReader(t, cluster)

	// All three share a key, so a record of the first call would sit before
	// the later one in the same partition.
	small := publishertest.NewEvent("blob.created", "Blob:1", map[string]any{"n": 1})
	big := publishertest.NewEvent("blob.created", "Blob:1", map[string]any{
		"data": strings.Repeat("x", 10_000),
	})
	later := publishertest.NewEvent("blob.created", "Blob:1", map[string]any{"n": 2})

	// The oversize event is refused and takes the small one of the same
	// call with it: nothing is sent.
	err := pub.Publish(testTopic, small, big)
	if !errors.Is(err, publishers.ErrPermanent) {
		t.Fatalf("Publish with an oversize event: err = %v, want ErrPermanent", err)
	}
	if !strings.Contains(err.Error(), big.UUID) {
		t.Errorf("error %q does not name the oversize event %s", err, big.UUID)
	}

	if err := pub.Publish(testTopic, later); err != nil {
		t.Fatalf("Publish after the refusal: %v", err)
	}
	recs := r.waitForRecords(t, 1)
	if id := headers(recs[0])[kafka.HeaderEventID]; len(recs) != 1 || id != later.UUID {
		t.Fatalf("got %d records, first %s; want only the later event %s",
			len(recs), id, later.UUID)
	}
}

func TestPublisher_brokerSizeLimitIsPermanent(t *testing.T) {
	cluster := startCluster(t, kfake.BrokerConfigs(map[string]string{
		"message.max.bytes": "4000",
	}))
	cfg := testConfig(cluster)
	cfg.MaxBytes = 100_000 // above the broker's limit, so the broker decides
	pub := newPublisher(t, cfg)

	big := publishertest.NewEvent("blob.created", "Blob:1", map[string]any{
		"data": string(make([]byte, 8_000)),
	})
	err := pub.Publish(testTopic, big)
	if !errors.Is(err, publishers.ErrPermanent) || !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Fatalf("Publish over the broker's limit: err = %v, "+
			"want ErrPermanent and MESSAGE_TOO_LARGE", err)
	}

	small := publishertest.NewEvent("blob.created", "Blob:2", map[string]any{"n": 1})
	if err := pub.Publish(testTopic, small); err != nil {
		t.Fatalf("Publish of a small event after the refusal: %v", err)
	}
}

func TestPublisher_brokenClusterIsUnavailable(t *testing.T) {
	cluster := startCluster(t)
	pub := newPublisher(t, testConfig(cluster))

	var broken atomic.Bool
	broken.Store(true)
	failProduce(cluster, &broken)

	msg := publishertest.NewEvent("invoice.created", "Invoice:1", map[string]any{"n": 1})
	err := pub.Publish(testTopic, msg)
	if !errors.Is(err, publishers.ErrUnavailable) {
		t.Fatalf("Publish while produce fails: err = %v, want ErrUnavailable", err)
	}
	if errors.Is(err, publishers.ErrPermanent) {
		t.Fatalf("Publish while produce fails: err = %v also wraps ErrPermanent", err)
	}
}

func TestNew_unreachableClusterConnectsLater(t *testing.T) {
	cluster := startCluster(t)
	cfg := testConfig(cluster)
	cluster.Close()

	pub, err := kafka.New(cfg)
	if err != nil {
		t.Fatalf("New against a stopped cluster: %v; want a publisher that connects later", err)
	}
	t.Cleanup(func() { _ = pub.Close() })

	msg := publishertest.NewEvent("invoice.created", "Invoice:1", map[string]any{"n": 1})
	if err := pub.Publish(testTopic, msg); !errors.Is(err, publishers.ErrUnavailable) {
		t.Fatalf("Publish against a stopped cluster: err = %v, want ErrUnavailable", err)
	}
}

func TestNew_invalidConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  kafka.Config
		want string
	}{
		{"no brokers", kafka.Config{Topic: "t"}, "no brokers"},
		{"no topic", kafka.Config{Brokers: []string{"127.0.0.1:1"}}, "no topic"},
		{"old version", kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t",
			Version: "0.10.2.0"}, "older than"},
		{"bad version", kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Version: "x"},
			"version"},
		{"unknown mechanism", kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t",
			SASL: kafka.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, "GSSAPI"},
		{"mechanism without password", kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t",
			SASL: kafka.SASL{Mechanism: kafka.MechanismPlain, Username: "u"}}, "password"},
		{"tune drops acks", kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t",
			Tune: func(c *sarama.Config) { c.Producer.RequiredAcks = sarama.WaitForLocal }},
			"acks=all"},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kafka.New(c.cfg)
			if err == nil {
				t.Fatal("New returned no error")
			}
			if !strings.Contains(err.Error(), "kafka: invalid config") ||
				!strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to say invalid config and %q", err, c.want)
			}
		})
	}
}

func TestPublisher_publishAfterCloseFails(t *testing.T) {
	cluster := startCluster(t)
	pub, err := kafka.New(testConfig(cluster))
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}

	if err := pub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err = pub.Publish(testTopic, publishertest.NewEvent("a.created", "A:1", nil))
	if err == nil {
		t.Fatal("Publish after Close returned nil")
	}
}

var _ message.Publisher = (*kafka.Publisher)(nil)
