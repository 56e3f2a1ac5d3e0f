package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// errDeferred is the failure of an event that was not offered to a
// destination because the destination is down.
var errDeferred = errors.New("destination is down; delivery deferred")

// delivery is the state of one claimed event while it travels through the
// forwarder. It rides in the message context from the subscriber, through
// the forwarder's unwrapping, to the fan-out publisher.
type delivery struct {
	id       string
	attempts int

	mu        sync.Mutex
	delivered []string
	tried     bool // a destination was offered the event and failed
	deferred  bool // a destination was skipped because it is down
	permanent bool
	lastErr   error
}

type deliveryKey struct{}

func withDelivery(ctx context.Context, d *delivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

func deliveryFrom(ctx context.Context) *delivery {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	return d
}

func (d *delivery) has(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()

	return slices.Contains(d.delivered, name)
}

func (d *delivery) record(name string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	switch {
	case err == nil:
		if !slices.Contains(d.delivered, name) {
			d.delivered = append(d.delivered, name)
		}
	case errors.Is(err, errDeferred):
		d.deferred = true
		if d.lastErr == nil {
			d.lastErr = fmt.Errorf("%s: %w", name, err)
		}
	default:
		d.tried = true
		d.permanent = d.permanent || errors.Is(err, publishers.ErrPermanent)
		d.lastErr = fmt.Errorf("%s: %w", name, err)
	}
}

// fail records a failure that happened before any destination was offered
// the event, such as an envelope that does not unwrap.
func (d *delivery) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	d.tried = true
	d.lastErr = err
}

// fanOut is a Watermill publisher over several destinations. With a
// delivery in the message context it offers each event only to the
// destinations that have not accepted it yet, and skips destinations that
// are down except for one probe at a time.
type fanOut struct {
	dests    []*destination
	log      *slog.Logger
	onChange func()
}

type destination struct {
	publishers.Destination
	breaker *breaker
	stats   *destStats
}

func newFanOut(cfg *Config, stats *Stats, onChange func()) *fanOut {
	f := &fanOut{log: cfg.Logger, onChange: onChange}
	for _, d := range cfg.Destinations {
		f.dests = append(f.dests, &destination{
			Destination: d,
			breaker:     newBreaker(cfg.TripAfter, cfg.ProbeInterval),
			stats:       stats.destination(d.Name),
		})
	}

	return f
}

// Publish delivers each message to every destination that still needs it
// and returns an error if any of them did not accept it.
func (f *fanOut) Publish(topic string, msgs ...*message.Message) error {
	var errs []error

	for _, msg := range msgs {
		d := deliveryFrom(msg.Context())
		if d == nil {
			d = &delivery{id: msg.UUID}
		}

		f.deliver(topic, msg, d)

		d.mu.Lock()
		done := len(d.delivered) >= len(f.dests) && !d.tried && !d.deferred
		err := d.lastErr
		d.mu.Unlock()
		if !done {
			errs = append(errs, fmt.Errorf("event %s: %w", msg.UUID, err))
		}
	}

	return errors.Join(errs...)
}

func (f *fanOut) deliver(topic string, msg *message.Message, d *delivery) {
	if len(f.dests) == 1 {
		f.deliverTo(f.dests[0], topic, msg, d)
		return
	}

	var wg sync.WaitGroup
	for _, dest := range f.dests {
		wg.Go(func() { f.deliverTo(dest, topic, msg, d) })
	}
	wg.Wait()
}

