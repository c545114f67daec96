package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
	"github.com/daprshop/daprshop/internal/keylock"
	"github.com/daprshop/daprshop/internal/statestore"
)

// Limits of a product and of one query.
const (
	maxNameLen = 200
	// maxPriceCents keeps a price, times any sane quantity, far from overflowing
	// an order's total.
	maxPriceCents = 1_000_000_000
	// maxQueryIDs bounds GET /products?ids=..., which orders sends once per order.
	maxQueryIDs = 100
)

// indexKey holds the sorted ids of every product, for listing: the store has no
// query that the catalog could rely on.
const indexKey = "products-index"

func productKey(id string) string { return "product-" + id }

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// product is one thing the shop sells, priced in the currency's smallest unit.
type product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	Currency   string `json:"currency"`
}

// productFields is the body of PUT /products/{id}, where the id is in the path.
type productFields struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	Currency   string `json:"currency"`
}

// productIndex is the value at indexKey.
type productIndex struct {
	IDs []string `json:"ids"`
}

func (p product) validate() error {
	if err := ids.Check("product id", p.ID); err != nil {
		return httpx.Errorf(httpx.EInvalid, "%v", err)
	}
	switch n := utf8.RuneCountInString(p.Name); {
	case strings.TrimSpace(p.Name) == "":
		return httpx.Errorf(httpx.EInvalid, "name is required")
	case n > maxNameLen:
		return httpx.Errorf(httpx.EInvalid, "name is %d characters long; the limit is %d", n, maxNameLen)
	}
	switch {
	case p.PriceCents <= 0:
		return httpx.Errorf(httpx.EInvalid, "priceCents must be a positive whole number of cents, not %d", p.PriceCents)
	case p.PriceCents > maxPriceCents:
		return httpx.Errorf(httpx.EInvalid, "priceCents %d is over the limit of %d", p.PriceCents, maxPriceCents)
	}
	if !currencyRE.MatchString(p.Currency) {
		return httpx.Errorf(httpx.EInvalid, "currency must be three upper-case letters such as EUR, not %q", p.Currency)
	}
	return nil
}

// catalog keeps the products in the state store.
type catalog struct {
	dapr  sidecar
	store string
	// locks serialises this instance's writes to the index, so that they do not
	// spend their retries on conflicts with each other; ETags still guard against
	// other instances.
	locks *keylock.Locks
}

// get returns the product id, and whether it exists.
func (c *catalog) get(ctx context.Context, id string) (product, bool, error) {
	return statestore.GetJSON[product](ctx, c.dapr, c.store, productKey(id))
}

// Paging of the product list.
const (
	defaultListLimit = 100
	maxListLimit     = 500
)

// list returns at most limit products whose ids sort after after, by id, and
// the id to list the next page after: "" when no product is left.
func (c *catalog) list(ctx context.Context, after string, limit int) ([]product, string, error) {
	idx, _, err := statestore.GetJSON[productIndex](ctx, c.dapr, c.store, indexKey)
	if err != nil {
		return nil, "", err
	}
	start, found := slices.BinarySearch(idx.IDs, after)
	if found {
		start++
	}
	end := min(start+limit, len(idx.IDs))
	ps, err := c.getMany(ctx, idx.IDs[start:end])
	if err != nil || end == len(idx.IDs) {
		return ps, "", err
	}
	return ps, idx.IDs[end-1], nil
}

