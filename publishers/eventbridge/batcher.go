package eventbridge

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// run is the batcher: it forms batches from the queue and sends each in a
// goroutine of its own, holding a slot while it runs. It returns once Close
// was called and every entry it took is on its way.
func (p *Publisher) run() {
	defer p.wg.Done()

	// carry is an entry taken from the queue that did not fit in the
	// previous batch; it starts the next one.
	var carry *entry

	for {
		// Take the slot first, so that entries arriving while every slot
		// is busy wait in the queue and go out together.
		p.slots <- struct{}{}

		first := carry
		if first == nil {
			select {
			case first = <-p.queue:
			case <-p.stop:
				<-p.slots
				return
			}
		}

		var batch []*entry
		batch, carry = p.collect(first)

		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.slots }()

			p.send(batch)
		}()
	}
}

// collect gathers entries after first until the batch is full, the next
// entry would take it over the byte limit, Linger has passed or Close was
// called. It returns the batch and the entry that did not fit, if any.
func (p *Publisher) collect(first *entry) (batch []*entry, carry *entry) {
	batch = []*entry{first}
	size := first.size

	var timeout <-chan time.Time
	if p.cfg.Linger > 0 {
		timer := time.NewTimer(p.cfg.Linger)
		defer timer.Stop()
		timeout = timer.C
	}

	for len(batch) < p.cfg.BatchSize {
		e := p.next(timeout)
		if e == nil {
			return batch, nil
		}
		if size+e.size > p.cfg.MaxBytes {
			return batch, e
		}

		batch = append(batch, e)
		size += e.size
	}

	return batch, nil
}

// next returns an entry that is already waiting, else waits for one until
// timeout fires or Close is called, and returns nil then. A nil timeout
// means not to wait.
func (p *Publisher) next(timeout <-chan time.Time) *entry {
	select {
	case e := <-p.queue:
		return e
	default:
	}

	if timeout == nil {
		return nil
	}

	select {
	case e := <-p.queue:
		return e
	case <-timeout:
		return nil
	case <-p.stop:
		return nil
	}
}

// send puts one batch and gives each entry its own result.
func (p *Publisher) send(batch []*entry) {
	reqs := make([]types.PutEventsRequestEntry, len(batch))
	for i, e := range batch {
		reqs[i] = e.req
	}

	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RequestTimeout)
	defer cancel()

	out, err := p.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: reqs})
	if err == nil && len(out.Entries) != len(batch) {
		err = fmt.Errorf("answer has %d entries for %d sent", len(out.Entries), len(batch))
	}
	if err != nil {
		err = classify(err)
		for _, e := range batch {
			e.done <- fmt.Errorf("eventbridge: put event %s on bus %q: %w",
				e.id, p.cfg.EventBus, err)
		}
		return
	}

	for i, e := range batch {
		if res := out.Entries[i]; res.ErrorCode != nil {
			e.done <- entryError(e.id, res)
			continue
		}
		e.done <- nil
	}

	p.cfg.Logger.Debug("eventbridge put events sent",
		"event_bus", p.cfg.EventBus, "entries", len(batch), "failed", out.FailedEntryCount)
}
