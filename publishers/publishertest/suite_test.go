package publishertest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/publishertest"
)

// memoryDestination is an in-process destination that keeps every promise
// of the suite, so the suite itself can be checked.
type memoryDestination struct {
	mu       sync.Mutex
	broken   bool
	closed   bool
	maxBytes int
	received []publishertest.Received
}

func (d *memoryDestination) Publish(_ string, msgs ...*message.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()

	for _, msg := range msgs {
		switch {
		case d.closed:
			return errors.New("memory: publisher is closed")
		case len(msg.Payload) > d.maxBytes:
			return fmt.Errorf("memory: event too large: %w", publishers.ErrPermanent)
		case d.broken:
			return fmt.Errorf("memory: broken: %w", publishers.ErrUnavailable)
		}

		d.received = append(d.received, publishertest.Received{
			ID:        msg.UUID,
			Type:      msg.Metadata.Get(publishers.MetadataType),
			EntityKey: msg.Metadata.Get(publishers.MetadataEntityKey),
			Body:      bytes.Clone(msg.Payload),
		})
	}

	return nil
}

func (d *memoryDestination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()

	d.closed = true

	return nil
}

func (d *memoryDestination) setBroken(broken bool) {
	d.mu.Lock()
	defer d.mu.Unlock()

	d.broken = broken
}

func TestRun_memoryDestination(t *testing.T) {
	publishertest.Run(t, func(t *testing.T) publishertest.Harness {
		d := &memoryDestination{maxBytes: 256 << 10}

		return publishertest.Harness{
			Publisher: d,
			Received: func(*testing.T) []publishertest.Received {
				d.mu.Lock()
				defer d.mu.Unlock()

				return slices.Clone(d.received)
			},
			Break:            func() { d.setBroken(true) },
			Heal:             func() { d.setBroken(false) },
			MaxBytes:         d.maxBytes,
			OrderedPerEntity: true,
		}
	})
}

func TestNewEvent_contractBody(t *testing.T) {
	msg := publishertest.NewEvent("product.created", "Product:42",
		map[string]any{"name": `<b>"Zoë" & 🚀</b>`})

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(msg.Payload, &fields); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, msg.Payload)
	}

	wantKeys := []string{
		"id", "type", "payload", "status", "attempts", "created_at", "published_at",
	}
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(msg.Payload))
	_, _ = dec.Token()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("read key: %v", err)
		}
		keys = append(keys, tok.(string))

		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("read value: %v", err)
		}
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys = %v, want %v", keys, wantKeys)
	}

	checks := map[string]string{
		"id":           fmt.Sprintf("%q", msg.UUID),
		"type":         `"product.created"`,
		"status":       `"pending"`,
		"attempts":     `0`,
		"published_at": `null`,
	}
	for key, want := range checks {
		if got := string(fields[key]); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	if !strings.HasSuffix(string(fields["created_at"]), `Z"`) {
		t.Errorf("created_at = %s, want RFC 3339 in UTC", fields["created_at"])
	}
	if !bytes.Contains(msg.Payload, []byte(`<b>\"Zoë\" & 🚀</b>`)) {
		t.Errorf("payload characters were escaped: %s", msg.Payload)
	}

	if got := msg.Metadata.Get(publishers.MetadataType); got != "product.created" {
		t.Errorf("metadata type = %q", got)
	}
	if got := msg.Metadata.Get(publishers.MetadataEntityKey); got != "Product:42" {
		t.Errorf("metadata entity key = %q", got)
	}
	if other := publishertest.NewEvent("product.created", "", nil); other.UUID == msg.UUID {
		t.Error("two events share one UUID")
	}
}
