package tests

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBurstPastCapacity sends orders many more placements at once than it
// admits (its bound starts at eight): what it refuses comes back through the
// gateway and both sidecars as 503 problem+json with Retry-After, and every
// order is placed once when retried with its key, nothing of a refused attempt
// left behind.
func TestBurstPastCapacity(t *testing.T) {
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

	refused := 0
	for _, r := range first {
		if r.status != http.StatusServiceUnavailable {
			require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
			continue
		}
		refused++
		pr := requireProblem(t, r, http.StatusServiceUnavailable)
		assert.Equal(t, "overloaded", pr.Code)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
	}
	require.Positive(t, refused, "%d placements at once and none refused", n)
	t.Logf("%d of %d placements at once refused", refused, n)

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
