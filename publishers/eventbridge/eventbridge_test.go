package eventbridge_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/eventbridge"
	"github.com/apsoai/domainevents/publishers/publishertest"
)

const testBus = "domain-events-bus"

func newPublisher(t testing.TB, cfg eventbridge.Config) *eventbridge.Publisher {
	t.Helper()

	pub, err := eventbridge.New(cfg)
	if err != nil {
		t.Fatalf("eventbridge.New: %v", err)
	}
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})

	return pub
}

// publishAll publishes each message from a goroutine of its own and returns
// the errors by message UUID.
func publishAll(pub message.Publisher, msgs []*message.Message) map[string]error {
	var (
		mu   sync.Mutex
		errs = map[string]error{}
		wg   sync.WaitGroup
	)
	for _, msg := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()

			err := pub.Publish("ignored", msg)
			mu.Lock()
			errs[msg.UUID] = err
			mu.Unlock()
		}()
	}
	wg.Wait()

	return errs
}

func TestPublisher_conformance(t *testing.T) {
	publishertest.Run(t, func(t *testing.T) publishertest.Harness {
		fake := newFakeBus(t)
		cfg := eventbridge.Config{EventBus: testBus, AWS: fake.awsConfig(), MaxBytes: 100_000}

		pub, err := eventbridge.New(cfg)
		if err != nil {
			t.Fatalf("eventbridge.New: %v", err)
		}

		return publishertest.Harness{
			Publisher: pub,
			Received:  fake.received,
			Break:     func() { fake.fail(500, "InternalFailure") },
			Heal:      func() { fake.fail(0, "") },
			MaxBytes:  cfg.MaxBytes,
		}
	})
}

