package webhook_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/apsoai/domainevents/publishers/publishertest"
	"github.com/apsoai/domainevents/publishers/webhook"
)

func TestPublisher_conformance(t *testing.T) {
	publishertest.Run(t, func(t *testing.T) publishertest.Harness {
		rcv := newReceiver(t)
		pub := newPublisher(t, webhook.Config{URL: rcv.URL})

		return publishertest.Harness{
			Publisher: pub,
			Received: func(t *testing.T) []publishertest.Received {
				return accepted(t, rcv)
			},
			Break:    func() { rcv.answerWith(http.StatusServiceUnavailable, "down for a test") },
			Heal:     func() { rcv.answerWith(http.StatusNoContent, "") },
			MaxBytes: webhook.DefaultMaxBytes,
		}
	})
}

// accepted turns the requests the receiver answered with 2xx into
// deliveries. The webhook carries the event id in webhook-id and the type
// only in the body.
func accepted(t *testing.T, rcv *receiver) []publishertest.Received {
	t.Helper()

	var out []publishertest.Received
	for _, req := range rcv.received() {
		if req.Status < 200 || req.Status > 299 {
			continue
		}
		if req.Verified != nil {
			t.Errorf("official library rejects request %s: %v",
				req.Header.Get("webhook-id"), req.Verified)
		}

		var body struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(req.Body, &body); err != nil {
			t.Errorf("request %s: body is not JSON: %v", req.Header.Get("webhook-id"), err)
		}

		out = append(out, publishertest.Received{
			ID:   req.Header.Get("webhook-id"),
			Type: body.Type,
			Body: req.Body,
		})
	}

	return out
}
