package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestRefusedOrdersAreNotRetried checks that the ledger tells a refusal at
// capacity, which placed nothing, from a failure that may have placed the
// order: only the second is asked for again with its key.
func TestRefusedOrdersAreNotRetried(t *testing.T) {
	var mu sync.Mutex
	var retried []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		retried = append(retried, key)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"order-of-` + key + `"}`))
	}))
	defer gw.Close()

	l := newLedger(&shop{gateway: gw.URL, client: gw.Client()}, "t", 1)
	answers := map[string]*vegeta.Result{
		"refused":     {Code: 503, Body: []byte(`{"status":503,"code":"overloaded"}`)},
		"no-retry":    {Code: 503, Body: []byte(`{"status":503,"code":"overloaded"}`)},
		"unavailable": {Code: 503, Body: []byte(`{"status":503,"code":"unavailable"}`)},
		"timed-out":   {Code: 0, Error: "context deadline exceeded"},
		"placed":      {Code: 202, Body: []byte(`{"id":"o-1"}`)},
	}
	for key, res := range answers {
		e := &entry{key: key, body: []byte(`{}`)}
		l.byKey[key] = e
		l.entries = append(l.entries, e)
		res.Headers = http.Header{"X-Request-Id": {key}}
		if key != "no-retry" {
			res.Headers.Set("Retry-After", "1")
		}
		l.record(res)
	}
	assert.True(t, l.byKey["refused"].refused)
	assert.False(t, l.byKey["no-retry"].refused, "a refusal says when to retry")
	assert.False(t, l.byKey["unavailable"].refused, "a 503 that is not a refusal at capacity may have placed the order")

	recovered, unknown := l.recover(context.Background(), l.all(), 10*time.Second)
	assert.Equal(t, 3, recovered)
	assert.Zero(t, unknown)
	assert.ElementsMatch(t, []string{"no-retry", "unavailable", "timed-out"}, retried)
	require.Empty(t, l.byKey["refused"].orderID)
	assert.Equal(t, "order-of-timed-out", l.byKey["timed-out"].orderID)
}