// getMany returns the products of ids that exist, sorted by id, in one read.
func (c *catalog) getMany(ctx context.Context, productIDs []string) ([]product, error) {
	out := []product{}
	if len(productIDs) == 0 {
		return out, nil
	}
	keys := make([]string, len(productIDs))
	for i, id := range productIDs {
		keys[i] = productKey(id)
	}
	items, err := c.dapr.GetBulkState(ctx, c.store, keys, nil, 10)
	if err != nil {
		return nil, fmt.Errorf("read %d products: %w", len(keys), err)
	}
	for _, it := range items {
		if it.Error != "" {
			return nil, fmt.Errorf("read %s: %s", it.Key, it.Error)
		}
		if len(it.Value) == 0 {
			continue // not a product, or listed in the index before it was written
		}
		var p product
		if err := json.Unmarshal(it.Value, &p); err != nil {
			return nil, fmt.Errorf("decode %s: %w", it.Key, err)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b product) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// create writes p only if no product has its id. It returns an EConflict error if
// one does.
func (c *catalog) create(ctx context.Context, p product) error {
	unlock := c.locks.Lock(indexKey, productKey(p.ID))
	defer unlock()
	// The id goes into the index before the product is written: an index entry
	// without a product is skipped when listing, while a product that a failure
	// left out of the index would never be listed.
	if err := c.addToIndex(ctx, p.ID); err != nil {
		return err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	err = statestore.Save(ctx, c.dapr, c.store, productKey(p.ID), data, "")
	if errors.Is(err, statestore.ErrConflict) {
		return httpx.Errorf(httpx.EConflict, "product %q already exists; PUT /products/%s changes it", p.ID, p.ID)
	}
	return err
}

// put creates or replaces p.
func (c *catalog) put(ctx context.Context, p product) error {
	unlock := c.locks.Lock(indexKey, productKey(p.ID))
	defer unlock()
	if err := c.addToIndex(ctx, p.ID); err != nil {
		return err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = statestore.Update(ctx, c.dapr, c.store, productKey(p.ID), func([]byte) ([]byte, error) {
		return data, nil
	})
	if errors.Is(err, statestore.ErrConflict) {
		return httpx.Errorf(httpx.EConflict, "product %q is being changed by another request; try again", p.ID)
	}
	return err
}

// addToIndex adds id to the index unless it is there already. The caller holds
// the index's lock.
func (c *catalog) addToIndex(ctx context.Context, id string) error {
	err := statestore.UpdateJSON(ctx, c.dapr, c.store, indexKey, func(idx *productIndex, _ bool) (bool, error) {
		i, listed := slices.BinarySearch(idx.IDs, id)
		if listed {
			return false, nil
		}
		idx.IDs = slices.Insert(idx.IDs, i, id)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("add %s to the product index: %w", id, err)
	}
	return nil
}

// pathID returns the {id} of the request's path, checked.
func pathID(r *http.Request) (string, error) {
	return ids.FromPath(r, "id", "product id")
}

// handleListProducts answers GET /products[?limit=n][&after=id] with a page of
// the products, sorted by id, and a Link header to the next page while any
// are left; or GET /products?ids=a,b,c with those of them that exist. Either
// way the body is a JSON array.
func handleListProducts(log *slog.Logger, cat *catalog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ps, next, limit, err := listProducts(r, cat)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		if next != "" {
			w.Header().Set("Link", fmt.Sprintf(`<%s/products?limit=%d&after=%s>; rel="next"`,
				httpx.ForwardedPrefix(r), limit, url.QueryEscape(next)))
		}
		httpx.WriteJSON(w, http.StatusOK, ps)
	}
}

// listProducts reads the query of GET /products and the products it asks for,
// and returns the id to list the next page after ("" when none) and the page
// size.
func listProducts(r *http.Request, cat *catalog) (ps []product, next string, limit int, err error) {
	q := r.URL.Query()
	if values, ok := q["ids"]; ok {
		if q.Has("limit") || q.Has("after") {
			return nil, "", 0, httpx.Errorf(httpx.EInvalid, "query parameter ids names the products; it does not take limit or after")
		}
		productIDs, err := ids.ParseList("ids", "product id", values, maxQueryIDs)
		if err != nil {
			return nil, "", 0, err
		}
		ps, err = cat.getMany(r.Context(), productIDs)
		return ps, "", 0, err
	}
	if limit, err = httpx.QueryInt(q, "limit", defaultListLimit, 1, maxListLimit); err != nil {
		return nil, "", 0, err
	}
	after := q.Get("after")
	if q.Has("after") {
		if err := ids.Check("after", after); err != nil {
			return nil, "", 0, httpx.Errorf(httpx.EInvalid, "query parameter %v", err)
		}
	}
	ps, next, err = cat.list(r.Context(), after, limit)
	return ps, next, limit, err
}

// handleGetProduct answers GET /products/{id}.
func handleGetProduct(log *slog.Logger, cat *catalog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		p, found, err := cat.get(r.Context(), id)
		if err == nil && !found {
			err = httpx.Errorf(httpx.ENotFound, "product %q not found", id)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, p)
	}
}

// handleCreateProduct answers POST /products: 201 with the product, or 409 when a
// product has its id.
func handleCreateProduct(log *slog.Logger, cat *catalog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p product
		err := httpx.DecodeJSON(w, r, &p, httpx.DefaultMaxBody)
		if err == nil {
			err = p.validate()
		}
		if err == nil {
			err = cat.create(r.Context(), p)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, p)
	}
}

// handlePutProduct answers PUT /products/{id}: it creates or replaces the product
// and answers 200 with it.
func handlePutProduct(log *slog.Logger, cat *catalog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		var f productFields
		if err == nil {
			err = httpx.DecodeJSON(w, r, &f, httpx.DefaultMaxBody)
		}
		p := product{ID: id, Name: f.Name, PriceCents: f.PriceCents, Currency: f.Currency}
		if err == nil {
			err = p.validate()
		}
		if err == nil {
			err = cat.put(r.Context(), p)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, p)
	}
}
