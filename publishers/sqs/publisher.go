package sqs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/apsoai/domainevents/publishers"
)

// Publisher sends events to one SQS queue. It is safe for concurrent use.
type Publisher struct {
	cfg       Config
	marshaler marshaler
	inner     *wsqs.Publisher

	// mu is held for reading by every Publish and for writing by Close, so
	// that Close waits for the calls in flight and later calls see closed.
	mu     sync.RWMutex
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// New validates cfg and returns a publisher. It sends no request: a wrong
// queue URL or missing credentials show up as errors of Publish.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()

	awsCfg := cfg.AWS.Copy()
	switch client := awsCfg.HTTPClient.(type) {
	case nil:
		awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(cfg.RequestTimeout)
	case *awshttp.BuildableClient:
		awsCfg.HTTPClient = client.WithTimeout(cfg.RequestTimeout)
	}

	m := marshaler{fifo: isFIFO(cfg.QueueURL)}
	inner, err := wsqs.NewPublisher(wsqs.PublisherConfig{
		AWSConfig:                   awsCfg,
		DoNotCreateQueueIfNotExists: true,
		QueueUrlResolver:            fixedQueue{url: wsqs.QueueURL(cfg.QueueURL)},
		GenerateSendMessageInput:    sendInput,
		Marshaler:                   m,
	}, watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{
		// Watermill logs every message, payload included, at debug level.
		slog.LevelDebug: watermill.LevelTrace,
	}))
	if err != nil {
		return nil, fmt.Errorf("sqs: create publisher: %w", err)
	}

	cfg.Logger.Info("sqs publisher started",
		"queue_url", cfg.QueueURL, "fifo", m.fifo, "max_bytes", cfg.MaxBytes)

	return &Publisher{cfg: cfg, marshaler: m, inner: inner}, nil
}

// Publish sends msgs, in order, to the configured queue, one SendMessage
// request each, and returns once SQS accepted every one. The topic argument
// is ignored.
//
// Every message is checked against [Config.MaxBytes] first: if one is too
// large, none is sent and the error wraps [publishers.ErrPermanent]. When a
// later message fails, the earlier ones have been sent.
func (p *Publisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()

	if p.closed {
		return errClosed
	}

	for _, msg := range msgs {
		if err := p.checkSize(msg); err != nil {
			return err
		}
	}

	for _, msg := range msgs {
		if err := p.inner.Publish(p.cfg.QueueURL, msg); err != nil {
			return fmt.Errorf("sqs: send event %s to %s: %w",
				msg.UUID, p.cfg.QueueURL, classify(err))
		}
	}

	return nil
}

func (p *Publisher) checkSize(msg *message.Message) error {
	m, err := p.marshaler.Marshal(msg)
	if err != nil {
		return fmt.Errorf("sqs: build message for event %s: %w", msg.UUID, err)
	}

	if size := messageSize(m); size > p.cfg.MaxBytes {
		return fmt.Errorf("sqs: event %s (%s) is a %d-byte message, over the %d-byte limit: %w",
			msg.UUID, msg.Metadata.Get(publishers.MetadataType), size, p.cfg.MaxBytes,
			publishers.ErrPermanent)
	}

	return nil
}

// Close makes later Publish calls fail, after waiting for the calls in
// flight. Calling it again returns nil.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.closed {
		return nil
	}
	p.closed = true

	if err := p.inner.Close(); err != nil {
		return fmt.Errorf("sqs: close publisher: %w", err)
	}
	p.cfg.Logger.Info("sqs publisher closed", "queue_url", p.cfg.QueueURL)

	return nil
}

// fixedQueue resolves every topic to the configured queue URL and says the
// queue exists, so that Watermill neither calls GetQueueUrl nor creates a
// queue.
type fixedQueue struct {
	url wsqs.QueueURL
}

// ResolveQueueUrl returns the configured queue.
func (q fixedQueue) ResolveQueueUrl(
	context.Context, wsqs.ResolveQueueUrlParams,
) (wsqs.QueueUrlResolverResult, error) {
	exists := true
	u := q.url

	return wsqs.QueueUrlResolverResult{
		QueueName: wsqs.QueueName(queueName(string(u))),
		QueueURL:  &u,
		Exists:    &exists,
	}, nil
}
