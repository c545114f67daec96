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
// place, first come first served, for as long as the latency target at most,
// so that a hiccup of the machine below capacity refuses nothing.
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
	refused  int       // since the last log line
	loggedAt time.Time // of the last log line
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

// acquire admits one placement, waiting for a place up to the target, or
// refuses it with errAtCapacity. Refusals are logged at most once a second,
// with their count since the last line.
func (a *admission) acquire(ctx context.Context) (*ticket, error) {
	a.mu.Lock()
	// No placement jumps the queue: while any wait, the bound is reached,
	// since finish hands each place that frees up to the first of them.
	if float64(a.inFlight) < a.limit {
		a.inFlight++
		a.mu.Unlock()
		return &ticket{a: a, start: a.now()}, nil
	}
	ready := make(chan struct{})
	queued := a.waiting.PushBack(ready)
	a.mu.Unlock()

	timer := time.NewTimer(a.target)
	defer timer.Stop()
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
