package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("webhook: publisher is closed")

// snippetBytes bounds how much of a failed answer's body an error quotes.
const snippetBytes = 256

// drainBytes bounds how much of an answer's body is read and discarded so
// that its connection can be reused; a longer body closes the connection.
const drainBytes = 64 << 10

// Publisher sends events as signed webhook requests. It is safe for
// concurrent use.
type Publisher struct {
	cfg       Config
	key       []byte
	url       string
	target    string // the URL without credentials or query, for errors and logs
	ownClient bool

	// mu is held for reading by every Publish call and for writing by Close,
	// so Close waits for the deliveries in flight.
	mu     sync.RWMutex
	closed bool
}

// New returns a Publisher for cfg, after applying defaults and validating
// it.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	ownClient := cfg.Client == nil
	cfg.setDefaults()

	// Validate has checked both, so neither fails here.
	u, _ := parseURL(cfg.URL)
	key, _ := decodeKey(cfg.Secret)

	target := *u
	target.User = nil
	target.RawQuery = ""
	target.Fragment = ""

	return &Publisher{
		cfg:       cfg,
		key:       key,
		url:       u.String(),
		target:    target.String(),
		ownClient: ownClient,
	}, nil
}

// Publish sends each message as one POST request, in order, and returns at
// the first failure; the messages after it are not sent. The topic is
// ignored, since every event goes to the one configured URL. Each
// message's context bounds its request, together with Config.Timeout.
func (p *Publisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()

	if p.closed {
		return ErrClosed
	}

	for _, msg := range msgs {
		if err := p.send(msg); err != nil {
			return err
		}
	}

	return nil
}

// Close stops the publisher: it waits for the requests in flight, makes
// every later Publish fail with ErrClosed and, when the publisher made its
// own client, closes its idle connections. Calling it again does nothing
// and returns nil.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.closed {
		return nil
	}
	p.closed = true

	if p.ownClient {
		p.cfg.Client.CloseIdleConnections()
	}

	return nil
}

func (p *Publisher) send(msg *message.Message) error {
	if len(msg.Payload) > p.cfg.MaxBytes {
		return fmt.Errorf("webhook: event %s is %d bytes, over the %d-byte limit: %w",
			msg.UUID, len(msg.Payload), p.cfg.MaxBytes, publishers.ErrPermanent)
	}

	parent := msg.Context()
	ctx, cancel := context.WithTimeout(parent, p.cfg.Timeout)
	defer cancel()

	req, err := p.newRequest(ctx, msg)
	if err != nil {
		return fmt.Errorf("webhook: build request for event %s: %w", msg.UUID, err)
	}

	start := time.Now()
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		// The client's error quotes the URL, credentials and query included.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			urlErr.URL = p.target
		}

		// A cancelled message is the caller's decision, not an outage.
		if parent.Err() != nil {
			return fmt.Errorf("webhook: post event %s to %s: %w", msg.UUID, p.target, err)
		}
		return fmt.Errorf("webhook: post event %s to %s: %w: %w",
			msg.UUID, p.target, publishers.ErrUnavailable, err)
	}
	defer closeBody(resp.Body)

	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		p.cfg.Logger.Debug("webhook delivered",
			"event_id", msg.UUID, "status", resp.StatusCode,
			"duration", time.Since(start))
		return nil
	}

	return p.statusError(msg.UUID, resp)
}

func (p *Publisher) newRequest(ctx context.Context, msg *message.Message) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url,
		bytes.NewReader(msg.Payload))
	if err != nil {
		return nil, err
	}

	// A fresh timestamp, and so a fresh signature, on every attempt.
	timestamp := p.cfg.Now().Unix()

	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "domainevents-webhook")
	h.Set(HeaderID, msg.UUID)
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp, 10))
	h.Set(HeaderSignature, Sign(p.key, msg.UUID, timestamp, msg.Payload))
	if tp := msg.Metadata.Get(publishers.MetadataTraceParent); tp != "" {
		h.Set("Traceparent", tp)
	}

	return req, nil
}

// statusError describes a non-2xx answer, quoting the start of its body.
// Throttling, timeouts and server errors wrap publishers.ErrUnavailable.
func (p *Publisher) statusError(id string, resp *http.Response) error {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetBytes))
	status := resp.Status
	if status == "" {
		status = strconv.Itoa(resp.StatusCode)
	}

	err := fmt.Errorf("webhook: post event %s to %s: answered %s: %q",
		id, p.target, status, bytes.ToValidUTF8(snippet, []byte("?")))

	code := resp.StatusCode
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		return fmt.Errorf("%w: %w", err, publishers.ErrUnavailable)
	}

	return err
}

// closeBody reads what is left of a small body before closing it, so that
// the connection goes back to the pool.
func closeBody(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainBytes))
	_ = body.Close()
}

var _ message.Publisher = (*Publisher)(nil)
