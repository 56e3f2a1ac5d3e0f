package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/publishertest"
	"github.com/apsoai/domainevents/publishers/webhook"
)

func newPublisher(t *testing.T, cfg webhook.Config) *webhook.Publisher {
	t.Helper()

	if cfg.Secret == "" {
		cfg.Secret = testSecret
	}
	pub, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })

	return pub
}

func TestPublisher_sendsSignedRequestsTheOfficialLibraryAccepts(t *testing.T) {
	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL})

	msgs := []*message.Message{
		publishertest.NewEvent("product.created", "Product:1", map[string]any{"name": "lamp"}),
		publishertest.NewEvent("customer.updated", "Customer:2", map[string]any{
			"name": "Zoë Ångström – 東京 – مرحبا", "mood": "🚀👩‍💻🇫🇷",
		}),
		publishertest.NewEvent("comment.created", "Comment:3", map[string]any{
			"html": `<script>alert("x")</script> & 'quotes'`,
		}),
		message.NewMessage("msg_raw", []byte(`{"test": 2432232314}`)),
	}
	for _, msg := range msgs {
		if err := pub.Publish("ignored-topic", msg); err != nil {
			t.Fatalf("Publish %s: %v", msg.UUID, err)
		}
	}

	got := rcv.received()
	if len(got) != len(msgs) {
		t.Fatalf("receiver got %d requests, want %d", len(got), len(msgs))
	}
	for i, req := range got {
		msg := msgs[i]
		if req.Verified != nil {
			t.Errorf("event %s: official library rejects the request: %v", msg.UUID, req.Verified)
		}
		if req.Method != http.MethodPost {
			t.Errorf("event %s: method %s, want POST", msg.UUID, req.Method)
		}
		if string(req.Body) != string(msg.Payload) {
			t.Errorf("event %s: body %q, want %q", msg.UUID, req.Body, msg.Payload)
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("event %s: content-type %q", msg.UUID, ct)
		}
		if id := req.Header.Get("webhook-id"); id != msg.UUID {
			t.Errorf("event %s: webhook-id %q", msg.UUID, id)
		}
		if sig := req.Header.Get("webhook-signature"); !strings.HasPrefix(sig, "v1,") {
			t.Errorf("event %s: webhook-signature %q", msg.UUID, sig)
		}
	}
}

func TestPublisher_timestampIsTheSendTime(t *testing.T) {
	rcv := newReceiver(t)
	at := time.Unix(1_800_000_123, 999_000_000)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL, Now: func() time.Time { return at }})

	msg := publishertest.NewEvent("product.created", "Product:1", nil)
	if err := pub.Publish("", msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	req := rcv.received()[0]
	if ts := req.Header.Get("webhook-timestamp"); ts != "1800000123" {
		t.Fatalf("webhook-timestamp = %q, want 1800000123", ts)
	}

	v := newVerifier(t)
	v.Now = func() time.Time { return at }
	if err := v.Verify(req.Header, req.Body); err != nil {
		t.Fatalf("Verify at send time: %v", err)
	}
}

func TestPublisher_retryCarriesFreshTimestamp(t *testing.T) {
	rcv := newReceiver(t)
	var calls atomic.Int64
	start := time.Now()
	pub := newPublisher(t, webhook.Config{
		URL: rcv.URL,
		Now: func() time.Time { return start.Add(time.Duration(calls.Add(1)) * 7 * time.Second) },
	})
	msg := publishertest.NewEvent("order.created", "Order:1", map[string]any{"total": 3})

	rcv.answerWith(http.StatusServiceUnavailable, "try later")
	if err := pub.Publish("", msg); err == nil {
		t.Fatal("Publish against a 503 returned nil")
	}
	rcv.answerWith(http.StatusOK, "")
	if err := pub.Publish("", msg); err != nil {
		t.Fatalf("retry: %v", err)
	}

	got := rcv.received()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(got))
	}
	first, retry := got[0].Header, got[1].Header
	if first.Get("webhook-id") != retry.Get("webhook-id") {
		t.Errorf("webhook-id changed between attempts: %q, %q",
			first.Get("webhook-id"), retry.Get("webhook-id"))
	}
	if first.Get("webhook-timestamp") == retry.Get("webhook-timestamp") {
		t.Errorf("retry reused timestamp %s", retry.Get("webhook-timestamp"))
	}
	if first.Get("webhook-signature") == retry.Get("webhook-signature") {
		t.Error("retry reused the signature")
	}
	for i, req := range got {
		if req.Verified != nil {
			t.Errorf("attempt %d: official library rejects it: %v", i+1, req.Verified)
		}
	}
}

