package forwarder

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Health is a snapshot of a relay for health checks and status pages.
//
// The rule for Healthy is deliberately simple: the relay is running, no
// destination is judged down, and the backlog could be read from the
// database. A backlog that grows does not make the relay unhealthy by
// itself; alert on its age (BacklogAge, or the metrics package) instead.
type Health struct {
	// Healthy is Running, no destination down and the backlog read.
	Healthy bool `json:"healthy"`

	// Running reports whether the relay has started and not stopped.
	Running bool `json:"running"`

	// DestinationsDown lists the destinations judged down, which the relay
	// only probes until one delivery succeeds. It is never nil.
	DestinationsDown []string `json:"destinations_down"`

	// Pending counts the rows waiting for delivery.
	Pending int64 `json:"pending"`

	// Failed counts the rows that ran out of attempts.
	Failed int64 `json:"failed"`

	// OldestPending is the capture time of the oldest pending row; zero
	// when none is pending.
	OldestPending time.Time `json:"oldest_pending,omitzero"`

	// BacklogAge is the age of the oldest pending row in seconds; 0 when
	// none is pending.
	BacklogAge float64 `json:"backlog_age_seconds"`

	// Error says that the backlog could not be read; empty when it was.
	// It does not repeat the database's error, which can name internal
	// hosts; [Relay.Health] returns that error to the caller.
	Error string `json:"error,omitempty"`
}

// Health reports whether the relay is running, which destinations are down
// and the backlog of the events table, in one query. When the backlog
// cannot be read it returns the rest of the report, not healthy, with the
// error.
func (r *Relay) Health(ctx context.Context) (Health, error) {
	h := Health{Running: r.running(), DestinationsDown: []string{}}

	for _, d := range r.fan.dests {
		if d.breaker.isOpen() {
			h.DestinationsDown = append(h.DestinationsDown, d.Name)
		}
	}

	b, err := r.store.Backlog(ctx)
	if err != nil {
		h.Error = "the events table could not be read"
		return h, err
	}

	h.Pending, h.Failed, h.OldestPending = b.Pending, b.Failed, b.OldestPending
	if !b.OldestPending.IsZero() {
		h.BacklogAge = max(time.Since(b.OldestPending).Seconds(), 0)
	}
	h.Healthy = h.Running && len(h.DestinationsDown) == 0

	return h, nil
}

// running reports whether Run has started the forwarder and not returned.
func (r *Relay) running() bool {
	select {
	case <-r.done:
		return false
	default:
	}

	select {
	case <-r.fwd.Running():
		return true
	default:
		return false
	}
}

// healthTimeout bounds the backlog query of one health request.
const healthTimeout = 5 * time.Second

// HealthHandler answers GET and HEAD requests with the relay's [Health] as
// JSON: status 200 when it is healthy, 503 otherwise. It suits a readiness
// probe or a status page; as a liveness probe it would restart processes
// for an outage of a destination or of the database, which a restart does
// not cure.
func HealthHandler(r *Relay) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}

		ctx, cancel := context.WithTimeout(req.Context(), healthTimeout)
		defer cancel()

		h, err := r.Health(ctx)
		if err != nil {
			r.cfg.Logger.Warn("health check could not read the events backlog", "error", err)
		}

		status := http.StatusOK
		if !h.Healthy {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		if req.Method == http.MethodGet {
			_ = json.NewEncoder(w).Encode(h)
		}
	})
}
