package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apsoai/domainevents/forwarder"
	"github.com/apsoai/domainevents/outbox"
)

// Namespace prefixes every metric name.
const Namespace = "domainevents"

// Config configures a [Collector]. The zero value is valid.
type Config struct {
	// Timeout bounds the backlog query of one scrape. Defaults to 2s.
	Timeout time.Duration

	// Logger receives a warning when the backlog cannot be read. Defaults to
	// discarding.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("Timeout %s is negative", c.Timeout)
	}

	return nil
}

// Collector is a prometheus.Collector over one relay and its events table.
// It is safe for concurrent scrapes.
type Collector struct {
	relay *forwarder.Relay
	store *outbox.Store
	cfg   Config
}

var _ prometheus.Collector = (*Collector)(nil)

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	pendingDesc = newDesc("pending_events",
		"Events waiting for delivery, in flight or waiting for a retry.")
	failedDesc = newDesc("failed_events",
		"Events that ran out of attempts and wait for a redrive.")
	oldestDesc = newDesc("oldest_pending_age_seconds",
		"Age of the oldest pending event in seconds; 0 when none is pending.")
	backlogUpDesc = newDesc("backlog_up",
		"1 if the backlog query of this scrape succeeded, 0 if it failed.")

	deliveriesDesc = newDesc("deliveries_total",
		"Events the destination accepted.", "destination")
	failuresDesc = newDesc("delivery_failures_total",
		"Deliveries the destination failed or refused.", "destination")
	deferralsDesc = newDesc("delivery_deferrals_total",
		"Events held back while the destination was judged down.", "destination")
	durationDesc = newDesc("delivery_duration_seconds",
		"Time spent in deliveries the destination accepted.", "destination")
	downDesc = newDesc("destination_down",
		"1 while the destination is judged down and only probed.", "destination")
)

// relayDescs maps the keys of forwarder.Relay.Stats to their counters.
var relayDescs = map[string]*prometheus.Desc{
	"claimed":   newDesc("relay_claimed_total", "Rows the relay claimed."),
	"published": newDesc("relay_published_total", "Rows the relay marked published."),
	"retried": newDesc("relay_retried_total",
		"Rows rescheduled after a counted failed attempt."),
	"deferred": newDesc("relay_deferred_total",
		"Rows rescheduled without an attempt (destination down)."),
	"failed": newDesc("relay_failed_total", "Rows the relay marked failed."),
}

// New returns a collector for store and, when relay is not nil, for the
// relay's counters and destinations. A nil relay suits a process that only
// captures: it exports the backlog alone. It validates cfg and returns an
// error wrapping "invalid config" for a bad one.
func New(relay *forwarder.Relay, store *outbox.Store, cfg Config) (*Collector, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("metrics: invalid config: %w", err)
	}
	if store == nil {
		return nil, errors.New("metrics: New needs an *outbox.Store")
	}

	return &Collector{relay: relay, store: store, cfg: cfg}, nil
}

// Describe sends the descriptors of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pendingDesc, failedDesc, oldestDesc, backlogUpDesc} {
		ch <- d
	}
	if c.relay == nil {
		return
	}

	for _, d := range []*prometheus.Desc{
		deliveriesDesc, failuresDesc, deferralsDesc, durationDesc, downDesc,
	} {
		ch <- d
	}
	for _, d := range relayDescs {
		ch <- d
	}
}

// Collect reads the backlog and the relay's counters and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.collectBacklog(ch)

	if c.relay != nil {
		c.collectRelay(ch)
	}
}

func (c *Collector) collectBacklog(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()

	b, err := c.store.Backlog(ctx)
	if err != nil {
		c.cfg.Logger.Warn("reading the events backlog for metrics failed", "error", err)
		ch <- prometheus.MustNewConstMetric(backlogUpDesc, prometheus.GaugeValue, 0)
		return
	}

	var age float64
	if !b.OldestPending.IsZero() {
		age = max(time.Since(b.OldestPending).Seconds(), 0)
	}

	ch <- prometheus.MustNewConstMetric(backlogUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.GaugeValue, float64(b.Failed))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}

func (c *Collector) collectRelay(ch chan<- prometheus.Metric) {
	counters, dests := c.relay.Stats()

	for key, desc := range relayDescs {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(counters[key]))
	}

	for name, d := range dests {
		ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue,
			float64(d.Delivered), name)
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue,
			float64(d.Failures), name)
		ch <- prometheus.MustNewConstMetric(deferralsDesc, prometheus.CounterValue,
			float64(d.Deferred), name)
		ch <- prometheus.MustNewConstSummary(durationDesc, uint64(max(d.Delivered, 0)),
			d.SendTime.Seconds(), nil, name)

		down := 0.0
		if d.Down {
			down = 1
		}
		ch <- prometheus.MustNewConstMetric(downDesc, prometheus.GaugeValue, down, name)
	}
}
