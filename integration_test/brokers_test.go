package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShop_deliversThroughEveryBroker runs the example shop as a separate
// process with each broker destination, configured only by environment
// variables, and fails each destination in turn.
func TestShop_deliversThroughEveryBroker(t *testing.T) {
	bin := buildShopForBrokers(t, t.TempDir())

	cases := []struct {
		name string
		run  func(t *testing.T, bin string)
	}{
		{"kafka", brokersKafkaCase},
		{"kafka_cluster_restart", brokersKafkaRestartCase},
		{"sqs", func(t *testing.T, bin string) { brokersSQSCase(t, bin, false) }},
		{"sqs_fifo", func(t *testing.T, bin string) { brokersSQSCase(t, bin, true) }},
		{"eventbridge", brokersEventBridgeCase},
		{"webhook_and_kafka", brokersFanOutCase},
		{"startup_errors", brokersStartupErrorsCase},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, bin)
		})
	}
}

// brokersShopActivity creates products, renames them and places an order,
// and returns the events the shop must emit for it.
func brokersShopActivity(shop *brokersShop, prefix string) []brokersExpected {
	var want []brokersExpected
	var ids []int64

	for i := range 3 {
		id, e := shop.createProduct(fmt.Sprintf("%s product %d", prefix, i), 10)
		ids = append(ids, id)
		want = append(want, e)
	}
	for round := range 2 {
		for _, id := range ids {
			name := fmt.Sprintf("%s product %d, version %d", prefix, id, round+2)
			want = append(want, shop.renameProduct(id, name))
		}
	}

	return append(want, shop.placeOrder(ids[0], 3)...)
}

// brokersCreateProducts creates n products and returns their events.
func brokersCreateProducts(shop *brokersShop, prefix string, n int) []brokersExpected {
	want := make([]brokersExpected, 0, n)
	for i := range n {
		_, e := shop.createProduct(fmt.Sprintf("%s %d", prefix, i), int64(i))
		want = append(want, e)
	}

	return want
}

// brokersWaitFailure waits until the table records a failed delivery of one
// of the events after the first skip rows, and checks that none of those
// is published while the destination refuses them.
func brokersWaitFailure(t *testing.T, shop *brokersShop, skip int, what string) {
	t.Helper()

	brokersWait(t, "a failed delivery while "+what, func() (bool, string) {
		rows := shop.rows()
		failed := 0
		for _, r := range rows[skip:] {
			if r.Status == "published" {
				t.Fatalf("event %s was published while %s", r.ID, what)
			}
			if r.Attempts > 0 {
				failed++
			}
		}
		return failed > 0, fmt.Sprintf("%d of %d new events have a failed attempt",
			failed, len(rows)-skip)
	})
}

// brokersWaitKafka waits until the reader has a record of every event in
// rows and has read the whole topic. It fails at once when a published
// event is missing because the producer gave it the sequence number of
// another event.
func brokersWaitKafka(
	t *testing.T, reader *brokersKafkaReader, produced *brokersProduceLog, rows []brokersRow,
) {
	t.Helper()

	brokersWait(t, "every event on the topic", func() (bool, string) {
		have := reader.ids()
		var missing []string
		for _, r := range rows {
			if have[r.ID] == 0 {
				missing = append(missing, fmt.Sprintf("%s (%s of %s, %d failed attempts)",
					r.ID, r.Type, r.EntityKey, r.Attempts))
			}
		}
		if len(missing) > 0 {
			caught, state := reader.caughtUp()
			if caught {
				have = reader.ids() // the whole topic, read after the end offsets
			}
			for _, r := range rows {
				reused, ok := produced.reusedSequence(r.ID)
				if caught && have[r.ID] == 0 && ok {
					t.Fatalf("event %s is published in the table but not on the topic: %s, "+
						"so the broker took it for a duplicate and dropped it while "+
						"the producer reported success (idempotent producer reuses a "+
						"sequence number after a failed send)", r.ID, reused)
				}
			}
			return false, fmt.Sprintf("%d of %d events missing: %s; %s; whole topic read: %v %s",
				len(missing), len(rows), strings.Join(missing, ", "), reader.describe(),
				caught, state)
		}
		return reader.caughtUp()
	})
}

