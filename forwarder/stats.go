package forwarder

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what a relay did since it started. Read it with
// [Relay.Stats]; all counters only grow.
type Stats struct {
	// Claimed counts rows claimed.
	Claimed atomic.Int64
	// Published counts rows marked published.
	Published atomic.Int64
	// Retried counts rows put back to pending after a counted failure.
	Retried atomic.Int64
	// Deferred counts rows put back to pending without a counted attempt.
	Deferred atomic.Int64
	// Failed counts rows marked failed.
	Failed atomic.Int64

	mu    sync.Mutex
	dests map[string]*destStats
}

// destStats counts one destination's deliveries.
type destStats struct {
	delivered atomic.Int64
	failures  atomic.Int64
	deferred  atomic.Int64
	nanos     atomic.Int64
}

func (d *destStats) observe(took time.Duration) {
	d.nanos.Add(int64(took))
}

// DestinationStats is a snapshot of one destination's counters.
type DestinationStats struct {
	// Delivered counts events the destination accepted.
	Delivered int64
	// Failures counts deliveries it failed or refused.
	Failures int64
	// Deferred counts events not offered to it while it was down.
	Deferred int64
	// SendTime is the total time spent in accepted deliveries.
	SendTime time.Duration
	// Down reports whether the destination is judged down right now.
	Down bool
}

func (s *Stats) destination(name string) *destStats {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.dests == nil {
		s.dests = map[string]*destStats{}
	}
	d := s.dests[name]
	if d == nil {
		d = &destStats{}
		s.dests[name] = d
	}

	return d
}
