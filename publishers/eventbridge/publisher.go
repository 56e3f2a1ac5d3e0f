package eventbridge

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
)

// Publisher puts events on one EventBridge bus. It is safe for concurrent
// use; concurrent calls share PutEvents requests.
type Publisher struct {
	cfg    Config
	client *eventbridge.Client

	// queue hands entries to the batcher; slots holds one token per running
	// request.
	queue chan *entry
	slots chan struct{}

	// stop is closed by Close; wg counts the batcher and running requests.
	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ message.Publisher = (*Publisher)(nil)

// New validates cfg, creates the EventBridge client and starts the batcher.
// It sends no request.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()

	p := &Publisher{
		cfg:    cfg,
		client: eventbridge.NewFromConfig(cfg.AWS),
		queue:  make(chan *entry),
		slots:  make(chan struct{}, cfg.MaxInFlight),
		stop:   make(chan struct{}),
	}

	p.wg.Add(1)
	go p.run()

	cfg.Logger.Info("eventbridge publisher started",
		"event_bus", cfg.EventBus, "source", cfg.Source, "max_bytes", cfg.MaxBytes,
		"batch_size", cfg.BatchSize, "linger", cfg.Linger, "max_in_flight", cfg.MaxInFlight)

	return p, nil
}

// Publish puts msgs on the configured bus and returns once EventBridge
// answered for every one of them. The topic argument is ignored. The
// entries may travel in different requests, together with those of other
// callers.
//
// Every message is checked first (see the package documentation): if one
// would be refused, none is sent and the error wraps
// [publishers.ErrPermanent]. Otherwise the error joins the errors of the
// entries that failed; the others were accepted.
func (p *Publisher) Publish(_ string, msgs ...*message.Message) error {
	if p.isClosed() {
		return errClosed
	}

	entries := make([]*entry, 0, len(msgs))
	for _, msg := range msgs {
		e, err := p.newEntry(msg)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}

	handed := 0
	var errs []error
	for _, e := range entries {
		select {
		case p.queue <- e:
			handed++
		case <-p.stop:
			errs = append(errs, fmt.Errorf("event %s not sent: %w", e.id, errClosed))
		}
	}

	for _, e := range entries[:handed] {
		if err := <-e.done; err != nil {
			errs = append(errs, err)
		}
	}

	return errors.Join(errs...)
}

func (p *Publisher) isClosed() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// Close stops taking events, sends the entries the batcher already holds
// and waits for every running request. Publish fails after Close. Calling
// Close again returns nil.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		p.cfg.Logger.Info("eventbridge publisher closed", "event_bus", p.cfg.EventBus)
	})

	return nil
}
