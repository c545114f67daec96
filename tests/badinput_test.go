package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInput sends every endpoint the requests a careless or hostile client
// would, and checks that each gets a 4xx problem+json answer saying what is wrong,
// that nothing changed, and that no service went down.
func TestBadInput(t *testing.T) {
	p := newProduct(t, 400, 7)
	customer := newCustomer(t, 5_000)
	big := `{"customerId":"` + strings.Repeat("x", 100<<10) + `"}`
	order := func(body string) []byte { return []byte(body) }
	valid := `{"customerId":"` + customer + `","items":[{"productId":"` + p.ID + `","quantity":1}]}`
	jsonCT := map[string]string{"Idempotency-Key": uniq("key")}

	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		header map[string]string
		status int
	}{
		// orders
		{"order: malformed JSON", http.MethodPost, "/api/orders", order(`{"customerId":`), jsonCT, 400},
		{"order: not an object", http.MethodPost, "/api/orders", order(`[1,2]`), jsonCT, 400},
		{"order: unknown field", http.MethodPost, "/api/orders", order(strings.Replace(valid, `"items"`, `"coupon":"FREE","items"`, 1)), jsonCT, 400},
		{"order: missing customer", http.MethodPost, "/api/orders", order(`{"items":[{"productId":"` + p.ID + `","quantity":1}]}`), jsonCT, 400},
		{"order: missing items", http.MethodPost, "/api/orders", order(`{"customerId":"` + customer + `"}`), jsonCT, 400},
		{"order: zero quantity", http.MethodPost, "/api/orders", order(strings.Replace(valid, `"quantity":1`, `"quantity":0`, 1)), jsonCT, 400},
		{"order: negative quantity", http.MethodPost, "/api/orders", order(strings.Replace(valid, `"quantity":1`, `"quantity":-3`, 1)), jsonCT, 400},
		{"order: quantity not a number", http.MethodPost, "/api/orders", order(strings.Replace(valid, `"quantity":1`, `"quantity":"one"`, 1)), jsonCT, 400},
		{"order: unknown product", http.MethodPost, "/api/orders", order(strings.Replace(valid, p.ID, "no-such-product", 1)), jsonCT, 422},
		{"order: oversized body", http.MethodPost, "/api/orders", order(big), jsonCT, 413},
		{"order: wrong content type", http.MethodPost, "/api/orders", order(valid), map[string]string{"Idempotency-Key": uniq("key"), "Content-Type": "text/plain"}, 415},
		{"order: missing Idempotency-Key", http.MethodPost, "/api/orders", order(valid), nil, 428},
		{"order: unknown id", http.MethodGet, "/api/orders/0123456789abcdef0123456789abcdef", nil, nil, 404},
		{"order: bad id", http.MethodGet, "/api/orders/%20bad%20id", nil, nil, 400},
		{"orders: list without customer", http.MethodGet, "/api/orders", nil, nil, 400},
		{"orders: list with a limit of 0", http.MethodGet, "/api/orders?customerId=" + customer + "&limit=0", nil, nil, 400},
		{"orders: list with a limit over 100", http.MethodGet, "/api/orders?customerId=" + customer + "&limit=500", nil, nil, 400},
		{"orders: list before no position", http.MethodGet, "/api/orders?customerId=" + customer + "&before=latest", nil, nil, 400},
		// catalog
		{"product: malformed JSON", http.MethodPost, "/api/catalog/products", order(`{"id":`), nil, 400},
		{"product: negative price", http.MethodPost, "/api/catalog/products", order(`{"id":"` + uniq("p") + `","name":"x","priceCents":-1,"currency":"EUR"}`), nil, 400},
		{"product: bad currency", http.MethodPost, "/api/catalog/products", order(`{"id":"` + uniq("p") + `","name":"x","priceCents":1,"currency":"euro"}`), nil, 400},
		{"product: missing name", http.MethodPost, "/api/catalog/products", order(`{"id":"` + uniq("p") + `","priceCents":1,"currency":"EUR"}`), nil, 400},
		{"product: unknown field", http.MethodPost, "/api/catalog/products", order(`{"id":"` + uniq("p") + `","name":"x","priceCents":1,"currency":"EUR","color":"red"}`), nil, 400},
		{"product: exists", http.MethodPost, "/api/catalog/products", order(`{"id":"` + p.ID + `","name":"x","priceCents":1,"currency":"EUR"}`), nil, 409},
		{"product: oversized", http.MethodPost, "/api/catalog/products", order(big), nil, 413},
		{"product: unknown", http.MethodGet, "/api/catalog/products/no-such-product", nil, nil, 404},
		{"products: list with a limit of 0", http.MethodGet, "/api/catalog/products?limit=0", nil, nil, 400},
		{"products: list after a malformed id", http.MethodGet, "/api/catalog/products?after=a%2Fb", nil, nil, 400},
		{"product: update with zero price", http.MethodPut, "/api/catalog/products/" + p.ID, order(`{"name":"x","priceCents":0,"currency":"EUR"}`), nil, 400},
		// inventory
		{"stock: negative", http.MethodPut, "/api/inventory/stock/" + p.ID, order(`{"available":-1}`), nil, 400},
		{"stock: malformed", http.MethodPut, "/api/inventory/stock/" + p.ID, order(`{"available":`), nil, 400},
		{"stock: unknown field", http.MethodPut, "/api/inventory/stock/" + p.ID, order(`{"available":1,"reserved":2}`), nil, 400},
		{"stock: unknown product", http.MethodGet, "/api/inventory/stock/no-such-product", nil, nil, 404},
		{"stock: oversized", http.MethodPut, "/api/inventory/stock/" + p.ID, order(big), nil, 413},
		{"reservations: no orderIds", http.MethodGet, "/api/inventory/reservations", nil, nil, 400},
		{"reservations: a malformed id", http.MethodGet, "/api/inventory/reservations?orderIds=a,b%2Fc", nil, nil, 400},
		{"reservations: over 100 ids", http.MethodGet, "/api/inventory/reservations?orderIds=" + manyIDs(101), nil, nil, 400},
		// payments
		{"account: negative balance", http.MethodPut, "/api/payments/accounts/" + customer, order(`{"balanceCents":-5}`), nil, 400},
		{"account: malformed", http.MethodPut, "/api/payments/accounts/" + customer, order(`nope`), nil, 400},
		{"account: wrong content type", http.MethodPut, "/api/payments/accounts/" + customer, order(`{"balanceCents":5}`), map[string]string{"Content-Type": "application/xml"}, 415},
		{"account: unknown", http.MethodGet, "/api/payments/accounts/no-such-customer", nil, nil, 404},
		{"charges: an empty id", http.MethodGet, "/api/payments/charges?orderIds=a,,b", nil, nil, 400},
		// notifications
		{"notifications: missing customer", http.MethodGet, "/api/notifications", nil, nil, 400},
		{"notified: no orderIds", http.MethodGet, "/api/notifications/notified?orderIds=", nil, nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, tt.method, tt.path, tt.body, tt.header)
			p := requireProblem(t, r, tt.status)
			path, _, _ := strings.Cut(tt.path, "?")
			assert.Equal(t, path, p.Instance, "the problem names the path asked for")
		})
	}

	assert.Equal(t, int64(7), stock(t, p.ID), "stock unchanged")
	assert.Equal(t, int64(5_000), balance(t, customer), "balance unchanged")
	assert.Empty(t, ordersOf(t, customer), "no order created")
	r := call(t, http.MethodGet, "/api/catalog/products/"+p.ID, nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	var got product
	r.json(t, &got)
	assert.Equal(t, p, got, "product unchanged")
	assert.Empty(t, sys.Exited(), "no process went down")
}

// manyIDs is n distinct order ids, comma-separated.
func manyIDs(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("o%d", i)
	}
	return strings.Join(ids, ",")
}