// brokersCheckKafka checks every record against the contract: the value is
// the event body, the key is the entity key, the headers carry the id and
// type, and one entity's events share a partition, in capture order.
func brokersCheckKafka(
	t *testing.T, records []brokersKafkaRecord, rows []brokersRow,
	byID map[string]brokersExpected,
) {
	t.Helper()

	partitionOf := map[string]int32{}
	byPartition := map[int32][]brokersKafkaRecord{}
	for _, rec := range records {
		id := rec.Headers["event_id"]
		want, ok := byID[id]
		if !ok {
			t.Errorf("record at %d/%d has event_id %q, not an event of the table",
				rec.Partition, rec.Offset, id)
			continue
		}

		for _, p := range brokersCheckBody(rec.Value, id, want) {
			t.Errorf("record of event %s: value: %s", id, p)
		}
		if rec.Key != want.Key {
			t.Errorf("record of event %s: key %q, want %q", id, rec.Key, want.Key)
		}
		if got := rec.Headers["event_type"]; got != want.Type {
			t.Errorf("record of event %s: event_type header %q, want %q", id, got, want.Type)
		}
		if got := rec.Headers["entity_key"]; got != want.Key {
			t.Errorf("record of event %s: entity_key header %q, want %q", id, got, want.Key)
		}

		if p, seen := partitionOf[want.Key]; seen && p != rec.Partition {
			t.Errorf("events of %s are in partitions %d and %d", want.Key, p, rec.Partition)
		}
		partitionOf[want.Key] = rec.Partition
		byPartition[rec.Partition] = append(byPartition[rec.Partition], rec)
	}

	for p, recs := range byPartition {
		sort.Slice(recs, func(i, j int) bool { return recs[i].Offset < recs[j].Offset })
		ids := make([]string, len(recs))
		for i, rec := range recs {
			ids[i] = rec.Headers["event_id"]
		}
		brokersCheckOrder(t, fmt.Sprintf("partition %d", p), ids, rows)
	}
}

// brokersKafkaCase checks the records the shop writes to Kafka, then makes
// every produce request fail and checks that the events arrive after it
// heals.
func brokersKafkaCase(t *testing.T, bin string) {
	cluster := brokersStartKafka(t)
	produced := &brokersProduceLog{}
	produced.observe(cluster)
	brokers := cluster.ListenAddrs()
	shop := brokersStartShop(t, bin, map[string]string{
		"EVENTS_DESTINATION":   "kafka",
		"EVENTS_KAFKA_BROKERS": strings.Join(brokers, ","),
		"EVENTS_KAFKA_TOPIC":   brokersTopic,
	})
	reader := brokersReadKafka(t, brokers)

	want := brokersShopActivity(shop, "kafka")
	rows := shop.waitAllPublished(len(want))
	byID := brokersMatch(t, rows, want)
	brokersWaitKafka(t, reader, produced, rows)
	brokersCheckKafka(t, reader.Records(), rows, byID)

	// Every produce request now fails with a retriable error, as when the
	// partition has too few in-sync replicas.
	fault := cluster.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Err:   kerr.NotEnoughReplicas,
		Count: -1,
	})
	before := len(rows)
	want = append(want, brokersCreateProducts(shop, "kafka while failing", 8)...)
	brokersWaitFailure(t, shop, before, "Kafka refuses produce requests")
	if fault.Hits() == 0 {
		t.Fatal("no produce request reached the failing cluster")
	}

	fault.Remove()
	rows = shop.waitAllPublished(len(want))
	byID = brokersMatch(t, rows, want)
	brokersWaitKafka(t, reader, produced, rows)
	brokersCheckKafka(t, reader.Records(), rows, byID)

	shop.Stop()
}

