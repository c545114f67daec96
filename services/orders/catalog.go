package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

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

// validPrice reports whether the catalog priced p as orders can charge it.
func (p product) validPrice() bool { return p.PriceCents >= 0 && p.Currency != "" }

// priced is an order's lines with the catalog's prices.
type priced struct {
	lines      []events.Line
	totalCents int64
	currency   string
}

// price prices every item at the catalog's price. Products read from the
// catalog within the last priceTTL are priced from memory; the rest are asked
// for in one call.
func (s *orders) price(ctx context.Context, items []item) (priced, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	byID, missing := s.prices.get(ids)
	if len(missing) > 0 {
		products, err := s.fetchProducts(ctx, missing)
		if err != nil {
			return priced{}, err
		}
		for _, p := range products {
			byID[p.ID] = p
		}
		s.prices.put(products)
	}

	var p priced
	p.lines = make([]events.Line, len(items))
	for i, it := range items {
		prod, ok := byID[it.ProductID]
		if !ok {
			return priced{}, httpx.Errorf(httpx.EUnprocessable, "unknown product %s", it.ProductID)
		}
		if !prod.validPrice() {
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

// fetchProducts asks the catalog, in one call, for the products ids. The go-sdk
// splits the method name at "?" and sends the rest as the query string of the
// HTTP invocation, which is how GET products?ids=a,b reaches the catalog. The ids
// need no escaping: validation restricted them to [A-Za-z0-9._-].
func (s *orders) fetchProducts(ctx context.Context, ids []string) ([]product, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.catalogTimeout)
	defer cancel()
	out, err := s.dapr.InvokeMethod(ctx, s.cfg.catalogAppID, "products?ids="+strings.Join(ids, ","), http.MethodGet)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %v: %w", s.cfg.catalogAppID, err,
			httpx.Errorf(httpx.EUnavailable, "the catalog is unavailable; try again later"))
	}
	var products []product
	if err := json.Unmarshal(out, &products); err != nil {
		return nil, fmt.Errorf("decode the answer of %s: %v: %w", s.cfg.catalogAppID, err,
			httpx.Errorf(httpx.EBadGateway, "the catalog answered with something other than a list of products"))
	}
	return products, nil
}

// maxPrices bounds how many products the orders remember at once.
const maxPrices = 10_000

// prices remembers the products read from the catalog for ttl, so that at a
// steady rate of orders the catalog is asked about each product once per ttl
// rather than once per order. A new order is therefore priced at the catalog's
// price as of at most ttl ago. A product the catalog does not know, or prices
// invalidly, is not remembered: the next order asks again, so a product added to
// the catalog can be ordered at once. A ttl of zero remembers nothing.
type prices struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]remembered
}

type remembered struct {
	product
	until time.Time
}

func newPrices(ttl time.Duration, now func() time.Time) *prices {
	return &prices{ttl: ttl, now: now, m: map[string]remembered{}}
}

// get returns the products of ids that are remembered and still fresh, and the
// ids that are not.
func (c *prices) get(ids []string) (found map[string]product, missing []string) {
	found = make(map[string]product, len(ids))
	if c.ttl <= 0 {
		return found, ids
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if r, ok := c.m[id]; ok && now.Before(r.until) {
			found[id] = r.product
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing
}

// put remembers the validly priced products among ps. When the memory is full
// it first forgets what has expired, and then, if that was not enough,
// everything.
func (c *prices) put(ps []product) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		if !p.validPrice() {
			continue
		}
		if _, ok := c.m[p.ID]; !ok && len(c.m) >= maxPrices {
			maps.DeleteFunc(c.m, func(_ string, r remembered) bool { return !now.Before(r.until) })
			if len(c.m) >= maxPrices {
				clear(c.m)
			}
		}
		c.m[p.ID] = remembered{product: p, until: now.Add(c.ttl)}
	}
}
