package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/apsoai/domainevents/publishers/webhook"
)

// receiver is the demo's own webhook endpoint: it checks the Standard
// Webhooks signature of every delivery and logs the event.
type receiver struct {
	URL    string
	Secret string

	srv *http.Server
}

// startReceiver listens on a free loopback port with a fresh secret.
func startReceiver(logger *slog.Logger) (*receiver, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	secret := webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key)

	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := verifier.Verify(r.Header, body); err != nil {
			logger.Warn("webhook rejected: bad signature", "error", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}

		var event struct {
			ID        string          `json:"id"`
			Type      string          `json:"type"`
			Payload   json.RawMessage `json:"payload"`
			CreatedAt time.Time       `json:"created_at"`
		}
		_ = json.Unmarshal(body, &event)
		logger.Info("webhook received", "event_id", event.ID, "event_type", event.Type,
			"signature", "verified",
			"since_capture", time.Since(event.CreatedAt).Round(time.Microsecond),
			"payload", string(event.Payload))
		w.WriteHeader(http.StatusNoContent)
	})

	rcv := &receiver{
		URL:    "http://" + ln.Addr().String() + "/webhooks",
		Secret: secret,
		srv:    &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second},
	}
	go func() { _ = rcv.srv.Serve(ln) }()

	return rcv, nil
}

func (r *receiver) Close() error { return r.srv.Close() }
