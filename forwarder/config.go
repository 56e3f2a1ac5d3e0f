package forwarder

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/apsoai/domainevents/publishers"
)

// Config configures a [Relay]. The zero value of every field but
// Destinations is valid.
type Config struct {
	// Destinations receive every event. A row is published once all of them
	// accepted it. Required.
	Destinations []publishers.Destination

	// BatchSize is the most rows one claim takes while the table is quiet.
	// Defaults to 50, as the contract says.
	BatchSize int

	// MaxBatchSize is the most rows one claim takes while a backlog lasts:
	// each claim that comes back full doubles the next one, up to this, and
	// one that does not resets it to BatchSize. Fewer, larger claims are what
	// lets a backlog drain fast. Defaults to 250; at most 500.
	MaxBatchSize int

	// MaxInFlight is the most events being delivered at once, across claims.
	// Defaults to 256 or MaxBatchSize, whichever is larger.
	MaxInFlight int

	// PollInterval is how often the relay looks for rows when nothing wakes
	// it. A commit through the library wakes it at once, so this only bounds
	// the delay for rows written by other processes without a wake-up.
	// Defaults to 5s.
	PollInterval time.Duration

	// Lease is how long a claimed row stays away from other relays. A relay
	// that dies leaves its rows claimable after it. It must exceed the
	// longest delivery. Defaults to 30s.
	Lease time.Duration

	// MaxAttempts is the number of failed attempts after which a row becomes
	// failed. Defaults to 5, as the contract says.
	MaxAttempts int

	// Backoff returns the wait before the next try after the given number of
	// failed attempts (1 after the first failure). Defaults to
	// [DefaultBackoff].
	Backoff func(attempts int) time.Duration

	// ProbeInterval is how often a destination judged down gets one event to
	// find out whether it is back. Defaults to 1s.
	ProbeInterval time.Duration

	// DeferDelay is how long a row waits when it could not be offered to a
	// destination that is down; it costs the row no attempt. Defaults to 10s.
	DeferDelay time.Duration

	// TripAfter is the number of consecutive failed deliveries after which a
	// destination is judged down: failures of at least two different events,
	// or of one event when none of them got an answer (refused connection,
	// timeout). Defaults to 3.
	TripAfter int

	// ShutdownTimeout bounds how long Close waits for deliveries in flight
	// before it releases their rows to other relays. Defaults to 15s.
	ShutdownTimeout time.Duration

	// Topic is the destination topic recorded in envelopes of captured
	// events. Defaults to "events".
	Topic string

	// ForwarderTopic is the topic the Watermill forwarder listens on.
	// Defaults to "events_forwarder".
	ForwarderTopic string

	// Logger receives the relay's logs. Defaults to discarding.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 50
	}
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = max(250, c.BatchSize)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = max(256, c.MaxBatchSize)
	}
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.Lease == 0 {
		c.Lease = 30 * time.Second
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = time.Second
	}
	if c.DeferDelay == 0 {
		c.DeferDelay = 10 * time.Second
	}
	if c.TripAfter == 0 {
		c.TripAfter = 3
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Topic == "" {
		c.Topic = "events"
	}
	if c.ForwarderTopic == "" {
		c.ForwarderTopic = "events_forwarder"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if len(c.Destinations) == 0 {
		return errors.New("no destinations: set EVENTS_DESTINATION or Config.Destinations")
	}

	seen := map[string]bool{}
	for i, d := range c.Destinations {
		if d.Name == "" || d.Publisher == nil {
			return fmt.Errorf("Destinations[%d] needs a name and a publisher", i)
		}
		if seen[d.Name] {
			return fmt.Errorf("destination %q is listed twice", d.Name)
		}
		seen[d.Name] = true
	}

	checks := []struct {
		name string
		bad  bool
	}{
		{"BatchSize", c.BatchSize < 1 || c.BatchSize > 500},
		{"MaxBatchSize", c.MaxBatchSize < c.BatchSize || c.MaxBatchSize > 500},
		{"MaxInFlight", c.MaxInFlight < c.MaxBatchSize},
		{"PollInterval", c.PollInterval < time.Millisecond},
		{"Lease", c.Lease < time.Second},
		{"MaxAttempts", c.MaxAttempts < 1},
		{"ProbeInterval", c.ProbeInterval <= 0},
		{"DeferDelay", c.DeferDelay <= 0},
		{"TripAfter", c.TripAfter < 2},
		{"ShutdownTimeout", c.ShutdownTimeout <= 0},
	}
	for _, chk := range checks {
		if chk.bad {
			return fmt.Errorf("%s is out of range (BatchSize 1-500, MaxBatchSize BatchSize-500, "+
				"MaxInFlight >= MaxBatchSize, "+
				"PollInterval >= 1ms, Lease >= 1s, MaxAttempts >= 1, TripAfter >= 2)", chk.name)
		}
	}

	return nil
}

// DefaultBackoff waits 1s after the first failed attempt, then 3s, 9s, 27s
// and at most 5m, each with up to 20% random jitter so that events that
// failed together do not retry together. With five attempts an event that a
// destination keeps rejecting fails about 45s after its first try; an
// outage of the whole destination costs no attempts (see Config.TripAfter).
func DefaultBackoff(attempts int) time.Duration {
	d := time.Second
	for i := 1; i < attempts && d < 5*time.Minute; i++ {
		d *= 3
	}
	d = min(d, 5*time.Minute)

	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}