// brokersKafkaRestartCase takes the whole cluster away (connections are
// refused) and brings it back on the same ports with its log kept.
func brokersKafkaRestartCase(t *testing.T, bin string) {
	dataDir := filepath.Join(t.TempDir(), "kafka")
	var mu sync.Mutex
	cluster := brokersStartKafka(t, kfake.DataDir(dataDir))
	produced := &brokersProduceLog{}
	produced.observe(cluster)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		cluster.Close()
	})

	brokers := cluster.ListenAddrs()
	ports := make([]int, len(brokers))
	for i, addr := range brokers {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if ports[i], err = strconv.Atoi(port); err != nil {
			t.Fatal(err)
		}
	}

	shop := brokersStartShop(t, bin, map[string]string{
		"EVENTS_DESTINATION":   "kafka",
		"EVENTS_KAFKA_BROKERS": strings.Join(brokers, ","),
		"EVENTS_KAFKA_TOPIC":   brokersTopic,
	})
	reader := brokersReadKafka(t, brokers)

	want := brokersCreateProducts(shop, "before the outage", 2)
	rows := shop.waitAllPublished(len(want))
	brokersWaitKafka(t, reader, produced, rows)

	mu.Lock()
	cluster.Close()
	mu.Unlock()

	before := len(rows)
	want = append(want, brokersCreateProducts(shop, "during the outage", 3)...)
	brokersWaitFailure(t, shop, before, "no Kafka broker is reachable")

	restarted, err := kfake.NewCluster(
		kfake.Ports(ports...),
		kfake.SeedTopics(brokersPartitions, brokersTopic),
		kfake.DataDir(dataDir),
	)
	if err != nil {
		t.Fatalf("restart kfake on ports %v: %v", ports, err)
	}
	produced.observe(restarted)
	mu.Lock()
	cluster = restarted
	mu.Unlock()

	rows = shop.waitAllPublished(len(want))
	byID := brokersMatch(t, rows, want)
	brokersWaitKafka(t, reader, produced, rows)
	brokersCheckKafka(t, reader.Records(), rows, byID)

	shop.Stop()
}

// brokersSQSCase checks the messages the shop sends to a standard or FIFO
// queue, then deletes the queue while events are captured and checks that
// they arrive once it exists again.
func brokersSQSCase(t *testing.T, bin string, fifo bool) {
	endpoint := brokersSQSEndpoint(t)
	client := brokersSQSClient(endpoint)

	name := fmt.Sprintf("shop-events-%d", time.Now().UnixNano())
	if fifo {
		name += ".fifo"
	}
	queueURL := brokersCreateQueue(t, client, name)

	env := map[string]string{
		"EVENTS_DESTINATION":   "sqs",
		"EVENTS_SQS_QUEUE_URL": queueURL,
		"AWS_ENDPOINT_URL_SQS": endpoint,
	}
	brokersAWSEnv(env)
	shop := brokersStartShop(t, bin, env)

	want := brokersShopActivity(shop, "sqs")
	rows := shop.waitAllPublished(len(want))
	byID := brokersMatch(t, rows, want)
	brokersCheckSQS(t, brokersReceive(t, client, queueURL, brokersIDs(rows)), rows, byID, fifo)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: &queueURL})
	if err != nil {
		t.Fatalf("delete queue: %v", err)
	}

	before := len(rows)
	want = append(want, brokersCreateProducts(shop, "sqs while the queue is gone", 3)...)
	brokersWaitFailure(t, shop, before, "the queue does not exist")

	if again := brokersCreateQueue(t, client, name); again != queueURL {
		t.Fatalf("the recreated queue has URL %s, want %s", again, queueURL)
	}

	rows = shop.waitAllPublished(len(want))
	byID = brokersMatch(t, rows, want)
	newIDs := brokersIDs(rows[before:])
	brokersCheckSQS(t, brokersReceive(t, client, queueURL, newIDs), rows, byID, fifo)

	shop.Stop()
}

