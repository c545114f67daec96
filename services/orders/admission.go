package main

import (
	"container/list"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/daprshop/daprshop/internal/httpx"
)

// admission bounds the placements in progress, so that past saturation a
// placement is refused promptly, with 503 and Retry-After, rather than queued
// behind all the others until the client's timeout: a queue that only grows
// makes every placement slow, and the timed-out ones come back as retries that
// do the work again. A placement that finds the bound reached waits for a
// place, first come first served, for as long as the latency target at most;
// but a queue is given twice the target from when it formed before it counts
// as standing (see waitLeft), so that a hiccup of the machine below capacity,
// which fills every place at once and then lets them all go, refuses nothing.
//
// The bound adapts to the latency of the placements it lets in (additive
// increase, multiplicative decrease): while they take less than the target and
// the bound is in use it grows by about one per bound's worth of placements,
// and each one that takes longer shrinks it by a tenth. It starts at its floor,
// and the floor is what a healthy system always lets in at once: starting high
// would let the first seconds of an overload queue hundreds of placements,
// each as slow as all of them together. What a placement costs depends on the
// machine and on everything else it runs, so no fixed bound fits both a laptop
// and a cluster node.
type admission struct {
	log      *slog.Logger
	target   time.Duration
	min, max float64
	now      func() time.Time

	mu       sync.Mutex
	limit    float64
	inFlight int
	waiting  list.List // of chan struct{}, closed when a place is handed over
	// queuedSince is when the queue last formed (time.Now, as its timers).
	queuedSince time.Time
	refused     int       // since the last log line
	loggedAt    time.Time // of the last log line
}

// backoff is the factor a placement slower than the target shrinks the bound by.
const backoff = 0.9

func newAdmission(log *slog.Logger, target time.Duration, minLimit, maxLimit int, now func() time.Time) *admission {
	return &admission{
		log:    log,
		target: target,
		min:    float64(minLimit),
		max:    float64(maxLimit),
		now:    now,
		limit:  float64(minLimit),
	}
}

// errAtCapacity refuses a placement while the bound is reached, before it has
// read or written anything; a retry with the same Idempotency-Key after
// Retry-After places the order, or answers with it if it was placed.
var errAtCapacity = httpx.Errorf(httpx.EOverloaded,
	"orders is placing as many orders as it can right now; retry with the same %s shortly", headerIdempotencyKey)

// ticket is one admitted placement.
type ticket struct {
	a     *admission
	start time.Time
	done  bool
}

// acquire admits one placement, waiting for a place as long as waitLeft
// allows, or refuses it with errAtCapacity. Refusals are logged at most once a
// second, with their count since the last line.
func (a *admission) acquire(ctx context.Context) (*ticket, error) {
	a.mu.Lock()
	// No placement jumps the queue: while any wait, the bound is reached,
	// since finish hands each place that frees up to the first of them.
	if float64(a.inFlight) < a.limit {
		a.inFlight++
		a.mu.Unlock()
		return &ticket{a: a, start: a.now()}, nil
	}
	arrived := time.Now()
	if a.waiting.Len() == 0 {
		a.queuedSince = arrived
	}
	ready := make(chan struct{})
	queued := a.waiting.PushBack(ready)
	a.mu.Unlock()

	timer := time.NewTimer(a.target)
	defer timer.Stop()
	for {
		select {
		case <-ready:
			return &ticket{a: a, start: a.now()}, nil
		case <-timer.C:
		case <-ctx.Done():
		}
		a.mu.Lock()
		select {
		case <-ready: // handed a place as the wait ended
			a.mu.Unlock()
			return &ticket{a: a, start: a.now()}, nil
		default:
		}
		if left := a.waitLeft(arrived, time.Now()); left > 0 && ctx.Err() == nil {
			a.mu.Unlock()
			timer.Reset(left)
			continue
		}
		break
	}
	a.waiting.Remove(queued)
	now := a.now()
	a.refused++
	refused, limit := a.refused, a.limit
	if now.Sub(a.loggedAt) < time.Second {
		refused = 0
	} else {
		a.refused, a.loggedAt = 0, now
	}
	a.mu.Unlock()
	if refused > 0 {
		a.log.WarnContext(ctx, "refusing placements at capacity", "refused", refused,
			"bound", int(limit), "latencyTarget", a.target)
	}
	return nil, errAtCapacity
}

// waitLeft returns how much longer a placement that joined the queue at
// arrived may wait at now: up to the target from its arrival, and, while the
// queue is younger than twice the target, up to that age. A queue that forms
// after a quiet spell is a burst (a collector's pause, a neighbour's burst of
// CPU, the first second of a load, when pools dial their connections): the
// bench saw them last about 100 ms at 260 orders/s, each filling every place
// at once and then letting them all go, and placements refused in them would
// have been placed a few milliseconds later. A queue that stands for longer is
// overload, and refusing at the target keeps the placements let in fast, as
// CoDel tells a burst from a standing queue (bench/README.md, tuning log 27).
// The caller holds a.mu.
func (a *admission) waitLeft(arrived, now time.Time) time.Duration {
	end := arrived.Add(a.target)
	if burst := a.queuedSince.Add(2 * a.target); burst.After(end) {
		end = burst
	}
	return end.Sub(now)
}

// release ends the placement: the first call frees its place and reports its
// time, later ones do nothing.
func (t *ticket) release() {
	if t == nil || t.done {
		return
	}
	t.done = true
	t.a.finish(t.a.now().Sub(t.start))
}

// finish ends one placement that took d and adjusts the bound.
func (a *admission) finish(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The bound grows only while it is being used: on a quiet system every
	// placement is fast, which says nothing about how many at once would be.
	busy := float64(a.inFlight) >= a.limit/2
	a.inFlight--
	switch {
	case d > a.target:
		a.limit = max(a.min, a.limit*backoff)
	case busy:
		a.limit = min(a.max, a.limit+1/a.limit)
	}
	for a.waiting.Len() > 0 && float64(a.inFlight) < a.limit {
		a.inFlight++
		close(a.waiting.Remove(a.waiting.Front()).(chan struct{}))
	}
}

// bound returns the current bound.
func (a *admission) bound() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit
}
