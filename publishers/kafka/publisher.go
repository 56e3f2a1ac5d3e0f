package kafka

import (
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// Publisher writes events to one Kafka topic. It is safe for concurrent use;
// concurrent calls share Sarama's batches.
type Publisher struct {
	cfg       Config
	marshaler recordMarshaler
	inner     *wkafka.Publisher

	// mu is held for reading by every Publish and for writing by Close, so
	// that Close waits for the calls in flight and later calls see closed.
	mu     sync.RWMutex
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// New validates cfg, connects to the cluster and returns a publisher. It
// fails when no broker answers, with an error wrapping
// [publishers.ErrUnavailable].
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()

	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka: invalid config: %w", err)
	}

	inner, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers:               cfg.Brokers,
		Marshaler:             recordMarshaler{},
		OverwriteSaramaConfig: sc,
	}, watermill.NewSlogLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("kafka: connect to brokers %v: %w", cfg.Brokers, classify(err))
	}

	cfg.Logger.Info("kafka_publisher_started",
		"topic", cfg.Topic, "brokers", cfg.Brokers, "tls", cfg.TLS != nil,
		"sasl_mechanism", cfg.SASL.Mechanism, "max_bytes", cfg.MaxBytes)

	return &Publisher{cfg: cfg, inner: inner}, nil
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

	for _, msg := range msgs {
		if err := p.inner.Publish(p.cfg.Topic, msg); err != nil {
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

	if err := p.inner.Close(); err != nil {
		return fmt.Errorf("kafka: close producer: %w", err)
	}
	p.cfg.Logger.Info("kafka_publisher_closed", "topic", p.cfg.Topic)

	return nil
}