// brokersIDs returns the set of the rows' event ids.
func brokersIDs(rows []brokersRow) map[string]bool {
	ids := make(map[string]bool, len(rows))
	for _, r := range rows {
		ids[r.ID] = true
	}

	return ids
}

// brokersCheckSQS checks every message against the contract: the body is
// the event body, the attributes carry the id, type and entity key and, on
// a FIFO queue, the group is the entity key, the deduplication id is the
// event id and one entity's events arrive in capture order.
func brokersCheckSQS(
	t *testing.T, msgs []brokersSQSMessage, rows []brokersRow,
	byID map[string]brokersExpected, fifo bool,
) {
	t.Helper()

	byGroup := map[string][]string{}
	for _, m := range msgs {
		id := m.Attributes["event_id"]
		want, ok := byID[id]
		if !ok {
			t.Errorf("message with event_id %q is not an event of the table: %s", id, m.Body)
			continue
		}

		for _, p := range brokersCheckBody([]byte(m.Body), id, want) {
			t.Errorf("message of event %s: body: %s", id, p)
		}
		if got := m.Attributes["event_type"]; got != want.Type {
			t.Errorf("message of event %s: event_type %q, want %q", id, got, want.Type)
		}
		if got := m.Attributes["entity_key"]; got != want.Key {
			t.Errorf("message of event %s: entity_key %q, want %q", id, got, want.Key)
		}

		if !fifo {
			continue
		}
		if m.GroupID != want.Key {
			t.Errorf("message of event %s: MessageGroupId %q, want %q", id, m.GroupID, want.Key)
		}
		if m.DedupID != id {
			t.Errorf("message of event %s: MessageDeduplicationId %q, want the event id",
				id, m.DedupID)
		}
		byGroup[m.GroupID] = append(byGroup[m.GroupID], id)
	}

	for group, ids := range byGroup {
		brokersCheckOrder(t, "group "+group, ids, rows)
	}
}

// brokersEventBridgeCase checks the PutEvents entries of the shop, with
// requests that PutEvents accepts in part.
func brokersEventBridgeCase(t *testing.T, bin string) {
	const bus = "shop-bus"
	const products = 20
	const maxInFlight = 8 // the publisher's default MaxInFlight

	eb := brokersStartEventBridge(t)
	env := map[string]string{
		"EVENTS_DESTINATION":           "eventbridge",
		"EVENTS_EVENTBRIDGE_BUS":       bus,
		"AWS_ENDPOINT_URL_EVENTBRIDGE": eb.URL,
	}
	brokersAWSEnv(env)
	shop := brokersStartShop(t, bin, env)

	// While the fake holds every request, all events reach the publisher:
	// those beyond its request slots queue up and leave together once the
	// gate opens, so some request carries several entries, and the fake
	// refuses part of it.
	want := brokersCreateProducts(shop, "eventbridge", products)
	brokersWait(t, "every event handed to the publisher", func() (bool, string) {
		leased := 0
		for _, r := range shop.rows() {
			if r.Leased {
				leased++
			}
		}
		held, entries := eb.waiting()
		done := leased == products && (held == maxInFlight || entries == products)
		return done, fmt.Sprintf("%d of %d rows claimed; %d requests with %d entries held",
			leased, products, held, entries)
	})
	eb.open()

	rows := shop.waitAllPublished(len(want))
	byID := brokersMatch(t, rows, want)
	requests, problems := eb.Requests()
	for _, p := range problems {
		t.Errorf("PutEvents request: %s", p)
	}

	outcomes := map[string][]bool{}
	mixed := false
	for _, req := range requests {
		if slices.Contains(req.Accepted, true) && slices.Contains(req.Accepted, false) {
			mixed = true
		}
		for i, e := range req.Entries {
			id := brokersDetailID(e.Detail)
			w, ok := byID[id]
			if !ok {
				t.Errorf("entry for unknown event %q: %s", id, e.Detail)
				continue
			}
			if got := brokersBodyAttempts(e.Detail); got != len(outcomes[id]) {
				t.Errorf("entry of event %s: Detail has attempts %d, but it was refused %d "+
					"times before", id, got, len(outcomes[id]))
			}
			outcomes[id] = append(outcomes[id], req.Accepted[i])

			if e.Source != "apso.domain-events" {
				t.Errorf("entry of event %s: Source %q, want apso.domain-events", id, e.Source)
			}
			if e.DetailType != w.Type {
				t.Errorf("entry of event %s: DetailType %q, want %q", id, e.DetailType, w.Type)
			}
			if e.EventBusName != bus {
				t.Errorf("entry of event %s: EventBusName %q, want %q", id, e.EventBusName, bus)
			}
			for _, p := range brokersCheckBody([]byte(e.Detail), id, w) {
				t.Errorf("entry of event %s: Detail: %s", id, p)
			}
		}
	}
	if !mixed {
		t.Fatalf("no PutEvents request had both accepted and refused entries (%d requests), "+
			"so a partial failure was not exercised", len(requests))
	}

	// Only refused entries go again: each event is refused some times, then
	// accepted once, and never sent after that; the row counts the refusals
	// as attempts.
	for _, r := range rows {
		got := outcomes[r.ID]
		accepted := slices.Index(got, true)
		if accepted != len(got)-1 || accepted < 0 {
			t.Errorf("event %s: outcomes of its sends %v, want refusals then one acceptance",
				r.ID, got)
		}
		if r.Attempts != accepted {
			t.Errorf("event %s: %d attempts in the table, but refused %d times",
				r.ID, r.Attempts, max(accepted, 0))
		}
	}

	shop.Stop()
}

