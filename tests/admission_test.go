package tests

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/httpx"
)

// TestBurstPastCapacity sends a burst of placements through the gateway while
// a second orders instance admits one placement at a time and lets none wait
// for a place longer than a millisecond, less than any placement takes: that
// instance refuses some of the burst whatever the machine's speed (the first
// instance, adaptive from a bound of eight, may refuse none on a fast one).
// What it refuses comes back through the gateway and both sidecars as 503
// problem+json with Retry-After, and every order is placed once when retried
// with its key, nothing of a refused attempt left behind.
func TestBurstPastCapacity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	strict, err := sys.StartInstance(ctx, "orders", map[string]string{
		"PLACEMENT_CONCURRENCY_MIN": "1",
		"PLACEMENT_CONCURRENCY_MAX": "1",
		"PLACEMENT_LATENCY_TARGET":  "1ms",
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		sys.StopInstance(strict)
		assert.NotContains(t, sys.Instances("orders"), strict, "a stopped instance leaves the system")
		waitOrdersForgets(t, strict.ID)
	})
	eventually(t, 45*time.Second, func() bool {
		r := call(t, http.MethodGet, "/api/orders?customerId=burst-nobody", nil, nil)
		return r.header.Get(httpx.HeaderInstance) == strict.ID
	}, "the gateway never reached the second orders instance %s", strict.ID)

	p := newProduct(t, 100, 1000)
	customer := newCustomer(t, 1_000_000)
	item := orderLine{ProductID: p.ID, Quantity: 1}
	body := mustJSON(t, placeRequest{CustomerID: customer, Items: []orderLine{item}})

	const n = 64
	keys := make([]string, n)
	first := make([]response, n)
	var wg sync.WaitGroup
	for i := range keys {
		keys[i] = uniq("burst")
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			first[i] = call(t, http.MethodPost, "/api/orders", body, map[string]string{"Idempotency-Key": keys[i]})
		}(i)
	}
	wg.Wait()

	refused := map[string]int{} // by instance
	for _, r := range first {
		if r.status != http.StatusServiceUnavailable {
			require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
			continue
		}
		refused[r.header.Get(httpx.HeaderInstance)]++
		pr := requireProblem(t, r, http.StatusServiceUnavailable)
		assert.Equal(t, "overloaded", pr.Code)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
	}
	require.Positive(t, refused[strict.ID], "%d placements at once and none refused by %s (refused: %v)", n, strict.ID, refused)
	t.Logf("%d placements at once; refused by instance: %v", n, refused)

	ids := map[string]bool{}
	for i, key := range keys {
		r := placeWithKey(t, key, customer, item)
		require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
		var o order
		r.json(t, &o)
		if first[i].status == http.StatusAccepted {
			var before order
			first[i].json(t, &before)
			assert.Equal(t, before.ID, o.ID, "a retry of a placed order answers with it")
		}
		ids[o.ID] = true
	}
	assert.Len(t, ids, n, "one order per key")
	assert.Len(t, ordersOf(t, customer), n, "and no other")
}