func TestPublisher_classifiesAnswers(t *testing.T) {
	cases := []struct {
		status          int
		wantErr         bool
		wantUnavailable bool
	}{
		{http.StatusOK, false, false},
		{http.StatusCreated, false, false},
		{http.StatusAccepted, false, false},
		{http.StatusNoContent, false, false},
		{http.StatusMovedPermanently, true, false},
		{http.StatusTemporaryRedirect, true, false},
		{http.StatusBadRequest, true, false},
		{http.StatusUnauthorized, true, false},
		{http.StatusNotFound, true, false},
		{http.StatusRequestEntityTooLarge, true, false},
		{http.StatusRequestTimeout, true, true},
		{http.StatusTooManyRequests, true, true},
		{http.StatusInternalServerError, true, true},
		{http.StatusBadGateway, true, true},
		{http.StatusServiceUnavailable, true, true},
	}

	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL})

	for _, c := range cases {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			rcv.answerWith(c.status, "reason from the receiver")
			if c.status >= 300 && c.status < 400 {
				rcv.answerWith(c.status, "")
			}

			err := pub.Publish("", publishertest.NewEvent("x.created", "X:1", nil))

			if (err != nil) != c.wantErr {
				t.Fatalf("Publish = %v, want error %v", err, c.wantErr)
			}
			if err == nil {
				return
			}
			if got := errors.Is(err, publishers.ErrUnavailable); got != c.wantUnavailable {
				t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v (err: %v)",
					got, c.wantUnavailable, err)
			}
			if errors.Is(err, publishers.ErrPermanent) {
				t.Errorf("an answer of %d must stay retryable: %v", c.status, err)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(c.status)) {
				t.Errorf("error %q does not name status %d", err, c.status)
			}
			if c.status >= 400 && !strings.Contains(err.Error(), "reason from the receiver") {
				t.Errorf("error %q does not quote the answer", err)
			}
			if strings.Contains(err.Error(), "query-secret") {
				t.Errorf("error %q shows the URL's query", err)
			}
		})
	}
}

func TestPublisher_quotesOnlyTheStartOfALongAnswer(t *testing.T) {
	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL})
	rcv.answerWith(http.StatusBadRequest, "start "+strings.Repeat("x", 100_000)+" end")

	err := pub.Publish("", publishertest.NewEvent("x.created", "X:1", nil))

	if err == nil {
		t.Fatal("Publish = nil, want an error")
	}
	if !strings.Contains(err.Error(), "start ") || strings.Contains(err.Error(), " end") {
		t.Errorf("error should quote the start of the answer only: %.200q", err)
	}
	if len(err.Error()) > 1024 {
		t.Errorf("error is %d bytes long, want a bounded snippet", len(err.Error()))
	}
}

func TestPublisher_refusedConnectionIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	pub := newPublisher(t, webhook.Config{URL: url})

	err := pub.Publish("", publishertest.NewEvent("x.created", "X:1", nil))

	if !errors.Is(err, publishers.ErrUnavailable) {
		t.Fatalf("Publish to a closed port = %v, want ErrUnavailable", err)
	}
}

func TestPublisher_timeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	pub := newPublisher(t, webhook.Config{URL: srv.URL, Timeout: 50 * time.Millisecond})

	err := pub.Publish("", publishertest.NewEvent("x.created", "X:1", nil))

	if !errors.Is(err, publishers.ErrUnavailable) {
		t.Fatalf("Publish to a receiver that never answers = %v, want ErrUnavailable", err)
	}
}

func TestPublisher_cancelledMessageIsNotAnOutage(t *testing.T) {
	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg := publishertest.NewEvent("x.created", "X:1", nil)
	msg.SetContext(ctx)

	err := pub.Publish("", msg)

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context = %v, want context.Canceled", err)
	}
	if errors.Is(err, publishers.ErrUnavailable) {
		t.Errorf("a cancelled message is reported as an outage: %v", err)
	}
}

func TestPublisher_refusesOversizeEventWithoutSending(t *testing.T) {
	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL, MaxBytes: 100})

	exact := message.NewMessage("evt_exact", []byte(`"`+strings.Repeat("a", 98)+`"`))
	if err := pub.Publish("", exact); err != nil {
		t.Fatalf("a body of exactly MaxBytes: %v", err)
	}
	over := message.NewMessage("evt_over", []byte(`"`+strings.Repeat("a", 99)+`"`))
	err := pub.Publish("", over)

	if !errors.Is(err, publishers.ErrPermanent) {
		t.Fatalf("Publish over MaxBytes = %v, want ErrPermanent", err)
	}
	if got := rcv.received(); len(got) != 1 || got[0].Header.Get("webhook-id") != "evt_exact" {
		t.Fatalf("receiver got %d requests, want only evt_exact", len(got))
	}
}

func TestPublisher_stopsAtFirstFailure(t *testing.T) {
	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL, MaxBytes: 100})
	ok := message.NewMessage("evt_ok", []byte(`{}`))
	big := message.NewMessage("evt_big", []byte(`"`+strings.Repeat("a", 200)+`"`))
	after := message.NewMessage("evt_after", []byte(`{}`))

	err := pub.Publish("", ok, big, after)

	if !errors.Is(err, publishers.ErrPermanent) {
		t.Fatalf("Publish = %v, want ErrPermanent", err)
	}
	if got := rcv.received(); len(got) != 1 || got[0].Header.Get("webhook-id") != "evt_ok" {
		t.Fatalf("receiver got %d requests, want only evt_ok", len(got))
	}
}

