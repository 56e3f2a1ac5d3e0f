package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// testSecret is a secret in the form receivers are given.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// request is one request as the receiver saw it.
type request struct {
	Method string
	Status int
	Header http.Header
	Body   []byte

	// Verified is the official library's verdict on the signature.
	Verified error
}

// receiver is a webhook endpoint on 127.0.0.1 that checks every request
// with the official Standard Webhooks library and answers with a status
// the test chooses.
type receiver struct {
	URL string

	wh *standardwebhooks.Webhook

	mu       sync.Mutex
	status   int
	answer   string
	requests []request
}

// newReceiver starts a receiver for testSecret that answers 204 until told
// otherwise.
func newReceiver(t *testing.T) *receiver {
	t.Helper()

	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatalf("official library rejects the test secret: %v", err)
	}

	r := &receiver{wh: wh, status: http.StatusNoContent}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks?token=query-secret"

	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}

	r.mu.Lock()
	status, answer := r.status, r.answer
	r.requests = append(r.requests, request{
		Method:   req.Method,
		Status:   status,
		Header:   req.Header.Clone(),
		Body:     body,
		Verified: r.wh.Verify(body, req.Header),
	})
	r.mu.Unlock()

	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

// answerWith makes the receiver answer every later request with status and
// body.
func (r *receiver) answerWith(status int, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.status, r.answer = status, body
}

func (r *receiver) received() []request {
	r.mu.Lock()
	defer r.mu.Unlock()

	return slices.Clone(r.requests)
}
