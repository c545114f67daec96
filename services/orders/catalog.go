package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
)

// product is the part of a catalog product that pricing needs.
type product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	Currency   string `json:"currency"`
}

// priced is an order's lines with the catalog's prices.
type priced struct {
	lines      []events.Line
	totalCents int64
	currency   string
}

// price asks the catalog, in one call, for the price of every item. The go-sdk
// splits the method name at "?" and sends the rest as the query string of the
// HTTP invocation, which is how GET products?ids=a,b reaches the catalog. The ids
// need no escaping: validation restricted them to [A-Za-z0-9._-].
func (s *orders) price(ctx context.Context, items []item) (priced, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.catalogTimeout)
	defer cancel()
	out, err := s.dapr.InvokeMethod(ctx, s.cfg.catalogAppID, "products?ids="+strings.Join(ids, ","), http.MethodGet)
	if err != nil {
		return priced{}, fmt.Errorf("invoke %s: %v: %w", s.cfg.catalogAppID, err,
			httpx.Errorf(httpx.EUnavailable, "the catalog is unavailable; try again later"))
	}
	var products []product
	if err := json.Unmarshal(out, &products); err != nil {
		return priced{}, fmt.Errorf("decode the answer of %s: %v: %w", s.cfg.catalogAppID, err,
			httpx.Errorf(httpx.EBadGateway, "the catalog answered with something other than a list of products"))
	}
	byID := make(map[string]product, len(products))
	for _, p := range products {
		byID[p.ID] = p
	}

	var p priced
	p.lines = make([]events.Line, len(items))
	for i, it := range items {
		prod, ok := byID[it.ProductID]
		if !ok {
			return priced{}, httpx.Errorf(httpx.EUnprocessable, "unknown product %s", it.ProductID)
		}
		if prod.PriceCents < 0 || prod.Currency == "" {
			return priced{}, fmt.Errorf("catalog priced %s at %d %q: %w", prod.ID, prod.PriceCents, prod.Currency,
				httpx.Errorf(httpx.EBadGateway, "the catalog has no valid price for product %s", prod.ID))
		}
		if p.currency == "" {
			p.currency = prod.Currency
		} else if prod.Currency != p.currency {
			return priced{}, httpx.Errorf(httpx.EUnprocessable,
				"the products are priced in different currencies (%s and %s); order them separately", p.currency, prod.Currency)
		}
		// Quantity is at most 1000, so only an absurd price can overflow; refuse
		// it rather than charge a wrapped-around total.
		if prod.PriceCents > math.MaxInt64/it.Quantity || p.totalCents > math.MaxInt64-prod.PriceCents*it.Quantity {
			return priced{}, httpx.Errorf(httpx.EUnprocessable, "the order total is too large")
		}
		p.lines[i] = events.Line{ProductID: it.ProductID, Quantity: it.Quantity, PriceCents: prod.PriceCents}
		p.totalCents += prod.PriceCents * it.Quantity
	}
	return p, nil
}