func (f *fanOut) deliverTo(dest *destination, topic string, msg *message.Message, d *delivery) {
	if d.has(dest.Name) {
		return
	}

	allowed, probe := dest.breaker.allow()
	if !allowed {
		d.record(dest.Name, errDeferred)
		dest.stats.deferred.Add(1)
		return
	}

	start := time.Now()
	err := dest.Publisher.Publish(topic, msg)
	if err != nil && probe {
		// A failed probe says the destination is still down, not that the
		// event is bad: it costs the event no attempt.
		d.record(dest.Name, fmt.Errorf("%w: probe failed: %w", errDeferred, err))
	} else {
		d.record(dest.Name, err)
	}

	if err == nil {
		dest.stats.delivered.Add(1)
		dest.stats.observe(time.Since(start))
		if dest.breaker.success() {
			f.log.Info("destination is back", "destination", dest.Name)
			f.onChange()
		}
		f.log.Debug("event delivered", "destination", dest.Name, "event_id", msg.UUID,
			"event_type", msg.Metadata.Get(publishers.MetadataType), "probe", probe)
		return
	}

	dest.stats.failures.Add(1)
	if dest.breaker.failure(msg.UUID, err) {
		f.log.Warn("destination is down; probing it before sending more",
			"destination", dest.Name, "error", err)
	}
	if probe {
		f.log.Warn("destination still down: probe failed; the event keeps its attempts",
			"destination", dest.Name, "event_id", msg.UUID, "error", err)
		return
	}
	f.log.Warn("delivery failed", "destination", dest.Name, "event_id", msg.UUID,
		"attempt", d.attempts+1, "error", err)
}

// ready reports how many events may be claimed: unlimited (-1) when some
// destination is up, one when all are down and one may be probed, and zero
// with the time of the next probe otherwise.
func (f *fanOut) ready() (limit int, next time.Time) {
	for _, dest := range f.dests {
		if !dest.breaker.isOpen() {
			return -1, time.Time{}
		}
	}

	for _, dest := range f.dests {
		due, at := dest.breaker.probeDue()
		if due {
			return 1, time.Time{}
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}

	return 0, next
}

// Close closes every destination.
func (f *fanOut) Close() error {
	var errs []error
	for _, dest := range f.dests {
		if err := dest.Publisher.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close destination %s: %w", dest.Name, err))
		}
	}

	return errors.Join(errs...)
}

// breaker tells a destination that is down from one that rejects some
// events. It opens after tripAfter consecutive failures of at least two
// different events, or of one event when no failure got an answer at all
// (a refused connection, a timeout): an event cannot be at fault for those.
// While open it lets one probe through every interval and closes on the
// first success.
type breaker struct {
	tripAfter int
	interval  time.Duration

	mu         sync.Mutex
	open       bool
	streak     int
	streakIDs  map[string]struct{}
	unanswered bool // every failure of the streak got no answer
	probing    bool
	nextProbe  time.Time
}

func newBreaker(tripAfter int, interval time.Duration) *breaker {
	return &breaker{tripAfter: tripAfter, interval: interval,
		streakIDs: map[string]struct{}{}, unanswered: true}
}

// unanswered reports a failure in which the destination said nothing: the
// connection was refused or reset, or timed out.
func unanswered(err error) bool {
	var netErr net.Error

	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.DeadlineExceeded)
}

func (b *breaker) allow() (allowed, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()

	if !b.open {
		return true, false
	}
	if b.probing || time.Now().Before(b.nextProbe) {
		return false, false
	}
	b.probing = true

	return true, true
}

// success reports whether the breaker was open.
func (b *breaker) success() bool {
	b.mu.Lock()
	defer b.mu.Unlock()

	wasOpen := b.open
	b.open, b.probing, b.streak = false, false, 0
	clear(b.streakIDs)
	b.unanswered = true

	return wasOpen
}

// failure reports whether the breaker just opened.
func (b *breaker) failure(id string, err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()

	if b.open {
		b.probing = false
		b.nextProbe = time.Now().Add(b.interval)
		return false
	}

	b.streak++
	b.streakIDs[id] = struct{}{}
	b.unanswered = b.unanswered && unanswered(err)
	if b.streak < b.tripAfter || (len(b.streakIDs) < 2 && !b.unanswered) {
		return false
	}

	b.open, b.probing = true, false
	b.nextProbe = time.Now().Add(b.interval)

	return true
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.open
}

func (b *breaker) probeDue() (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return !b.probing && !time.Now().Before(b.nextProbe), b.nextProbe
}
