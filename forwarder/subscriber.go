package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/outbox"
	"github.com/apsoai/domainevents/publishers"
)

// subscriber is a Watermill subscriber over the events table. It claims
// batches of rows, emits each as a forwarder envelope without waiting for
// the previous one, and writes acks and nacks back in batches.
type subscriber struct {
	store *outbox.Store
	cfg   *Config
	fan   *fanOut
	stats *Stats
	log   *slog.Logger

	claimers, markers int // how many claims and marks run at once
	claimSize         atomic.Int64
	markQ             chan []result

	wake    chan struct{}
	room    chan struct{}
	results chan result

	mu         sync.Mutex
	inflight   map[string]*delivery
	deferred   map[string]struct{} // rows put off while a destination was down
	subscribed bool
	out        chan *message.Message

	ctx       context.Context // for database calls; cancelled last
	cancel    context.CancelFunc
	closing   chan struct{}
	closeOnce sync.Once
	claimDone chan struct{}
	stopMarks chan struct{}
	markDone  chan struct{}
}

type result struct {
	d     *delivery
	acked bool
}

// markers is how many marks run at once. PostgreSQL serves them in
// parallel; SQLite has one writer, so more would only queue. Claims run one
// at a time: measured here, parallel claims of one relay fight over the
// head of the pending index and each gets slower.
func markers(store *outbox.Store) int {
	if store.Postgres() {
		return 2
	}

	return 1
}

func newSubscriber(store *outbox.Store, cfg *Config, fan *fanOut, stats *Stats) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())

	s := &subscriber{
		store:     store,
		claimers:  1,
		markers:   markers(store),
		markQ:     make(chan []result),
		cfg:       cfg,
		fan:       fan,
		stats:     stats,
		log:       cfg.Logger,
		wake:      make(chan struct{}, 1),
		room:      make(chan struct{}, 1),
		results:   make(chan result, cfg.MaxInFlight),
		inflight:  map[string]*delivery{},
		deferred:  map[string]struct{}{},
		out:       make(chan *message.Message),
		ctx:       ctx,
		cancel:    cancel,
		closing:   make(chan struct{}),
		claimDone: make(chan struct{}),
		stopMarks: make(chan struct{}),
		markDone:  make(chan struct{}),
	}
	s.claimSize.Store(int64(cfg.BatchSize))

	return s
}

// Subscribe starts claiming. It can be called once; the topic is the
// forwarder's and is not otherwise used.
func (s *subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.subscribed {
		return nil, errors.New("forwarder: the events table subscriber serves one subscription")
	}
	s.subscribed = true

	go s.claimLoop()
	go s.markLoop()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.closing:
		}
	}()

	return s.out, nil
}

// signal makes a non-blocking send on a wake-up channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *subscriber) claimLoop() {
	defer close(s.claimDone)

	var wg sync.WaitGroup
	for range s.claimers {
		wg.Go(s.claimWorker)
	}
	wg.Wait()
}

func (s *subscriber) claimWorker() {
	conn := &pinnedConn{base: s.store}
	defer conn.drop()

	timer := time.NewTimer(0)
	defer timer.Stop()

	for {
		select {
		case <-s.closing:
			return
		case <-timer.C:
		case <-s.wake:
		case <-s.room:
		}

		next := s.claimAll(conn)
		timer.Reset(next)
	}
}

// claimAll claims until the backlog, the room for deliveries in flight or
// the destinations' readiness runs out, and returns how long to sleep.
func (s *subscriber) claimAll(conn *pinnedConn) time.Duration {
	for {
		limit, probeAt := s.limit()
		if limit == 0 {
			if !probeAt.IsZero() {
				return min(s.cfg.PollInterval, max(time.Until(probeAt), time.Millisecond))
			}
			return s.cfg.PollInterval
		}

		store, err := conn.store(s.ctx)
		var rows []outbox.Claimed
		if err == nil {
			rows, err = store.Claim(s.ctx, limit, s.cfg.Lease)
		}
		if err != nil {
			conn.drop()
			if s.ctx.Err() == nil {
				s.log.Warn("claim failed; trying again", "error", err)
			}
			return min(s.cfg.PollInterval, time.Second)
		}
		s.stats.Claimed.Add(int64(len(rows)))

		if !s.emit(rows) {
			return s.cfg.PollInterval
		}
		if len(rows) < limit {
			s.claimSize.Store(int64(s.cfg.BatchSize))
			return s.cfg.PollInterval
		}
		if size := int(s.claimSize.Load()); limit == size {
			s.claimSize.Store(int64(min(2*size, s.cfg.MaxBatchSize)))
		}
	}
}