func TestPublisher_entryLayout(t *testing.T) {
	fake := newFakeBus(t)
	pub := newPublisher(t, eventbridge.Config{EventBus: testBus, AWS: fake.awsConfig()})

	msg := publishertest.NewEvent("product.created", "Product:42", map[string]any{"id": 42})
	if err := pub.Publish("ignored", msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	_, accepted := fake.snapshot(t)
	if len(accepted) != 1 {
		t.Fatalf("fake accepted %d entries, want 1", len(accepted))
	}
	want := putEntry{
		Source:       "apso.domain-events",
		DetailType:   "product.created",
		Detail:       string(msg.Payload),
		EventBusName: testBus,
	}
	if accepted[0] != want {
		t.Fatalf("entry = %+v\nwant    %+v", accepted[0], want)
	}
}

func TestPublisher_gathersConcurrentCallsIntoRequestsOfTen(t *testing.T) {
	fake := newFakeBus(t)
	// A linger this long means a request leaves only once it is full.
	pub := newPublisher(t, eventbridge.Config{
		EventBus: testBus, AWS: fake.awsConfig(), Linger: time.Hour,
	})

	var msgs []*message.Message
	for i := range 20 {
		msgs = append(msgs, publishertest.NewEvent("cart.updated", "", map[string]any{"i": i}))
	}
	for id, err := range publishAll(pub, msgs) {
		if err != nil {
			t.Errorf("event %s: %v", id, err)
		}
	}

	requests, accepted := fake.snapshot(t)
	if len(requests) != 2 || len(requests[0]) != 10 || len(requests[1]) != 10 {
		sizes := make([]int, len(requests))
		for i, r := range requests {
			sizes[i] = len(r)
		}
		t.Fatalf("request sizes = %v, want [10 10]", sizes)
	}
	if len(accepted) != 20 {
		t.Fatalf("fake accepted %d entries, want 20", len(accepted))
	}
}

func TestPublisher_partialFailureFailsOnlyThoseCallers(t *testing.T) {
	fake := newFakeBus(t)
	pub := newPublisher(t, eventbridge.Config{
		EventBus: testBus, AWS: fake.awsConfig(), Linger: time.Hour, BatchSize: 4,
	})

	throttled := publishertest.NewEvent("a.created", "", map[string]any{"fail": "throttle"})
	malformed := publishertest.NewEvent("a.created", "", map[string]any{"fail": "malformed"})
	ok1 := publishertest.NewEvent("a.created", "", map[string]any{"n": 1})
	ok2 := publishertest.NewEvent("a.created", "", map[string]any{"n": 2})

	fake.setFailEntry(func(e putEntry) (string, string) {
		switch {
		case strings.Contains(e.Detail, `"throttle"`):
			return "ThrottlingException", "slow down"
		case strings.Contains(e.Detail, `"malformed"`):
			return "MalformedDetail", "detail is not valid"
		}
		return "", ""
	})

	errs := publishAll(pub, []*message.Message{throttled, malformed, ok1, ok2})

	requests, _ := fake.snapshot(t)
	if len(requests) != 1 || len(requests[0]) != 4 {
		t.Fatalf("fake got %d requests, want one with all 4 entries", len(requests))
	}
	if err := errs[throttled.UUID]; !errors.Is(err, publishers.ErrUnavailable) {
		t.Errorf("throttled entry: err = %v, want ErrUnavailable", err)
	}
	if err := errs[malformed.UUID]; !errors.Is(err, publishers.ErrPermanent) {
		t.Errorf("malformed entry: err = %v, want ErrPermanent", err)
	}
	for _, msg := range []*message.Message{ok1, ok2} {
		if err := errs[msg.UUID]; err != nil {
			t.Errorf("accepted entry %s: err = %v, want nil", msg.UUID, err)
		}
	}
}

func TestPublisher_multiMessageCallReportsEachEntry(t *testing.T) {
	fake := newFakeBus(t)
	pub := newPublisher(t, eventbridge.Config{EventBus: testBus, AWS: fake.awsConfig()})

	good := publishertest.NewEvent("a.created", "", map[string]any{"n": 1})
	bad := publishertest.NewEvent("a.created", "", map[string]any{"fail": "yes"})
	fake.setFailEntry(func(e putEntry) (string, string) {
		if strings.Contains(e.Detail, `"fail"`) {
			return "InternalFailure", "try again"
		}
		return "", ""
	})

	err := pub.Publish("ignored", good, bad)
	if !errors.Is(err, publishers.ErrUnavailable) || !strings.Contains(err.Error(), bad.UUID) {
		t.Fatalf("err = %v, want ErrUnavailable naming %s", err, bad.UUID)
	}
	if strings.Contains(err.Error(), good.UUID) {
		t.Fatalf("err = %v also names the accepted event %s", err, good.UUID)
	}
}

func TestPublisher_refusesBeforeSending(t *testing.T) {
	const maxBytes = 1000
	source := eventbridge.DefaultSource

	// body returns a JSON object of exactly n bytes.
	body := func(n int) []byte {
		return []byte(`{"x":"` + strings.Repeat("a", n-8) + `"}`)
	}
	event := func(eventType string, payload []byte) *message.Message {
		msg := message.NewMessage("id-"+eventType[:min(len(eventType), 8)], payload)
		msg.Metadata.Set(publishers.MetadataType, eventType)
		return msg
	}
	limitBody := maxBytes - len(source) - len("a.created")

	cases := []struct {
		name    string
		msg     *message.Message
		refused bool
	}{
		{"entry at the limit", event("a.created", body(limitBody)), false},
		{"entry one byte over", event("a.created", body(limitBody+1)), true},
		{"detail type of 128", event(strings.Repeat("t", 128), []byte(`{}`)), false},
		{"detail type of 129", event(strings.Repeat("t", 129), []byte(`{}`)), true},
		{"no event type", event("", []byte(`{}`)), true},
		{"body is an array", event("a.created", []byte(`[1,2]`)), true},
		{"body is not JSON", event("a.created", []byte(`{"a":`)), true},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := newFakeBus(t)
			pub := newPublisher(t, eventbridge.Config{
				EventBus: testBus, AWS: fake.awsConfig(), MaxBytes: maxBytes,
			})

			err := pub.Publish("ignored", c.msg)
			requests, _ := fake.snapshot(t)

			if c.refused {
				if !errors.Is(err, publishers.ErrPermanent) {
					t.Fatalf("err = %v, want ErrPermanent", err)
				}
				if len(requests) != 0 {
					t.Fatalf("a refused entry was sent in %d requests", len(requests))
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if len(requests) != 1 {
				t.Fatalf("fake got %d requests, want 1", len(requests))
			}
		})
	}
}

func TestPublisher_requestsStayUnderByteLimit(t *testing.T) {
	const maxBytes = 1000
	fake := newFakeBus(t)
	pub := newPublisher(t, eventbridge.Config{
		EventBus: testBus, AWS: fake.awsConfig(), MaxBytes: maxBytes, Linger: 20 * time.Millisecond,
	})

	var msgs []*message.Message
	for i := range 9 {
		msgs = append(msgs, publishertest.NewEvent("doc.created", "", map[string]any{
			"i": i, "text": strings.Repeat("x", 300),
		}))
	}
	for id, err := range publishAll(pub, msgs) {
		if err != nil {
			t.Errorf("event %s: %v", id, err)
		}
	}

	requests, accepted := fake.snapshot(t)
	if len(accepted) != len(msgs) {
		t.Fatalf("fake accepted %d entries, want %d", len(accepted), len(msgs))
	}
	for i, req := range requests {
		total := 0
		for _, e := range req {
			total += len(e.Source) + len(e.DetailType) + len(e.Detail)
		}
		if total > maxBytes {
			t.Errorf("request %d holds %d entries of %d bytes, over %d",
				i, len(req), total, maxBytes)
		}
	}
}

func TestPublisher_wholeRequestErrors(t *testing.T) {
	cases := []struct {
		name            string
		status          int
		code            string
		wantUnavailable bool
	}{
		{"server error", 500, "InternalFailure", true},
		{"throttled", 400, "ThrottlingException", true},
		{"missing bus", 400, "ResourceNotFoundException", true},
		{"access denied", 400, "AccessDeniedException", false},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := newFakeBus(t)
			fake.fail(c.status, c.code)
			pub := newPublisher(t, eventbridge.Config{EventBus: testBus, AWS: fake.awsConfig()})

			err := pub.Publish("ignored", publishertest.NewEvent("a.created", "", nil))
			if err == nil {
				t.Fatal("Publish returned nil")
			}
			if got := errors.Is(err, publishers.ErrUnavailable); got != c.wantUnavailable {
				t.Fatalf("err = %v; wraps ErrUnavailable = %v, want %v",
					err, got, c.wantUnavailable)
			}
			if errors.Is(err, publishers.ErrPermanent) {
				t.Fatalf("err = %v wraps ErrPermanent", err)
			}
		})
	}
}

