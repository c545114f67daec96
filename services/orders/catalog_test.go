package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlaceOrderRemembersPrices(t *testing.T) {
	cfg := testConfig()
	cfg.priceTTL = time.Minute
	e := newInstanceWith(t, newFake(), cfg)
	asked := func() int { return len(e.fake.calls()) }

	first := e.place("k1", appleAndPear)
	require.Equal(t, []string{"catalog GET products?ids=apple,pear"}, e.fake.calls())
	assert.Equal(t, int64(2*120+95), first.TotalCents)

	t.Run("within the ttl an order is priced from memory", func(t *testing.T) {
		e.fake.products["apple"] = product{ID: "apple", Name: "Apple", PriceCents: 150, Currency: "EUR"}
		o := e.place("k2", appleAndPear)
		assert.Equal(t, 1, asked())
		assert.Equal(t, first.Lines, o.Lines, "the price read a moment ago")
	})

	t.Run("only the products not remembered are asked for", func(t *testing.T) {
		e.fake.products["plum"] = product{ID: "plum", Name: "Plum", PriceCents: 40, Currency: "EUR"}
		o := e.place("k3", `{"customerId":"c1","items":[{"productId":"pear","quantity":1},{"productId":"plum","quantity":1}]}`)
		assert.Equal(t, "catalog GET products?ids=plum", e.fake.calls()[asked()-1])
		assert.Equal(t, int64(95+40), o.TotalCents)
	})

	t.Run("an unknown product is asked for again, so that it can be ordered once it exists", func(t *testing.T) {
		kiwi := `{"customerId":"c1","items":[{"productId":"kiwi","quantity":1}]}`
		before := asked()
		assertProblem(t, e.post("k4", kiwi), http.StatusUnprocessableEntity, "unknown product kiwi")
		e.fake.products["kiwi"] = product{ID: "kiwi", Name: "Kiwi", PriceCents: 70, Currency: "EUR"}
		o := e.place("k5", kiwi)
		assert.Equal(t, before+2, asked())
		assert.Equal(t, int64(70), o.TotalCents)
	})

	t.Run("an invalid price is asked for again", func(t *testing.T) {
		fig := `{"customerId":"c1","items":[{"productId":"fig","quantity":1}]}`
		e.fake.products["fig"] = product{ID: "fig", Name: "Fig", PriceCents: 10}
		assertProblem(t, e.post("k6", fig), http.StatusBadGateway, "no valid price for product fig")
		e.fake.products["fig"] = product{ID: "fig", Name: "Fig", PriceCents: 10, Currency: "EUR"}
		assert.Equal(t, int64(10), e.place("k7", fig).TotalCents)
	})

	t.Run("past the ttl the catalog's new price is used", func(t *testing.T) {
		e.clock.add(time.Minute)
		before := asked()
		o := e.place("k8", appleAndPear)
		assert.Equal(t, before+1, asked())
		assert.Equal(t, int64(2*150+95), o.TotalCents)
	})
}

func TestPlaceOrderWithoutPriceTTLAsksEveryTime(t *testing.T) {
	e := newTestEnv(t) // testConfig remembers nothing
	e.place("k1", appleAndPear)
	e.place("k2", appleAndPear)
	assert.Len(t, e.fake.calls(), 2)
}

func TestPricesForgetWhenFull(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newPrices(time.Minute, clock.now)
	fill := func(prefix string, n int) {
		ps := make([]product, n)
		for i := range ps {
			ps[i] = product{ID: fmt.Sprintf("%s%d", prefix, i), PriceCents: 1, Currency: "EUR"}
		}
		c.put(ps)
	}

	fill("old", maxPrices/2)
	clock.add(30 * time.Second)
	fill("new", maxPrices/2)
	clock.add(45 * time.Second) // the old ones have expired, the new not yet
	c.put([]product{{ID: "one-more", PriceCents: 1, Currency: "EUR"}})
	found, missing := c.get([]string{"old0", "new0", "one-more"})
	assert.Equal(t, []string{"old0"}, missing, "the expired are forgotten first")
	assert.Len(t, found, 2)
	assert.Len(t, c.m, maxPrices/2+1)

	fill("more", maxPrices/2-1) // full now
	require.Len(t, c.m, maxPrices)
	c.put([]product{{ID: "last", PriceCents: 1, Currency: "EUR"}})
	found, _ = c.get([]string{"new0", "more0", "last"})
	assert.Equal(t, []string{"last"}, keysOf(found), "nothing had expired, so everything else was forgotten")
	assert.Len(t, c.m, 1)
}

func keysOf(m map[string]product) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
