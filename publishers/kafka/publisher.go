package kafka

import (
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// Publisher writes events to one Kafka topic. It is safe for concurrent use;
// concurrent calls share Sarama's batches.
type Publisher struct {
	cfg       Config
	sarama    *sarama.Config
	marshaler recordMarshaler

	connMu sync.Mutex
	inner  *wkafka.Publisher // nil until a broker answered

	// mu is held for reading by every Publish and for writing by Close, so
	// that Close waits for the calls in flight and later calls see closed.
	mu     sync.RWMutex
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// New validates cfg and connects to the cluster. A cluster that cannot be
// reached right now is not an error: the publisher connects on its first
// Publish, whose error then wraps [publishers.ErrUnavailable], so a service
// starts and captures events while Kafka is down. A broker that refuses the
// TLS handshake or the SASL credentials is an error here, at start-up.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()

	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka: invalid config: %w", err)
	}

	p := &Publisher{cfg: cfg, sarama: sc}
	if err := p.connect(); err != nil {
		if !errors.Is(err, publishers.ErrUnavailable) || refusedUs(err) {
			return nil, err
		}
		cfg.Logger.Warn("kafka unreachable at start-up; connecting on the first delivery",
			"brokers", cfg.Brokers, "error", err)
		return p, nil
	}

	cfg.Logger.Info("kafka publisher started",
		"topic", cfg.Topic, "brokers", cfg.Brokers, "tls", cfg.TLS != nil,
		"sasl_mechanism", cfg.SASL.Mechanism, "max_bytes", cfg.MaxBytes)

	return p, nil
}

// producer returns the Watermill publisher, connecting first if needed.
func (p *Publisher) producer() (*wkafka.Publisher, error) {
	if err := p.connect(); err != nil {
		return nil, err
	}

	p.connMu.Lock()
	defer p.connMu.Unlock()

	if p.inner == nil {
		return nil, fmt.Errorf("kafka: %w: producer reset during publish", publishers.ErrUnavailable)
	}

	return p.inner, nil
}

// reset drops a producer after a failed send; the next Publish connects a
// new one. A new producer gets a new producer id from the cluster, so the
// idempotent producer's sequence numbers start afresh: after a failure,
// Sarama may otherwise give a later record a sequence number the broker has
// seen, and the broker acknowledges it as a duplicate without storing it.
func (p *Publisher) reset(inner *wkafka.Publisher) {
	p.connMu.Lock()
	defer p.connMu.Unlock()

	if p.inner != inner {
		return // another call reset it already
	}
	p.inner = nil

	go func() {
		if err := inner.Close(); err != nil {
			p.cfg.Logger.Debug("closing a failed kafka producer", "error", err)
		}
	}()
}

// connect makes the Watermill publisher if there is none yet.
func (p *Publisher) connect() error {
	p.connMu.Lock()
	defer p.connMu.Unlock()

	if p.inner != nil {
		return nil
	}

	inner, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers:               p.cfg.Brokers,
		Marshaler:             recordMarshaler{},
		OverwriteSaramaConfig: p.sarama,
	}, watermill.NewSlogLogger(p.cfg.Logger))
	if err != nil {
		return fmt.Errorf("kafka: connect to brokers %v: %w", p.cfg.Brokers, classify(err))
	}
	p.inner = inner

	return nil
}

// Publish writes msgs, in order, to the configured topic and returns once
// all in-sync replicas have every one of them. The topic argument is
// ignored.
//
// Every message is checked against [Config.MaxBytes] first: if one is too
// large, none is sent and the error wraps [publishers.ErrPermanent]. When a
// later message fails, the earlier ones have been written.
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

	inner, err := p.producer()
	if err != nil {
		return err
	}

	for _, msg := range msgs {
		if err := inner.Publish(p.cfg.Topic, msg); err != nil {
			p.reset(inner)
			return fmt.Errorf("kafka: publish event %s to topic %q: %w",
				msg.UUID, p.cfg.Topic, classify(err))
		}
	}

	return nil
}

func (p *Publisher) checkSize(msg *message.Message) error {
	record, err := p.marshaler.Marshal(p.cfg.Topic, msg)
	if err != nil {
		return fmt.Errorf("kafka: build record for event %s: %w", msg.UUID, err)
	}

	if size := recordSize(record); size > p.cfg.MaxBytes {
		return fmt.Errorf("kafka: event %s (%s) is a %d-byte record, over the %d-byte limit: %w",
			msg.UUID, msg.Metadata.Get(publishers.MetadataType), size, p.cfg.MaxBytes,
			publishers.ErrPermanent)
	}

	return nil
}

// Close waits for the Publish calls in flight, then closes the producer.
// Publish fails after Close. Calling Close again returns nil.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.closed {
		return nil
	}
	p.closed = true

	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.inner == nil {
		return nil
	}
	if err := p.inner.Close(); err != nil {
		return fmt.Errorf("kafka: close producer: %w", err)
	}
	p.cfg.Logger.Info("kafka publisher closed", "topic", p.cfg.Topic)

	return nil
}
