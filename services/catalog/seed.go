package main

import (
	"context"

	"github.com/daprshop/daprshop/internal/httpx"
)

// demoProducts is the catalog loaded at start, so that a fresh system has
// something to sell.
var demoProducts = []product{
	{ID: "apple", Name: "Apple", PriceCents: 50, Currency: "EUR"},
	{ID: "banana", Name: "Banana", PriceCents: 30, Currency: "EUR"},
	{ID: "coffee", Name: "Coffee beans, 250 g", PriceCents: 899, Currency: "EUR"},
	{ID: "tea", Name: "Green tea, 20 bags", PriceCents: 349, Currency: "EUR"},
	{ID: "notebook", Name: "Notebook, A5", PriceCents: 299, Currency: "EUR"},
}

// seed creates each of ps that does not exist yet and returns how many it created.
// Each product is created only if absent, so seeding twice, or from two instances
// starting at once, creates each product once and never overwrites one that an
// operator changed.
func (c *catalog) seed(ctx context.Context, ps []product) (int, error) {
	created := 0
	for _, p := range ps {
		err := c.create(ctx, p)
		if err != nil && httpx.ErrorCode(err) == httpx.EConflict {
			continue
		}
		if err != nil {
			return created, err
		}
		created++
	}
	return created, nil
}