func (s *subscriber) limit() (int, time.Time) {
	s.mu.Lock()
	busy := len(s.inflight)
	s.mu.Unlock()

	size := max(int(s.claimSize.Load()), s.cfg.BatchSize)
	room := min(s.cfg.MaxInFlight-busy, size)
	if room <= 0 || (busy > 0 && room < size/2) {
		// Wait for deliveries to finish rather than claim a few rows at a
		// time: each claim costs a round trip whatever its size.
		return 0, time.Time{}
	}

	ready, next := s.fan.ready()
	switch {
	case ready < 0:
		return room, time.Time{}
	case ready == 1 && busy == 0:
		return 1, time.Time{}
	}
	if next.IsZero() {
		next = time.Now().Add(s.cfg.ProbeInterval)
	}

	return 0, next
}

// emit hands rows to the forwarder; it reports false when closing stopped
// it, after releasing the rows it could not hand over.
func (s *subscriber) emit(rows []outbox.Claimed) bool {
	for i := range rows {
		row := &rows[i]
		if s.isInFlight(row.ID) {
			// Its lease ran out while this relay still delivers it; the
			// delivery under way will record the outcome.
			continue
		}
		d := &delivery{id: row.ID, attempts: row.Attempts, delivered: row.DeliveredTo}

		msg, err := s.envelope(row, d)
		if err == nil && row.Unreadable != nil {
			err = fmt.Errorf("row cannot be read as an event: %w", row.Unreadable)
			d.permanent = true
		}
		if err != nil {
			s.track(d)
			d.fail(err)
			s.results <- result{d: d}
			continue
		}

		s.track(d)
		select {
		case s.out <- msg:
			go s.watch(msg, d)
		case <-s.closing:
			var ids []string
			for _, r := range rows[i:] {
				ids = append(ids, r.ID)
			}
			s.untrack(ids...)
			if err := s.store.Release(s.ctx, ids); err != nil {
				s.log.Warn("release on shutdown failed; rows wait for their lease",
					"count", len(ids), "error", err)
			}
			return false
		}
	}

	return true
}

func (s *subscriber) envelope(row *outbox.Claimed, d *delivery) (*message.Message, error) {
	meta := make(map[string]string, len(row.Metadata)+2)
	maps.Copy(meta, row.Metadata)
	meta[publishers.MetadataType] = row.Type
	if row.EntityKey != "" {
		meta[publishers.MetadataEntityKey] = row.EntityKey
	}

	topic := row.Topic
	if topic == "" {
		topic = s.cfg.Topic
	}

	b, err := json.Marshal(envelope{
		DestinationTopic: topic,
		UUID:             row.ID,
		Payload:          row.Body(),
		Metadata:         meta,
	})
	if err != nil {
		return nil, err
	}

	msg := message.NewMessage(row.ID, b)
	msg.SetContext(withDelivery(s.ctx, d))

	return msg, nil
}

func (s *subscriber) isInFlight(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	_, ok := s.inflight[id]

	return ok
}

func (s *subscriber) track(d *delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.inflight[d.id] = d
}

func (s *subscriber) untrack(ids ...string) {
	s.mu.Lock()
	for _, id := range ids {
		delete(s.inflight, id)
	}
	s.mu.Unlock()

	signal(s.room)
}

func (s *subscriber) watch(msg *message.Message, d *delivery) {
	select {
	case <-msg.Acked():
		s.results <- result{d: d, acked: true}
	case <-msg.Nacked():
		s.results <- result{d: d}
	}
}

// markLoop gathers outcomes into batches and hands each to a free mark
// worker; while all are busy, the next batch grows.
func (s *subscriber) markLoop() {
	defer close(s.markDone)

	var wg sync.WaitGroup
	for range s.markers {
		wg.Go(s.markWorker)
	}
	defer wg.Wait()
	defer close(s.markQ)

	for {
		var batch []result
		select {
		case r := <-s.results:
			batch = append(batch, r)
		case <-s.stopMarks:
			return
		}

		batch = s.gather(batch)
		s.markQ <- batch
	}
}

// Marks gather for at most markLinger, and stop gathering once no outcome
// has come for markGap: under load a mark carries many rows, and when the
// table is quiet one outcome is written a fraction of a millisecond after
// its delivery.
const (
	markLinger = 2 * time.Millisecond
	markGap    = 250 * time.Microsecond
	markMax    = 500
)

func (s *subscriber) gather(batch []result) []result {
	deadline := time.Now().Add(markLinger)
	gap := time.NewTimer(markGap)
	defer gap.Stop()

	for len(batch) < markMax {
		select {
		case r := <-s.results:
			batch = append(batch, r)
			if time.Now().After(deadline) {
				return batch
			}
			gap.Reset(markGap)
		case <-gap.C:
			return batch
		case <-s.stopMarks:
			return batch
		}
	}

	return batch
}

