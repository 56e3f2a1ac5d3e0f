package publishertest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// Received is one delivery as the destination's own reader saw it.
type Received struct {
	// ID is the event id as the destination carries it: the webhook-id
	// header, a Kafka header, an SQS attribute, or the body's id for
	// EventBridge.
	ID string

	// Type is the event type as the destination carries it: a header, an
	// attribute or the EventBridge DetailType.
	Type string

	// EntityKey is the entity key as the destination carries it, or "" when
	// the destination does not carry it.
	EntityKey string

	// Body holds the exact bytes that arrived.
	Body []byte
}

// Harness is what a destination's test gives the suite.
type Harness struct {
	// Publisher is the publisher under test, fresh for every call of the
	// constructor given to Run. The suite closes it when the case ends.
	Publisher message.Publisher

	// Received returns everything that arrived so far, in arrival order. It
	// may fail t when the reader itself fails.
	Received func(t *testing.T) []Received

	// Break makes the destination fail every delivery until Heal is called.
	// When either is nil the failure case is skipped with a log line.
	Break, Heal func()

	// MaxBytes is the body size above which the publisher must refuse an
	// event, with an error wrapping publishers.ErrPermanent, before sending
	// it. Zero means the destination has no limit, and the oversize case is
	// skipped with a log line.
	MaxBytes int

	// NoAstralReason, when not empty, leaves characters above U+FFFF (emoji)
	// out of the byte-for-byte case and logs the reason. It exists for
	// emulators that refuse them where the real service accepts them.
	NoAstralReason string

	// OrderedPerEntity says the destination promises that events with the
	// same entity key arrive in publishing order, as a Kafka key or an SQS
	// FIFO message group does.
	OrderedPerEntity bool
}

// Features describes a destination under test for suites that need more
// than [Harness] says. Run does not read it.
type Features struct {
	// Name is the destination's name, as written in EVENTS_DESTINATION.
	Name string
}

// deadline bounds every wait of the suite. It only turns a hang into a
// failure and is never used to judge speed.
const deadline = 10 * time.Second

// publishDeadline bounds one Publish call, which may include the client's
// own retries against a broken destination.
const publishDeadline = 60 * time.Second

// pollInterval is how often the suite asks the reader what arrived.
const pollInterval = 20 * time.Millisecond

// Run runs every case of the suite as a subtest. newHarness is called once
// per case with the subtest's t and may register cleanups on it.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()

	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"BodyArrivesByteForByte", testBodyArrivesByteForByte},
		{"IDAndTypeCarried", testIDAndTypeCarried},
		{"OrderPerEntity", testOrderPerEntity},
		{"FailureReported", testFailureReported},
		{"OversizeRefused", testOversizeRefused},
		{"CloseIsIdempotent", testCloseIsIdempotent},
		{"ConcurrentPublish", testConcurrentPublish},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Publisher == nil || h.Received == nil {
				t.Fatal("publishertest: the harness needs a Publisher and a Received func")
			}
			t.Cleanup(func() {
				if err := h.Publisher.Close(); err != nil {
					t.Errorf("close publisher: %v", err)
				}
			})

			c.run(t, h)
		})
	}
}

func testBodyArrivesByteForByte(t *testing.T, h Harness) {
	large := 64 << 10
	if h.MaxBytes > 0 && large > h.MaxBytes/2 {
		large = h.MaxBytes / 2
	}

	msgs := []*message.Message{
		NewEvent("customer.created", "Customer:1", map[string]any{
			"name": "Zoë Ångström – 東京 – Привет – مرحبا – עברית",
			"note": "combining e\u0301 and NUL-free controls \t\n",
		}),
		NewEvent("customer.updated", "Customer:1", map[string]any{
			"mood": "🚀🔥👩‍💻 🇫🇷 🏳️‍🌈",
		}),
		NewEvent("comment.created", "Comment:7", map[string]any{
			"html": `<script>alert("x")</script> & "double" 'single' <b>&amp;</b>`,
		}),
		NewEvent("document.created", "Document:3", map[string]any{
			"text": largeText(large),
		}),
		newHandWrittenEvent("note.created"),
	}
	if h.NoAstralReason != "" {
		t.Logf("leaving out the emoji event: %s", h.NoAstralReason)
		msgs = append(msgs[:1], msgs[2:]...)
	}
	publish(t, h.Publisher, msgs...)

	got := waitForIDs(t, h, ids(msgs))
	for _, msg := range msgs {
		r := got[msg.UUID]
		if !bytes.Equal(r.Body, msg.Payload) {
			at := firstDifference(msg.Payload, r.Body)
			t.Errorf("event %s (%s): body changed in transit at byte %d\n"+
				"sent %d bytes: ...%s\ngot  %d bytes: ...%s",
				msg.UUID, msg.Metadata.Get(publishers.MetadataType), at,
				len(msg.Payload), around(msg.Payload, at), len(r.Body), around(r.Body, at))
		}
	}
}

