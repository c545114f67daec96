package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprapp"
	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/keylock"
)

// testEnv is one orders instance in front of a fake sidecar.
type testEnv struct {
	t     testing.TB
	fake  *fakeSidecar
	h     http.Handler
	svc   *orders
	clock *testClock
}

func testConfig() config {
	return config{
		Config:         daprapp.Config{AppID: "orders", Store: events.StoreOrders},
		catalogAppID:   "catalog",
		catalogTimeout: time.Second,
		claimWait:      100 * time.Millisecond,
		pollInterval:   5 * time.Millisecond,
		// Room for every test's concurrent placements, and a target that a
		// slow test machine never misses: only TestPlaceOrderPastCapacity
		// reaches the bound.
		placementTarget: time.Second,
		placementMin:    64,
		placementMax:    256,
		indexPage:       indexPageSize,
		// The reconciler runs only when a test calls it, but the placements
		// keep its buckets.
		reconcileInterval:  2 * time.Second,
		redriveAfter:       10 * time.Second,
		sagaTimeout:        15 * time.Minute,
		inventoryAppID:     "inventory",
		paymentsAppID:      "payments",
		notificationsAppID: "notifications",
	}
}

// testClock is a clock that moves by tick on every reading (a second for the
// server, so that every history entry has its own time), and by add.
type testClock struct {
	mu   sync.Mutex
	t    time.Time
	tick time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.tick)
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return newInstance(t, newFake())
}

// newInstance starts another instance, with its own locks, on the same fake
// sidecar, the way a second replica shares the store.
func newInstance(t *testing.T, f *fakeSidecar) *testEnv {
	t.Helper()
	return newInstanceWith(t, f, testConfig())
}

func newInstanceWith(t testing.TB, f *fakeSidecar, cfg config) *testEnv {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), tick: time.Second}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := newOrders(log, "orders-test", cfg, f, keylock.New(64), clock.now)
	return &testEnv{t: t, fake: f, h: newServer(log, "orders-test", svc), svc: svc, clock: clock}
}

func (e *testEnv) do(method, path, body string, header http.Header) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// post places an order under key.
func (e *testEnv) post(key, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		h.Set(headerIdempotencyKey, key)
	}
	return e.do(http.MethodPost, "/", body, h)
}

// place places an order and requires it to be accepted.
func (e *testEnv) place(key, body string) order {
	e.t.Helper()
	rec := e.post(key, body)
	require.Equal(e.t, http.StatusAccepted, rec.Code, rec.Body.String())
	return decodeBody[order](e.t, rec)
}

func decodeBody[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return v
}

// assertProblem checks that rec is a problem+json answer with status and a
// detail that contains detail.
func assertProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, detail string) {
	t.Helper()
	assert.Equal(t, status, rec.Code, rec.Body.String())
	assert.Equal(t, httpx.ProblemContentType, rec.Header().Get("Content-Type"))
	p := decodeBody[httpx.Problem](t, rec)
	assert.Equal(t, status, p.Status)
	assert.Contains(t, p.Detail, detail)
}

func TestServerRoutes(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
	}{
		{"health", http.MethodGet, "/healthz", http.StatusOK, "text/plain; charset=utf-8"},
		{"unknown path", http.MethodGet, "/no/such/path", http.StatusNotFound, httpx.ProblemContentType},
		{"wrong method on orders", http.MethodDelete, "/", http.StatusMethodNotAllowed, httpx.ProblemContentType},
		{"wrong method on an order", http.MethodPut, "/0123456789abcdef0123456789abcdef", http.StatusMethodNotAllowed, httpx.ProblemContentType},
		{"wrong method on an event route", http.MethodGet, pathStockReserved, http.StatusMethodNotAllowed, httpx.ProblemContentType},
		{"dead letters", http.MethodGet, "/deadletters", http.StatusOK, "application/json"},
		{"subscriptions", http.MethodGet, "/dapr/subscribe", http.StatusOK, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(tt.method, tt.path, "", nil)
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.contentType, rec.Header().Get("Content-Type"))
			assert.Equal(t, "orders-test", rec.Header().Get(httpx.HeaderInstance))
		})
	}
}
