package tests

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/httpx"
)

// The shop's API as a client sees it, and helpers that set up and read the state
// a test needs. Every test makes its own products and customers, so tests never
// see each other's data.

type product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	Currency   string `json:"currency"`
}

type orderLine struct {
	ProductID  string `json:"productId"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"priceCents,omitempty"`
}

type historyEntry struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

type order struct {
	ID         string         `json:"id"`
	CustomerID string         `json:"customerId"`
	Status     string         `json:"status"`
	Reason     string         `json:"reason"`
	Lines      []orderLine    `json:"lines"`
	TotalCents int64          `json:"totalCents"`
	Currency   string         `json:"currency"`
	History    []historyEntry `json:"history"`
}

type placeRequest struct {
	CustomerID string      `json:"customerId"`
	Items      []orderLine `json:"items"`
}

// uniq returns prefix with a random suffix.
func uniq(prefix string) string { return prefix + "-" + httpx.NewID()[:10] }

// newProduct creates a product priced priceCents EUR with available units in stock.
func newProduct(t *testing.T, priceCents, available int64) product {
	t.Helper()
	p := product{ID: uniq("p"), Name: "test product", PriceCents: priceCents, Currency: "EUR"}
	r := call(t, http.MethodPost, "/api/catalog/products", mustJSON(t, p), nil)
	require.Equal(t, http.StatusCreated, r.status, "create product: %s", r.body)
	setStock(t, p.ID, available)
	return p
}

func setStock(t *testing.T, productID string, available int64) {
	t.Helper()
	r := call(t, http.MethodPut, "/api/inventory/stock/"+productID, mustJSON(t, map[string]int64{"available": available}), nil)
	require.Equal(t, http.StatusOK, r.status, "set stock: %s", r.body)
}

func stock(t *testing.T, productID string) int64 {
	t.Helper()
	r := call(t, http.MethodGet, "/api/inventory/stock/"+productID, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "get stock: %s", r.body)
	var s struct {
		Available int64 `json:"available"`
	}
	r.json(t, &s)
	return s.Available
}

// newCustomer creates a customer account holding balanceCents.
func newCustomer(t *testing.T, balanceCents int64) string {
	t.Helper()
	id := uniq("c")
	setBalance(t, id, balanceCents)
	return id
}

func setBalance(t *testing.T, customerID string, balanceCents int64) {
	t.Helper()
	r := call(t, http.MethodPut, "/api/payments/accounts/"+customerID, mustJSON(t, map[string]int64{"balanceCents": balanceCents}), nil)
	require.Equal(t, http.StatusOK, r.status, "set balance: %s", r.body)
}

func balance(t *testing.T, customerID string) int64 {
	t.Helper()
	r := call(t, http.MethodGet, "/api/payments/accounts/"+customerID, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "get balance: %s", r.body)
	var a struct {
		BalanceCents int64 `json:"balanceCents"`
	}
	r.json(t, &a)
	return a.BalanceCents
}

// place posts an order with a fresh Idempotency-Key and requires a 202.
func place(t *testing.T, customerID string, items ...orderLine) order {
	t.Helper()
	r := placeWithKey(t, uniq("key"), customerID, items...)
	require.Equal(t, http.StatusAccepted, r.status, "place order: %s", r.body)
	var o order
	r.json(t, &o)
	return o
}

// placeWithKey places an order under key as a well-behaved client does: a
// refusal at capacity (503 with Retry-After) is retried with the same key after
// the time it asks for, so that a burst of concurrent orders on a slow machine
// tests what it means to and not the service's admission control.
func placeWithKey(t *testing.T, key, customerID string, items ...orderLine) response {
	t.Helper()
	body := mustJSON(t, placeRequest{CustomerID: customerID, Items: items})
	for attempt := 1; ; attempt++ {
		r := call(t, http.MethodPost, "/api/orders", body, map[string]string{"Idempotency-Key": key})
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		if r.status != http.StatusServiceUnavailable || err != nil || attempt == 30 {
			return r
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

func getOrder(t *testing.T, id string) order {
	t.Helper()
	r := call(t, http.MethodGet, "/api/orders/"+id, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "get order: %s", r.body)
	var o order
	r.json(t, &o)
	return o
}

// settled waits until the order is confirmed or cancelled and returns it.
func settled(t *testing.T, id string) order {
	t.Helper()
	var o order
	eventually(t, 60*time.Second, func() bool {
		o = getOrder(t, id)
		return o.Status == "confirmed" || o.Status == "cancelled"
	}, "order %s did not settle: %+v\n%s", id, o, logsOnFailure())
	return o
}

// ordersOf lists every order of the customer, newest first, following the
// answer's next link page by page as a client does.
func ordersOf(t *testing.T, customerID string) []order {
	t.Helper()
	var all []order
	path := "/api/orders?customerId=" + customerID + "&limit=25"
	for page := 1; path != ""; page++ {
		r := call(t, http.MethodGet, path, nil, nil)
		require.Equal(t, http.StatusOK, r.status, "list orders, page %d (%s): %s", page, path, r.body)
		var l struct {
			Orders []order `json:"orders"`
			Next   string  `json:"next"`
		}
		r.json(t, &l)
		all = append(all, l.Orders...)
		path = l.Next
	}
	return all
}

type notification struct {
	OrderID string `json:"orderId"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
}

func notificationsOf(t *testing.T, customerID string) []notification {
	t.Helper()
	r := call(t, http.MethodGet, "/api/notifications?customerId="+customerID, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "list notifications: %s", r.body)
	var l struct {
		Notifications []notification `json:"notifications"`
	}
	r.json(t, &l)
	return l.Notifications
}

func deadLetters(t *testing.T, appID string) int {
	t.Helper()
	r := call(t, http.MethodGet, "/api/"+appID+"/deadletters", nil, nil)
	require.Equal(t, http.StatusOK, r.status, "dead letters: %s", r.body)
	var d struct {
		Count int `json:"count"`
	}
	r.json(t, &d)
	return d.Count
}

// logsOnFailure is the recent output of the pipeline's apps, for a failure message.
func logsOnFailure() string {
	var s string
	for _, app := range []string{"orders", "inventory", "payments"} {
		s += fmt.Sprintf("%s\n", sys.Logs(app, 15))
	}
	return s
}
