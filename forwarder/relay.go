package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmforwarder "github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/apsoai/domainevents/outbox"
)

// Relay drains the events table to the destinations through Watermill's
// forwarder. Create it with [New], start it with [Relay.Run] or
// [Relay.Start], stop it with [Relay.Close].
type Relay struct {
	store *outbox.Store
	cfg   Config
	sub   *subscriber
	fan   *fanOut
	fwd   *wmforwarder.Forwarder
	stats *Stats

	mu        sync.Mutex
	closed    bool
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New builds a relay over store. It validates cfg and returns an error
// wrapping "invalid config" for a bad one.
func New(store *outbox.Store, cfg Config) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("forwarder: invalid config: %w", err)
	}
	if store == nil {
		return nil, errors.New("forwarder: New needs an *outbox.Store")
	}

	r := &Relay{store: store, cfg: cfg, stats: &Stats{}, done: make(chan struct{})}
	r.fan = newFanOut(&r.cfg, r.stats, func() { r.sub.destinationBack() })
	r.sub = newSubscriber(store, &r.cfg, r.fan, r.stats)

	wmLogger := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
	fwd, err := wmforwarder.NewForwarder(r.sub, r.fan, wmLogger, wmforwarder.Config{
		ForwarderTopic: cfg.ForwarderTopic,
		Middlewares:    []message.HandlerMiddleware{recordOutcome},
		CloseTimeout:   cfg.ShutdownTimeout + 5*time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("forwarder: build watermill forwarder: %w", err)
	}
	r.fwd = fwd

	return r, nil
}

// recordOutcome lets the subscriber, not the router, judge a delivery: the
// outcome is already in the delivery state, so the message is acked and the
// router logs nothing for an ordinary delivery failure.
func recordOutcome(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			return out, nil
		}

		d := deliveryFrom(msg.Context())
		if d == nil {
			return out, err
		}

		d.mu.Lock()
		recorded := d.tried || d.deferred || len(d.delivered) > 0
		d.mu.Unlock()
		if !recorded {
			d.fail(err)
		}

		return nil, nil
	}
}

// Run relays until ctx is done or Close is called, and returns after the
// shutdown finished.
func (r *Relay) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("forwarder: relay is closed")
	}
	if r.cancel != nil {
		r.mu.Unlock()
		return errors.New("forwarder: relay already running")
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.mu.Unlock()
	defer close(r.done)

	if r.store.Postgres() {
		go r.listen(ctx)
	}

	r.cfg.Logger.Info("relay started", "destinations", len(r.cfg.Destinations),
		"batch_size", r.cfg.BatchSize, "poll_interval", r.cfg.PollInterval)
	err := r.fwd.Run(ctx)
	r.cfg.Logger.Info("relay stopped")

	if errors.Is(err, context.Canceled) {
		return nil
	}

	return err
}

// Start runs the relay in a goroutine of its own until Close.
func (r *Relay) Start() {
	go func() {
		if err := r.Run(context.Background()); err != nil {
			r.cfg.Logger.Error("relay ended with an error", "error", err)
		}
	}()
}

// Running is closed once the relay is running.
func (r *Relay) Running() <-chan struct{} {
	return r.fwd.Running()
}

// Wake makes the relay look for rows now instead of at the next poll. It
// never blocks; wake-ups that arrive together count as one.
func (r *Relay) Wake() {
	signal(r.sub.wake)
}

// listen wakes the relay on notifications from commits in other processes.
// It needs Bun's pgdriver; with another driver the poll interval applies.
func (r *Relay) listen(ctx context.Context) {
	db := r.store.DB()
	if _, ok := db.Driver().(pgdriver.Driver); !ok {
		r.cfg.Logger.Warn("cross-process wake-up needs bun's pgdriver; relying on the poll interval",
			"poll_interval", r.cfg.PollInterval)
		return
	}

	ln := pgdriver.NewListener(db)
	defer ln.Close()

	if err := ln.Listen(ctx, outbox.NotifyChannel); err != nil {
		r.cfg.Logger.Warn("LISTEN failed; relying on the poll interval", "error", err)
		return
	}

	ch := ln.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			r.Wake()
		}
	}
}

// Close stops claiming, lets deliveries in flight finish for up to
// Config.ShutdownTimeout, releases what is left to other relays, closes the
// destinations and returns. It is safe to call more than once.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		started := r.cancel != nil
		r.closed = true
		r.mu.Unlock()

		var err error
		if started {
			// Watermill's router must be running before it can be closed
			// cleanly; a Close that races its start waits out the close
			// timeout instead.
			select {
			case <-r.fwd.Running():
			case <-r.done:
			}
			if err = r.fwd.Close(); err != nil {
				err = fmt.Errorf("forwarder: close the watermill router: %w", err)
			}

			r.mu.Lock()
			r.cancel()
			r.mu.Unlock()
			<-r.done
		} else {
			_ = r.sub.Close()
		}

		r.closeErr = errors.Join(err, r.fan.Close())
	})

	return r.closeErr
}

// Stats returns the relay's counters and the state of each destination.
func (r *Relay) Stats() (relay map[string]int64, dests map[string]DestinationStats) {
	relay = map[string]int64{
		"claimed":   r.stats.Claimed.Load(),
		"published": r.stats.Published.Load(),
		"retried":   r.stats.Retried.Load(),
		"deferred":  r.stats.Deferred.Load(),
		"failed":    r.stats.Failed.Load(),
	}

	dests = map[string]DestinationStats{}
	for _, d := range r.fan.dests {
		dests[d.Name] = DestinationStats{
			Delivered: d.stats.delivered.Load(),
			Failures:  d.stats.failures.Load(),
			Deferred:  d.stats.deferred.Load(),
			SendTime:  time.Duration(d.stats.nanos.Load()),
			Down:      d.breaker.isOpen(),
		}
	}

	return relay, dests
}