func testIDAndTypeCarried(t *testing.T, h Harness) {
	msgs := []*message.Message{
		NewEvent("product.created", "Product:1", map[string]any{"id": 1, "name": "lamp"}),
		NewEvent("product.updated", "Product:1", map[string]any{"id": 1, "name": "desk lamp"}),
		NewEvent("orderItem.removed", "OrderItem:9", map[string]any{"id": 9}),
	}

	// One call with several messages, as Watermill's Publish allows.
	publish(t, h.Publisher, msgs...)

	got := waitForIDs(t, h, ids(msgs))
	for _, msg := range msgs {
		r := got[msg.UUID]
		wantType := msg.Metadata.Get(publishers.MetadataType)
		if r.Type != wantType {
			t.Errorf("event %s: type = %q, want %q", msg.UUID, r.Type, wantType)
		}

		wantKey := msg.Metadata.Get(publishers.MetadataEntityKey)
		if r.EntityKey != "" && r.EntityKey != wantKey {
			t.Errorf("event %s: entity key = %q, want %q", msg.UUID, r.EntityKey, wantKey)
		}
	}
}

func testOrderPerEntity(t *testing.T, h Harness) {
	entities := []string{"Order:1", "Order:2", "Order:3"}
	want := map[string][]string{}
	entityOf := map[string]string{}

	var msgs []*message.Message
	for i := range 20 {
		entity := entities[i%len(entities)]
		msg := NewEvent("order.updated", entity, map[string]any{"seq": i})
		msgs = append(msgs, msg)
		want[entity] = append(want[entity], msg.UUID)
		entityOf[msg.UUID] = entity
	}

	// Sequential calls, as the relay publishes one event after another.
	for _, msg := range msgs {
		publish(t, h.Publisher, msg)
	}

	arrived := waitFor(t, h, "all 20 events", func(rs []Received) bool {
		return containsAll(rs, ids(msgs))
	})
	if !h.OrderedPerEntity {
		t.Log("publishertest: destination does not promise per-entity order; checked arrival only")
		return
	}

	got := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range arrived {
		entity, ours := entityOf[r.ID]
		if !ours || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		got[entity] = append(got[entity], r.ID)
	}
	for _, entity := range entities {
		if !slices.Equal(got[entity], want[entity]) {
			t.Errorf("entity %s: events arrived as %v, published as %v",
				entity, got[entity], want[entity])
		}
	}
}

func testFailureReported(t *testing.T, h Harness) {
	if h.Break == nil || h.Heal == nil {
		t.Log("publishertest: harness cannot break the destination; failure case skipped")
		return
	}

	msg := NewEvent("invoice.created", "Invoice:1", map[string]any{"total": 42})

	h.Break()
	err := publishErr(t, h.Publisher, msg)
	h.Heal()
	if err == nil {
		t.Fatal("Publish to a broken destination returned nil, want an error")
	}
	t.Logf("error from the broken destination: %v", err)

	// The relay retries the same message once the destination is back.
	if err := publishErr(t, h.Publisher, msg); err != nil {
		t.Fatalf("Publish after Heal: %v", err)
	}
	waitForIDs(t, h, []string{msg.UUID})
}

func testOversizeRefused(t *testing.T, h Harness) {
	if h.MaxBytes <= 0 {
		t.Log("publishertest: destination has no size limit; oversize case skipped")
		return
	}

	big := NewEvent("blob.created", "Blob:1", map[string]any{"data": largeText(h.MaxBytes + 1)})
	if len(big.Payload) <= h.MaxBytes {
		t.Fatalf("publishertest: oversize body is %d bytes, not over %d",
			len(big.Payload), h.MaxBytes)
	}

	err := publishErr(t, h.Publisher, big)
	if !errors.Is(err, publishers.ErrPermanent) {
		t.Fatalf("Publish of a %d-byte body with limit %d: err = %v, "+
			"want one wrapping ErrPermanent", len(big.Payload), h.MaxBytes, err)
	}

	// A small event published afterwards proves the reader is live; by the
	// time it arrives, a sent oversize event would have arrived too.
	small := NewEvent("blob.created", "Blob:2", map[string]any{"data": "small"})
	publish(t, h.Publisher, small)

	if _, sent := waitForIDs(t, h, []string{small.UUID})[big.UUID]; sent {
		t.Fatal("the refused oversize event arrived anyway")
	}
}

