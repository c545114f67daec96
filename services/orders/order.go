package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
)

// Limits on a new order.
const (
	maxIDLen       = 64
	maxItems       = 50
	maxQuantity    = 1000
	maxIdemKeyLen  = 128
	orderIDHexSize = 32
)

// order is an order as it is stored and as the API shows it.
type order struct {
	ID         string        `json:"id"`
	CustomerID string        `json:"customerId"`
	Status     string        `json:"status"`
	Reason     string        `json:"reason"`
	Lines      []events.Line `json:"lines"`
	TotalCents int64         `json:"totalCents"`
	Currency   string        `json:"currency"`
	CreatedAt  time.Time     `json:"createdAt"`
	History    []change      `json:"history"`
}

// change is one step of an order's status history.
type change struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// event returns the payload of the event that announces the order as it stands.
func (o order) event() events.Order {
	return events.Order{
		OrderID:    o.ID,
		CustomerID: o.CustomerID,
		Status:     o.Status,
		Reason:     o.Reason,
		Lines:      o.Lines,
		TotalCents: o.TotalCents,
		Currency:   o.Currency,
	}
}

// terminal reports whether the order can no longer change.
func (o order) terminal() bool {
	return o.Status == events.StatusConfirmed || o.Status == events.StatusCancelled
}

// placeRequest is the body of POST /orders.
type placeRequest struct {
	CustomerID string `json:"customerId"`
	Items      []item `json:"items"`
}

// item is one product and quantity the customer asks for.
type item struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// validate checks every rule on a new order and names the first one broken.
func (p placeRequest) validate() error {
	if p.CustomerID == "" {
		return httpx.Errorf(httpx.EInvalid, "customerId is required")
	}
	if !validName(p.CustomerID) {
		return httpx.Errorf(httpx.EInvalid, "customerId must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_' or '-'", maxIDLen)
	}
	if len(p.Items) == 0 || len(p.Items) > maxItems {
		return httpx.Errorf(httpx.EInvalid, "items must hold 1 to %d lines, not %d", maxItems, len(p.Items))
	}
	seen := make(map[string]bool, len(p.Items))
	for i, it := range p.Items {
		if it.ProductID == "" {
			return httpx.Errorf(httpx.EInvalid, "items[%d].productId is required", i)
		}
		if !validName(it.ProductID) {
			return httpx.Errorf(httpx.EInvalid, "items[%d].productId must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_' or '-'", i, maxIDLen)
		}
		if it.Quantity < 1 || it.Quantity > maxQuantity {
			return httpx.Errorf(httpx.EInvalid, "items[%d].quantity must be between 1 and %d, not %d", i, maxQuantity, it.Quantity)
		}
		if seen[it.ProductID] {
			return httpx.Errorf(httpx.EInvalid, "product %s is listed twice; put the whole quantity on one line", it.ProductID)
		}
		seen[it.ProductID] = true
	}
	return nil
}

// hash identifies the request's content, so that a retry under the same
// Idempotency-Key can be told from another order under a reused key. It hashes
// the decoded request, not the raw bytes, so that spacing does not count.
func (p placeRequest) hash() string {
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// validName reports whether s is 1 to 64 characters of [A-Za-z0-9._-], the
// alphabet of customer and product ids.
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validOrderID reports whether s has the shape of the ids this service makes:
// 32 lowercase hex digits.
func validOrderID(s string) bool {
	if len(s) != orderIDHexSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validIdempotencyKey reports whether s is 1 to 128 printable ASCII characters.
func validIdempotencyKey(s string) bool {
	if len(s) == 0 || len(s) > maxIdemKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Keys in the orders store.
func orderKey(orderID string) string       { return "order-" + orderID }
func customerKey(customerID string) string { return "customer-" + customerID }

// pageKey is the key of page n (from 1) of a customer's index. A customer id
// cannot hold ':', so no customer's key is another's page.
func pageKey(customerID string, n int) string {
	return customerKey(customerID) + ":page-" + strconv.Itoa(n)
}

// claimKey is the key under which an Idempotency-Key is claimed. The key is
// hashed because the client chooses it: hashing keeps the store key short and
// free of characters the store may treat specially.
func claimKey(idempotencyKey string) string {
	sum := sha256.Sum256([]byte(idempotencyKey))
	return "idempotency-" + hex.EncodeToString(sum[:])
}