// brokersBodyAttempts returns the attempts of an event body, or -1.
func brokersBodyAttempts(body string) int {
	v := struct {
		Attempts int `json:"attempts"`
	}{Attempts: -1}
	_ = json.Unmarshal([]byte(body), &v)

	return v.Attempts
}

// brokersDetailID returns the event id inside a Detail.
func brokersDetailID(detail string) string {
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(detail), &v)

	return v.ID
}

// brokersFanOutCase delivers to a webhook and Kafka at once while the
// webhook answers 503: Kafka must get each event once, the webhook all of
// them after it recovers.
func brokersFanOutCase(t *testing.T, bin string) {
	cluster := brokersStartKafka(t)
	brokers := cluster.ListenAddrs()
	webhook := brokersStartWebhook(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	webhook.setDown(true)

	shop := brokersStartShop(t, bin, map[string]string{
		"EVENTS_DESTINATION":    "webhook,kafka",
		"EVENTS_WEBHOOK_URL":    webhook.URL,
		"EVENTS_WEBHOOK_SECRET": webhook.Secret,
		"EVENTS_KAFKA_BROKERS":  strings.Join(brokers, ","),
		"EVENTS_KAFKA_TOPIC":    brokersTopic,
	})
	reader := brokersReadKafka(t, brokers)

	want := brokersShopActivity(shop, "fan-out")
	// While the webhook is down, the relay defers the events it cannot
	// offer there and probes it with one event at a time. An event is not
	// relayed while an older event of its entity is pending, so Kafka gets
	// the oldest event of each entity now and the others after the webhook
	// recovers. Wait until Kafka has those and the webhook got a retry.
	brokersWait(t, "Kafka has the first event of every entity and the webhook saw a retry",
		func() (bool, string) {
			rows := shop.rows()
			have := reader.ids()
			_, refused, _ := webhook.state()
			firsts, inKafka, retried := 0, 0, 0
			seen := map[string]bool{}
			for _, r := range rows {
				if r.Status != "pending" {
					t.Fatalf("event %s is %s while the webhook is down", r.ID, r.Status)
				}
				if !seen[r.EntityKey] {
					seen[r.EntityKey] = true
					firsts++
					if have[r.ID] > 0 {
						inKafka++
					}
				}
				if refused[r.ID] >= 2 {
					retried++
				}
			}
			done := len(rows) == len(want) && inKafka == firsts && retried > 0
			return done, fmt.Sprintf("%d rows; %d of %d first events in Kafka; "+
				"%d sent to the webhook more than once",
				len(rows), inKafka, firsts, retried)
		})
	brokersWait(t, "the whole topic read", reader.caughtUp)
	brokersCheckOnce(t, reader, "while the webhook is down")

	inKafka := reader.ids()
	for _, r := range shop.rows() {
		if inKafka[r.ID] > 0 && r.DeliveredTo != "kafka" {
			t.Errorf("event %s is on the topic, but its delivered_to is %q, want kafka",
				r.ID, r.DeliveredTo)
		}
	}

	webhook.setDown(false)
	rows := shop.waitAllPublished(len(want))
	byID := brokersMatch(t, rows, want)

	accepted, _, problems := webhook.state()
	for _, p := range problems {
		t.Errorf("webhook: %s", p)
	}
	for _, r := range rows {
		body, ok := accepted[r.ID]
		if !ok {
			t.Errorf("the webhook never accepted event %s (%s)", r.ID, r.Type)
			continue
		}
		for _, p := range brokersCheckBody(body, r.ID, byID[r.ID]) {
			t.Errorf("webhook body of event %s: %s", r.ID, p)
		}
	}

	brokersWait(t, "the whole topic read", reader.caughtUp)
	brokersCheckOnce(t, reader, "after the webhook recovered")
	brokersCheckKafka(t, reader.Records(), rows, byID)

	shop.Stop()
}

// brokersCheckOnce fails the test for every event that is more than once on
// the topic.
func brokersCheckOnce(t *testing.T, reader *brokersKafkaReader, when string) {
	t.Helper()

	for id, n := range reader.ids() {
		if n != 1 {
			t.Errorf("%s: event %s is %d times on the topic, want once", when, id, n)
		}
	}
}

// brokersStartupErrorsCase starts the shop with a variable of a named
// destination missing: it must exit non-zero, naming the variable.
func brokersStartupErrorsCase(t *testing.T, bin string) {
	cases := []struct {
		name     string
		env      map[string]string
		variable string
	}{
		{
			name:     "kafka without brokers",
			env:      map[string]string{"EVENTS_DESTINATION": "kafka"},
			variable: "EVENTS_KAFKA_BROKERS",
		},
		{
			name: "kafka without topic",
			env: map[string]string{
				"EVENTS_DESTINATION": "kafka", "EVENTS_KAFKA_BROKERS": "127.0.0.1:1",
			},
			variable: "EVENTS_KAFKA_TOPIC",
		},
		{
			name:     "sqs without queue URL",
			env:      map[string]string{"EVENTS_DESTINATION": "sqs", "AWS_REGION": "us-east-1"},
			variable: "EVENTS_SQS_QUEUE_URL",
		},
		{
			name: "sqs without region",
			env: map[string]string{
				"EVENTS_DESTINATION":   "sqs",
				"EVENTS_SQS_QUEUE_URL": "http://127.0.0.1:1/000000000000/q",
			},
			variable: "AWS_REGION",
		},
		{
			name: "eventbridge without bus",
			env: map[string]string{
				"EVENTS_DESTINATION": "eventbridge", "AWS_REGION": "us-east-1",
			},
			variable: "EVENTS_EVENTBRIDGE_BUS",
		},
		{
			name: "fan-out with kafka unset",
			env: map[string]string{
				"EVENTS_DESTINATION":    "webhook,kafka",
				"EVENTS_WEBHOOK_URL":    "http://127.0.0.1:1/hooks",
				"EVENTS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			},
			variable: "EVENTS_KAFKA_BROKERS",
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := brokersShopEnv(t, filepath.Join(t.TempDir(), "shop.db"), brokersFreePort(t))
			env["AWS_EC2_METADATA_DISABLED"] = "true"
			for k, v := range tc.env {
				env[k] = v
			}

			out := brokersStartupError(t, bin, env)
			if !strings.Contains(out, tc.variable) {
				t.Errorf("the error does not name %s:\n%s", tc.variable, out)
			}
		})
	}
}