func testCloseIsIdempotent(t *testing.T, h Harness) {
	first := NewEvent("session.created", "Session:1", map[string]any{"n": 1})
	publish(t, h.Publisher, first)
	waitForIDs(t, h, []string{first.UUID})

	if err := h.Publisher.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := h.Publisher.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}

	late := NewEvent("session.removed", "Session:1", map[string]any{"n": 2})
	if err := publishErr(t, h.Publisher, late); err == nil {
		t.Fatal("Publish after Close returned nil, want an error")
	}
}

func testConcurrentPublish(t *testing.T, h Harness) {
	const goroutines, perGoroutine = 16, 8

	var (
		mu   sync.Mutex
		sent []string
		wg   sync.WaitGroup
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()

			for i := range perGoroutine {
				entity := fmt.Sprintf("Cart:%d", g)
				msg := NewEvent("cart.updated", entity, map[string]any{"g": g, "i": i})
				if err := h.Publisher.Publish(Topic, msg); err != nil {
					t.Errorf("goroutine %d, event %d: Publish: %v", g, i, err)
					return
				}

				mu.Lock()
				sent = append(sent, msg.UUID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	arrived := waitFor(t, h, fmt.Sprintf("all %d events", len(sent)), func(rs []Received) bool {
		return containsAll(rs, sent)
	})

	count := map[string]int{}
	for _, r := range arrived {
		count[r.ID]++
	}
	for _, id := range sent {
		if count[id] != 1 {
			t.Errorf("event %s arrived %d times, want exactly once", id, count[id])
		}
	}
}

// publish sends msgs in one call and fails t on an error.
func publish(t *testing.T, pub message.Publisher, msgs ...*message.Message) {
	t.Helper()

	if err := publishErr(t, pub, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// publishErr sends msgs in one call and returns its error, failing t if the
// call does not return at all.
func publishErr(t *testing.T, pub message.Publisher, msgs ...*message.Message) error {
	t.Helper()

	done := make(chan error, 1)
	go func() { done <- pub.Publish(Topic, msgs...) }()

	select {
	case err := <-done:
		return err
	case <-time.After(publishDeadline):
		t.Fatalf("Publish did not return within %s", publishDeadline)
		return nil
	}
}

// waitFor polls the reader until cond holds, failing t at the deadline. It
// returns the arrivals that satisfied cond.
func waitFor(t *testing.T, h Harness, what string, cond func([]Received) bool) []Received {
	t.Helper()

	stop := time.Now().Add(deadline)
	for {
		got := h.Received(t)
		if cond(got) {
			return got
		}
		if time.Now().After(stop) {
			t.Fatalf("waited %s for %s; %d deliveries arrived: %s",
				deadline, what, len(got), summary(got))
		}
		time.Sleep(pollInterval)
	}
}

// waitForIDs waits until every id arrived and returns the first arrival of
// each, by id.
func waitForIDs(t *testing.T, h Harness, want []string) map[string]Received {
	t.Helper()

	arrived := waitFor(t, h, fmt.Sprintf("events %v", want), func(rs []Received) bool {
		return containsAll(rs, want)
	})

	byID := map[string]Received{}
	for _, r := range arrived {
		if _, dup := byID[r.ID]; !dup {
			byID[r.ID] = r
		}
	}

	return byID
}

func containsAll(rs []Received, want []string) bool {
	have := make(map[string]bool, len(rs))
	for _, r := range rs {
		have[r.ID] = true
	}
	for _, id := range want {
		if !have[id] {
			return false
		}
	}

	return true
}

func ids(msgs []*message.Message) []string {
	out := make([]string, len(msgs))
	for i, msg := range msgs {
		out[i] = msg.UUID
	}

	return out
}

// largeText returns n bytes of readable ASCII text.
func largeText(n int) string {
	const pattern = "the quick brown fox jumps over the lazy dog 0123456789 "

	return strings.Repeat(pattern, n/len(pattern)+1)[:n]
}

// firstDifference returns the offset of the first byte where a and b
// differ.
func firstDifference(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}

	return n
}

// around quotes the bytes of b near offset at, for a failure message.
func around(b []byte, at int) string {
	const span = 60

	start := max(0, at-span)
	end := min(len(b), at+span)

	return fmt.Sprintf("%q", b[start:end])
}

func summary(rs []Received) string {
	const limit = 10

	var parts []string
	for i, r := range rs {
		if i == limit {
			parts = append(parts, fmt.Sprintf("... and %d more", len(rs)-limit))
			break
		}
		parts = append(parts, fmt.Sprintf("{id=%s type=%s %dB}", r.ID, r.Type, len(r.Body)))
	}

	return "[" + strings.Join(parts, " ") + "]"
}
