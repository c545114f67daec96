package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/httpx"
)

// newTestAdmission returns an admission with a target of 50 ms, on a clock
// that moves only when the test adds to it.
func newTestAdmission(minLimit, maxLimit int) (*admission, *testClock) {
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return newAdmission(log, 50*time.Millisecond, minLimit, maxLimit, clock.now), clock
}

// admitN admits n placements and requires each to be let in.
func admitN(t *testing.T, a *admission, n int) []*ticket {
	t.Helper()
	out := make([]*ticket, n)
	for i := range out {
		tk, err := a.acquire(context.Background())
		require.NoError(t, err, "placement %d of %d", i+1, n)
		out[i] = tk
	}
	return out
}

// placeAll admits n placements at once, lets d pass and releases them all.
func placeAll(t *testing.T, a *admission, clock *testClock, n int, d time.Duration) {
	t.Helper()
	tickets := admitN(t, a, n)
	clock.add(d)
	for _, tk := range tickets {
		tk.release()
	}
}

func TestAdmissionRefusesPastTheBound(t *testing.T) {
	a, _ := newTestAdmission(3, 3)
	tickets := admitN(t, a, 3)

	_, err := a.acquire(context.Background())
	require.Error(t, err)
	assert.Equal(t, httpx.EOverloaded, httpx.ErrorCode(err))
	assert.Equal(t, http.StatusServiceUnavailable, httpx.Status(httpx.ErrorCode(err)))

	// A release makes room for exactly one more, however often it is called.
	tickets[0].release()
	tickets[0].release()
	admitN(t, a, 1)
	_, err = a.acquire(context.Background())
	assert.Equal(t, httpx.EOverloaded, httpx.ErrorCode(err))
}

func TestAdmissionFollowsLatency(t *testing.T) {
	a, clock := newTestAdmission(4, 8)
	require.Equal(t, 4.0, a.bound(), "the bound starts at its floor")

	// One fast placement at a time says nothing about four at once.
	for i := 0; i < 50; i++ {
		placeAll(t, a, clock, 1, time.Millisecond)
	}
	assert.Equal(t, 4.0, a.bound(), "a quiet system does not grow the bound")

	// Fast placements with the bound in use grow it by about one per bound's
	// worth of them, up to the ceiling.
	placeAll(t, a, clock, 4, time.Millisecond)
	assert.Greater(t, a.bound(), 4.0, "four fast placements at a bound of four")
	for i := 0; i < 100; i++ {
		placeAll(t, a, clock, int(a.bound()), time.Millisecond)
	}
	assert.Equal(t, 8.0, a.bound(), "the ceiling")

	// Each placement slower than the target takes a tenth off, down to the
	// floor and not below.
	placeAll(t, a, clock, 1, 51*time.Millisecond)
	assert.InDelta(t, 7.2, a.bound(), 0.001)
	for i := 0; i < 20; i++ {
		placeAll(t, a, clock, 1, time.Second)
	}
	assert.Equal(t, 4.0, a.bound())
	admitN(t, a, 4)
	_, err := a.acquire(context.Background())
	assert.Equal(t, httpx.EOverloaded, httpx.ErrorCode(err), "the floor is the bound")
}

func TestAdmissionWaitsForAPlaceUpToTheTarget(t *testing.T) {
	a, _ := newTestAdmission(2, 2)
	tickets := admitN(t, a, 2)

	// Two wait; the place the first release frees goes to the first of them.
	got := make(chan int, 2)
	for i := 1; i <= 2; i++ {
		go func() {
			if _, err := a.acquire(context.Background()); err == nil {
				got <- i
			} else {
				got <- -i
			}
		}()
		require.Eventually(t, func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.waiting.Len() == i
		}, time.Second, time.Millisecond)
	}
	tickets[0].release()
	assert.Equal(t, 1, <-got, "the first to wait gets the place")
	assert.Equal(t, -2, <-got, "the second is refused once the queue has stood for twice the target (100 ms)")

	a.mu.Lock()
	defer a.mu.Unlock()
	assert.Equal(t, 2, a.inFlight, "the place handed over is taken")
	assert.Zero(t, a.waiting.Len(), "the refused one left the queue")
}

func TestAdmissionGivesANewQueueTwiceTheTarget(t *testing.T) {
	a, _ := newTestAdmission(1, 1)
	formed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a.queuedSince = formed
	ms := func(n int) time.Time { return formed.Add(time.Duration(n) * time.Millisecond) }

	// The queue's first placement waits past its own target (50 ms) while the
	// queue is younger than 100 ms, one that joins it later waits its target.
	assert.Equal(t, 50*time.Millisecond, a.waitLeft(formed, ms(50)))
	assert.Equal(t, time.Duration(0), a.waitLeft(formed, ms(100)))
	assert.Equal(t, 30*time.Millisecond, a.waitLeft(ms(80), ms(100)))
	// A queue standing for longer is overload: the target and no more.
	assert.Equal(t, 50*time.Millisecond, a.waitLeft(ms(500), ms(500)))
	assert.LessOrEqual(t, a.waitLeft(ms(500), ms(550)), time.Duration(0))
}

func TestAdmissionPlacesWhatABurstQueued(t *testing.T) {
	// A hiccup holds the one place for one and a half targets: the placement
	// that queued behind it gets the place instead of a refusal.
	a := newAdmission(slog.New(slog.NewTextHandler(io.Discard, nil)), 200*time.Millisecond, 1, 1, time.Now)
	held := admitN(t, a, 1)[0]
	got := make(chan error, 1)
	go func() {
		tk, err := a.acquire(context.Background())
		tk.release()
		got <- err
	}()
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.waiting.Len() == 1
	}, time.Second, time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	held.release()
	assert.NoError(t, <-got)
}

func TestAdmissionWaitEndsWithTheRequest(t *testing.T) {
	clock := &testClock{}
	a := newAdmission(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour, 1, 1, clock.now)
	admitN(t, a, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := a.acquire(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		assert.Equal(t, httpx.EOverloaded, httpx.ErrorCode(err))
	case <-time.After(10 * time.Second):
		t.Fatal("a placement whose client went away still waits for a place")
	}
}