func TestPublisher_noLingerStillDelivers(t *testing.T) {
	fake := newFakeBus(t)
	pub := newPublisher(t, eventbridge.Config{EventBus: testBus, AWS: fake.awsConfig(), Linger: -1})

	var msgs []*message.Message
	for i := range 30 {
		msgs = append(msgs, publishertest.NewEvent("a.created", "", map[string]any{"i": i}))
	}
	for id, err := range publishAll(pub, msgs) {
		if err != nil {
			t.Errorf("event %s: %v", id, err)
		}
	}

	requests, accepted := fake.snapshot(t)
	if len(accepted) != 30 {
		t.Fatalf("fake accepted %d entries, want 30", len(accepted))
	}
	for i, req := range requests {
		if len(req) > eventbridge.MaxBatchSize {
			t.Errorf("request %d holds %d entries", i, len(req))
		}
	}
}

func TestNew_invalidConfig(t *testing.T) {
	fake := newFakeBus(t)
	good := fake.awsConfig()
	noRegion := good
	noRegion.Region = ""
	noCreds := good
	noCreds.Credentials = nil

	cases := []struct {
		name string
		cfg  eventbridge.Config
		want string
	}{
		{"no bus", eventbridge.Config{AWS: good}, "no event bus"},
		{"no region", eventbridge.Config{EventBus: testBus, AWS: noRegion}, "region"},
		{"no credentials", eventbridge.Config{EventBus: testBus, AWS: noCreds}, "credentials"},
		{"batch of 11", eventbridge.Config{EventBus: testBus, AWS: good, BatchSize: 11},
			"BatchSize"},
		{"negative max bytes", eventbridge.Config{EventBus: testBus, AWS: good, MaxBytes: -1},
			"MaxBytes"},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := eventbridge.New(c.cfg)
			if err == nil {
				t.Fatal("New returned no error")
			}
			if !strings.Contains(err.Error(), "eventbridge: invalid config") ||
				!strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to say invalid config and %q", err, c.want)
			}
		})
	}
}