func (s *subscriber) markWorker() {
	conn := &pinnedConn{base: s.store}
	defer conn.drop()

	for batch := range s.markQ {
		outcomes := make([]outbox.Outcome, len(batch))
		ids := make([]string, len(batch))
		for i, r := range batch {
			outcomes[i] = s.outcome(r)
			ids[i] = r.d.id
		}

		s.write(conn, outcomes)
		s.untrack(ids...)
		s.wakeForRetry(outcomes)
	}
}

// destinationBack runs when a destination that was down accepted a probe:
// the rows put off while it was down become claimable at once, so the
// backlog drains at full speed instead of waiting out DeferDelay.
func (s *subscriber) destinationBack() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.deferred))
	for id := range s.deferred {
		ids = append(ids, id)
	}
	clear(s.deferred)
	s.mu.Unlock()

	go func() {
		for len(ids) > 0 {
			n := min(len(ids), 500)
			err := s.store.ReleaseDeferred(s.ctx, ids[:n], s.cfg.DeferDelay)
			if err != nil && s.ctx.Err() == nil {
				s.log.Warn("releasing put-off rows failed; they wait for DeferDelay",
					"count", len(ids), "error", err)
				break
			}
			ids = ids[n:]
		}
		signal(s.wake)
	}()
}

// wakeForRetry makes the relay claim again when the soonest retry of the
// batch is due, if that comes before the next poll.
func (s *subscriber) wakeForRetry(outcomes []outbox.Outcome) {
	var soonest time.Duration
	for _, o := range outcomes {
		if o.Status == outbox.StatusPending && (soonest == 0 || o.RetryAfter < soonest) {
			soonest = o.RetryAfter
		}
	}

	if soonest > 0 && soonest < s.cfg.PollInterval {
		time.AfterFunc(soonest+5*time.Millisecond, func() { signal(s.wake) })
	}
}

// write records outcomes, retrying while the database is unreachable. A row
// whose outcome is never written is claimed again when its lease runs out,
// so a failure here can duplicate a delivery but never lose one.
func (s *subscriber) write(conn *pinnedConn, outcomes []outbox.Outcome) {
	for {
		store, err := conn.store(s.ctx)
		if err == nil {
			err = store.Complete(s.ctx, outcomes)
		}
		if err == nil || s.ctx.Err() != nil {
			return
		}
		conn.drop()

		s.log.Warn("recording delivery outcomes failed; trying again",
			"count", len(outcomes), "error", err)
		select {
		case <-time.After(time.Second):
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *subscriber) outcome(r result) outbox.Outcome {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()

	o := outbox.Outcome{ID: d.id, DeliveredTo: slices.Clone(d.delivered)}
	if d.lastErr != nil {
		o.Error = d.lastErr.Error()
	}

	all := true
	for _, dest := range s.fan.dests {
		all = all && slices.Contains(d.delivered, dest.Name)
	}

	switch {
	case all && !d.tried:
		o.Status = outbox.StatusPublished
		s.stats.Published.Add(1)
	case d.permanent:
		o.Status, o.CountAttempt = outbox.StatusFailed, true
	case d.tried || !r.acked || !d.deferred:
		o.CountAttempt = true
		if d.attempts+1 >= s.cfg.MaxAttempts {
			o.Status = outbox.StatusFailed
		} else {
			o.Status, o.RetryAfter = outbox.StatusPending, s.cfg.Backoff(d.attempts+1)
			s.stats.Retried.Add(1)
		}
	default:
		o.Status, o.RetryAfter = outbox.StatusPending, s.cfg.DeferDelay
		s.stats.Deferred.Add(1)
		s.mu.Lock()
		s.deferred[d.id] = struct{}{}
		s.mu.Unlock()
	}

	if o.Status == outbox.StatusFailed {
		s.stats.Failed.Add(1)
		s.log.Warn("event failed; redrive it once the cause is fixed", "event_id", d.id,
			"attempts", d.attempts+1, "error", o.Error)
	}

	return o
}

// Close stops claiming, waits up to the shutdown timeout for deliveries in
// flight and records their outcomes, releases the rows still in flight, and
// closes the message channel.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)

		s.mu.Lock()
		subscribed := s.subscribed
		s.mu.Unlock()
		if !subscribed {
			s.cancel()
			return
		}

		<-s.claimDone
		s.waitIdle(s.cfg.ShutdownTimeout)
		close(s.stopMarks)
		<-s.markDone

		s.mu.Lock()
		left := slices.Collect(maps.Keys(s.inflight))
		s.mu.Unlock()
		if len(left) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.store.Release(ctx, left); err != nil {
				s.log.Warn("release on shutdown failed; rows wait for their lease",
					"count", len(left), "error", err)
			}
			cancel()
		}

		s.cancel()
		close(s.out)
	})

	return nil
}

func (s *subscriber) waitIdle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		n := len(s.inflight)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.room:
		case <-time.After(10 * time.Millisecond):
		}
	}
}