func TestPublisher_forwardsTraceParent(t *testing.T) {
	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	msg := publishertest.NewEvent("x.created", "X:1", nil)
	msg.Metadata.Set(publishers.MetadataTraceParent, tp)

	if err := pub.Publish("", msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	if got := rcv.received()[0].Header.Get("traceparent"); got != tp {
		t.Fatalf("traceparent = %q, want %q", got, tp)
	}
}

func TestPublisher_closeIsIdempotentAndFinal(t *testing.T) {
	rcv := newReceiver(t)
	pub := newPublisher(t, webhook.Config{URL: rcv.URL})

	if err := pub.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	err := pub.Publish("", publishertest.NewEvent("x.created", "X:1", nil))
	if !errors.Is(err, webhook.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if n := len(rcv.received()); n != 0 {
		t.Fatalf("receiver got %d requests after Close", n)
	}
}

func TestPublisher_usesTheGivenClient(t *testing.T) {
	rcv := newReceiver(t)
	var used atomic.Int64
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	pub := newPublisher(t, webhook.Config{URL: rcv.URL, Client: client})

	if err := pub.Publish("", publishertest.NewEvent("x.created", "X:1", nil)); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	if used.Load() != 1 {
		t.Fatalf("custom client used %d times, want 1", used.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNew_rejectsInvalidConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  webhook.Config
		want []string
	}{
		{"empty URL", webhook.Config{Secret: testSecret},
			[]string{"EVENTS_WEBHOOK_URL", "is empty"}},
		{"relative URL", webhook.Config{URL: "/hooks", Secret: testSecret},
			[]string{"EVENTS_WEBHOOK_URL", `"/hooks"`, "absolute http or https"}},
		{"no host", webhook.Config{URL: "http://", Secret: testSecret},
			[]string{"EVENTS_WEBHOOK_URL", `"http://"`}},
		{"other scheme", webhook.Config{URL: "ftp://127.0.0.1/x", Secret: testSecret},
			[]string{"EVENTS_WEBHOOK_URL", "ftp://127.0.0.1/x"}},
		{"unparsable URL", webhook.Config{URL: "http://[::1", Secret: testSecret},
			[]string{"EVENTS_WEBHOOK_URL", "http://[::1"}},
		{"empty secret", webhook.Config{URL: "http://127.0.0.1/x"},
			[]string{"EVENTS_WEBHOOK_SECRET", "is empty", "whsec_"}},
		{"bad secret", webhook.Config{URL: "http://127.0.0.1/x", Secret: "whsec_%%%"},
			[]string{"EVENTS_WEBHOOK_SECRET", "base64", "set it to"}},
		{"negative timeout", webhook.Config{URL: "http://127.0.0.1/x", Secret: testSecret,
			Timeout: -time.Second}, []string{"Timeout"}},
		{"negative max bytes", webhook.Config{URL: "http://127.0.0.1/x", Secret: testSecret,
			MaxBytes: -1}, []string{"MaxBytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pub, err := webhook.New(c.cfg)
			if err == nil {
				_ = pub.Close()
				t.Fatal("New = nil error")
			}

			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "webhook: invalid config: ") {
				t.Errorf("error %q does not start with \"webhook: invalid config: \"", msg)
			}
			for _, want := range c.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, "%%%") {
				t.Errorf("error %q repeats the secret", msg)
			}
		})
	}
}

func TestNew_masksURLPassword(t *testing.T) {
	_, err := webhook.New(webhook.Config{URL: "ftp://user:hunter2@127.0.0.1/", Secret: testSecret})
	if err == nil {
		t.Fatal("New = nil error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %q shows the URL's password", err)
	}
}

func TestConfig_ValidateAcceptsDefaults(t *testing.T) {
	cfg := webhook.Config{URL: "https://hooks.example.com/events", Secret: testSecret}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestPublisher_reusesConnections(t *testing.T) {
	var answers atomic.Int64
	handler := func(w http.ResponseWriter, _ *http.Request) {
		// Alternate accepted and rejected answers, both with a body that the
		// publisher must drain for the connection to be reused.
		if answers.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = w.Write([]byte(strings.Repeat("answer ", 2000)))
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(handler))
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	pub := newPublisher(t, webhook.Config{URL: srv.URL})

	for range 20 {
		_ = pub.Publish("", publishertest.NewEvent("x.created", "X:1", nil))
	}

	if answers.Load() != 20 {
		t.Fatalf("receiver answered %d requests, want 20", answers.Load())
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests opened %d connections, want 1", n)
	}
}

func TestPublisher_errorsKeepURLSecretsOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now

	pub, err := webhook.New(webhook.Config{
		URL:    "http://alice:pa55@" + addr + "/hook?token=q-s3cret",
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })

	err = pub.Publish("events", publishertest.NewEvent("a.created", "A:1", map[string]any{}))
	if err == nil {
		t.Fatal("Publish to a closed port succeeded")
	}
	for _, secret := range []string{"alice", "pa55", "q-s3cret"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q shows %q", err, secret)
		}
	}
}
