package main

import (
	"log/slog"

	"github.com/daprshop/daprshop/internal/amounts"
	"github.com/daprshop/daprshop/internal/keylock"
)

// maxAvailable bounds the stock of one product, so that releases added to it can
// never overflow.
const maxAvailable = 1_000_000_000_000

func stockKey(productID string) string { return "stock-" + productID }

// stockRecord is the value at a product's stock key and, without its marks, the
// answer of GET and PUT /stock/{productID}.
type stockRecord struct {
	ProductID string `json:"productId"`
	Available int64  `json:"available"`
	// Applied holds, by operation ("reserve/<orderID>" or "release/<orderID>"),
	// the change that operation made to Available while its outcome is not yet
	// recorded in the order's reservation. Because the mark is written in the same
	// key as the change, a retried operation can see that it already happened and
	// never applies it twice; once the outcome is recorded the mark goes with the
	// next change of the stock.
	Applied map[string]int64 `json:"applied,omitempty"`
}

// stockBody is the body of PUT /stock/{productID}. Available is a pointer so that
// a missing or null value is refused rather than read as zero.
type stockBody struct {
	Available *int64 `json:"available"`
}

// stockKind is how the inventory keeps and serves the stock of each product.
var stockKind = amounts.Kind[stockRecord, stockBody]{
	Key: stockKey,
	Fields: func(s *stockRecord) (*string, *int64, *map[string]int64) {
		return &s.ProductID, &s.Available, &s.Applied
	},
	Requested: func(b stockBody) *int64 { return b.Available },
	PathVar:   "productID",
	IDName:    "product id",
	Field:     "available",
	Means:     "the number of units on hand",
	Max:       maxAvailable,
	NotFound:  "no stock was ever set for product %q",
	Conflict:  "the stock of %q is being changed by another request; try again",
	Missing:   errUnknownProduct,
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
	stock *amounts.Store[stockRecord, stockBody]
}

func newLedger(log *slog.Logger, dapr sidecar, store string, locks *keylock.Locks) *ledger {
	return &ledger{log: log, dapr: dapr, store: store, locks: locks,
		stock: amounts.New(stockKind, dapr, store, locks)}
}
