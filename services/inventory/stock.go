package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
	"github.com/daprshop/daprshop/internal/keylock"
	"github.com/daprshop/daprshop/internal/statestore"
)

// maxAvailable bounds the stock of one product, so that releases added to it can
// never overflow.
const maxAvailable = 1_000_000_000_000

func stockKey(productID string) string { return "stock-" + productID }

// stockRecord is the value at a product's stock key.
type stockRecord struct {
	ProductID string `json:"productId"`
	Available int64  `json:"available"`
	// Applied holds, by operation ("reserve/<orderID>" or "release/<orderID>"),
	// the change that operation made to Available while its outcome is not yet
	// recorded in the order's reservation. Because the mark is written in the same
	// key as the change, a retried operation can see that it already happened and
	// never applies it twice; once the outcome is recorded the mark is removed.
	Applied map[string]int64 `json:"applied,omitempty"`
}

// stockView is what GET and PUT /stock/{productID} answer.
type stockView struct {
	ProductID string `json:"productId"`
	Available int64  `json:"available"`
}

// stockBody is the body of PUT /stock/{productID}. Available is a pointer so that
// a missing or null value is refused rather than read as zero.
type stockBody struct {
	Available *int64 `json:"available"`
}

func decodeStock(data []byte) (stockRecord, error) {
	var s stockRecord
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("decode stock record: %w", err)
	}
	return s, nil
}

// ledger keeps stock and reservations in the state store.
type ledger struct {
	log   *slog.Logger
	dapr  sidecar
	store string
	// locks serialises this instance's work on the same stock and reservation
	// keys, so that its writes never lose an ETag race to each other; the ETags
	// still guard against other instances.
	locks *keylock.Locks
}

// stock returns the stock of productID, and whether it was ever set.
func (l *ledger) stock(ctx context.Context, productID string) (stockView, bool, error) {
	item, err := l.dapr.GetState(ctx, l.store, stockKey(productID), nil)
	if err != nil {
		return stockView{}, false, fmt.Errorf("read stock of %s: %w", productID, err)
	}
	if len(item.Value) == 0 {
		return stockView{}, false, nil
	}
	s, err := decodeStock(item.Value)
	if err != nil {
		return stockView{}, false, err
	}
	return stockView{ProductID: productID, Available: s.Available}, true, nil
}

// setStock sets the stock of productID to available. Marks of operations in
// flight are kept, so that they still are not applied twice.
func (l *ledger) setStock(ctx context.Context, productID string, available int64) error {
	unlock := l.locks.Lock(stockKey(productID))
	defer unlock()
	_, err := statestore.Update(ctx, l.dapr, l.store, stockKey(productID), func(cur []byte) ([]byte, error) {
		s := stockRecord{ProductID: productID}
		if cur != nil {
			var err error
			if s, err = decodeStock(cur); err != nil {
				return nil, err
			}
		}
		s.Available = available
		return json.Marshal(s)
	})
	if errors.Is(err, statestore.ErrConflict) {
		return httpx.Errorf(httpx.EConflict, "the stock of %q is being changed by another request; try again", productID)
	}
	return err
}

func pathProductID(r *http.Request) (string, error) {
	id := mux.Vars(r)["productID"]
	if err := ids.Check("product id", id); err != nil {
		return "", httpx.Errorf(httpx.EInvalid, "%v", err)
	}
	return id, nil
}

// handleGetStock answers GET /stock/{productID}.
func handleGetStock(log *slog.Logger, led *ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathProductID(r)
		var (
			v     stockView
			found bool
		)
		if err == nil {
			v, found, err = led.stock(r.Context(), id)
		}
		if err == nil && !found {
			err = httpx.Errorf(httpx.ENotFound, "no stock was ever set for product %q", id)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}

// handlePutStock answers PUT /stock/{productID} {"available": n}: it sets the
// number of units on hand.
func handlePutStock(log *slog.Logger, led *ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathProductID(r)
		var body stockBody
		if err == nil {
			err = httpx.DecodeJSON(w, r, &body, httpx.DefaultMaxBody)
		}
		if err == nil {
			switch {
			case body.Available == nil:
				err = httpx.Errorf(httpx.EInvalid, "available is required: the number of units on hand")
			case *body.Available < 0:
				err = httpx.Errorf(httpx.EInvalid, "available must be zero or more, not %d", *body.Available)
			case *body.Available > maxAvailable:
				err = httpx.Errorf(httpx.EInvalid, "available %d is over the limit of %d", *body.Available, int64(maxAvailable))
			}
		}
		if err == nil {
			err = led.setStock(r.Context(), id, *body.Available)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, stockView{ProductID: id, Available: *body.Available})
	}
}
