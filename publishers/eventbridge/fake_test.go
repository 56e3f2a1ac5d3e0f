package eventbridge_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/apsoai/domainevents/publishers/publishertest"
)

// putEntry is one entry of a PutEvents request as it arrived.
type putEntry struct {
	Source       string
	DetailType   string
	Detail       string
	EventBusName string
}

// fakeBus speaks enough of EventBridge's PutEvents JSON protocol for the
// tests: it checks the request is signed, records what arrived and can
// fail whole requests or chosen entries.
type fakeBus struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests [][]putEntry
	accepted []putEntry
	problems []string

	// status, when not zero, is the HTTP status every request gets, with
	// code as the error type.
	status int
	code   string

	// failEntry, when not nil, returns the error code and message to
	// refuse an entry with, or "" to accept it.
	failEntry func(putEntry) (code, msg string)
}

func newFakeBus(t testing.TB) *fakeBus {
	t.Helper()

	f := &fakeBus{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)

	return f
}

func (f *fakeBus) serve(w http.ResponseWriter, r *http.Request) {
	if problem := checkRequest(r); problem != "" {
		f.mu.Lock()
		f.problems = append(f.problems, problem)
		f.mu.Unlock()
		writeError(w, http.StatusBadRequest, "InvalidRequest", problem)
		return
	}

	var in struct{ Entries []putEntry }
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()

	f.requests = append(f.requests, in.Entries)
	if f.status != 0 {
		writeError(w, f.status, f.code, "failing on purpose")
		return
	}

	type result struct {
		EventId      string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	for i, e := range in.Entries {
		if f.failEntry != nil {
			if code, msg := f.failEntry(e); code != "" {
				out.FailedEntryCount++
				out.Entries = append(out.Entries, result{ErrorCode: code, ErrorMessage: msg})
				continue
			}
		}
		f.accepted = append(f.accepted, e)
		out.Entries = append(out.Entries, result{
			EventId: fmt.Sprintf("fake-%d-%d", len(f.requests), i),
		})
	}

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// checkRequest returns what is wrong with a request, or "".
func checkRequest(r *http.Request) string {
	auth := r.Header.Get("Authorization")

	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		return fmt.Sprintf("request is %s %s, want POST /", r.Method, r.URL.Path)
	case r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents":
		return fmt.Sprintf("X-Amz-Target is %q", r.Header.Get("X-Amz-Target"))
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		return fmt.Sprintf("Content-Type is %q", r.Header.Get("Content-Type"))
	case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=test/") ||
		!strings.Contains(auth, "/us-east-1/events/aws4_request") ||
		!strings.Contains(auth, "Signature="):
		return fmt.Sprintf("Authorization %q is not a SigV4 signature for events", auth)
	case r.Header.Get("X-Amz-Date") == "":
		return "no X-Amz-Date"
	}

	return ""
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// awsConfig is an SDK configuration aimed at the fake with static
// credentials and one retry.
func (f *fakeBus) awsConfig() aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint:     aws.String(f.srv.URL),
		RetryMaxAttempts: 2,
	}
}

func (f *fakeBus) fail(status int, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()

	f.status, f.code = status, code
}

func (f *fakeBus) setFailEntry(fn func(putEntry) (string, string)) {
	f.mu.Lock()
	defer f.mu.Unlock()

	f.failEntry = fn
}

// snapshot returns the requests and accepted entries so far, failing t if
// any request was malformed.
func (f *fakeBus) snapshot(t testing.TB) (requests [][]putEntry, accepted []putEntry) {
	t.Helper()

	f.mu.Lock()
	defer f.mu.Unlock()

	if len(f.problems) > 0 {
		t.Fatalf("fake EventBridge got malformed requests: %v", f.problems)
	}

	return append([][]putEntry(nil), f.requests...), append([]putEntry(nil), f.accepted...)
}

func (f *fakeBus) received(t *testing.T) []publishertest.Received {
	t.Helper()

	_, accepted := f.snapshot(t)

	var out []publishertest.Received
	for _, e := range accepted {
		var body struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(e.Detail), &body); err != nil {
			t.Fatalf("Detail is not JSON: %v: %s", err, e.Detail)
		}
		out = append(out, publishertest.Received{
			ID:   body.ID,
			Type: e.DetailType,
			Body: []byte(e.Detail),
		})
	}

	return out
}
