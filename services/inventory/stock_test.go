package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/keylock"
)

var _ sidecar = (*daprfake.Client)(nil)

const (
	testStore = "inventory-test"
	jsonCT    = "application/json"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testLedger(fake sidecar) *ledger {
	return newLedger(quiet(), fake, testStore, keylock.New(16))
}

// setup returns a server on a fake store where the given products have stock.
func setup(t *testing.T, stock map[string]int64) (http.Handler, *daprfake.Client) {
	t.Helper()
	fake := &daprfake.Client{}
	led := testLedger(fake)
	for id, n := range stock {
		require.NoError(t, led.stock.Set(context.Background(), id, n))
	}
	return newServer(quiet(), "inventory-1", "inventory", led), fake
}

func do(t *testing.T, h http.Handler, method, path, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestStockAPI(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(*daprfake.Client)
		method, path string
		ctype, body  string
		status       int
		want         string
		detail       string
	}{
		{name: "health", method: "GET", path: "/healthz", status: 200},
		{name: "get", method: "GET", path: "/stock/apple", status: 200, want: `{"productId":"apple","available":5}`},
		{name: "get never set", method: "GET", path: "/stock/pear", status: 404, detail: `no stock was ever set for product "pear"`},
		{name: "get bad id", method: "GET", path: "/stock/a%20b", status: 400, detail: `product id "a b" may only hold`},
		{name: "get long id", method: "GET", path: "/stock/" + strings.Repeat("x", 65), status: 400, detail: "the limit is 64"},
		{name: "get: store down", setup: daprfake.FailOn("GetState"), method: "GET", path: "/stock/apple", status: 500, detail: "internal error"},
		{name: "get: corrupt record", setup: func(f *daprfake.Client) { f.Put(testStore, stockKey("apple"), []byte("{")) },
			method: "GET", path: "/stock/apple", status: 500, detail: "internal error"},
		{name: "post not allowed", method: "POST", path: "/stock/apple", ctype: jsonCT, body: `{"available":1}`, status: 405, detail: "not allowed"},

		{name: "put creates", method: "PUT", path: "/stock/pear", ctype: jsonCT, body: `{"available":7}`, status: 200,
			want: `{"productId":"pear","available":7}`},
		{name: "put replaces", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":0}`, status: 200,
			want: `{"productId":"apple","available":0}`},
		{name: "put negative", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":-1}`, status: 400,
			detail: "available must be zero or more, not -1"},
		{name: "put huge", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":1000000000001}`, status: 400,
			detail: "over the limit"},
		{name: "put missing", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{}`, status: 400, detail: "available is required"},
		{name: "put null", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":null}`, status: 400, detail: "available is required"},
		{name: "put fraction", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":1.5}`, status: 400, detail: `field "available"`},
		{name: "put string", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":"3"}`, status: 400, detail: `field "available"`},
		{name: "put unknown field", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":3,"reserved":1}`, status: 400,
			detail: `unknown field "reserved"`},
		{name: "put malformed", method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":`, status: 400, detail: "malformed JSON"},
		{name: "put not JSON", method: "PUT", path: "/stock/apple", ctype: "text/plain", body: `{"available":3}`, status: 415, detail: "Content-Type"},
		{name: "put oversized", method: "PUT", path: "/stock/apple", ctype: jsonCT,
			body: `{"available":3,"x":"` + strings.Repeat("a", httpx.DefaultMaxBody) + `"}`, status: 413, detail: "limit"},
		{name: "put bad id", method: "PUT", path: "/stock/bad%21", ctype: jsonCT, body: `{"available":3}`, status: 400, detail: "may only hold"},
		{name: "put: store down", setup: daprfake.FailOn("SaveState"), method: "PUT", path: "/stock/apple", ctype: jsonCT, body: `{"available":3}`,
			status: 500, detail: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, map[string]int64{"apple": 5})
			if tt.setup != nil {
				tt.setup(fake)
			}
			before := fake.Dump(testStore)
			rec := do(t, srv, tt.method, tt.path, tt.ctype, tt.body)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status >= 400 {
				assert.Equal(t, httpx.ProblemContentType, rec.Header().Get("Content-Type"))
				var p httpx.Problem
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				assert.Contains(t, p.Detail, tt.detail)
				assert.Equal(t, before, fake.Dump(testStore), "a refused request changes nothing")
				return
			}
			if tt.want != "" {
				assert.JSONEq(t, tt.want, rec.Body.String())
				assert.JSONEq(t, tt.want, do(t, srv, "GET", tt.path, "", "").Body.String(), "a read sees the write")
			}
		})
	}
}

// TestPutKeepsMarks sets the stock while a reservation's mark is still on the
// record: the mark must survive, or a retry of that reservation would take the
// stock a second time.
func TestPutKeepsMarks(t *testing.T) {
	srv, fake := setup(t, nil)
	fake.Put(testStore, stockKey("apple"), stockRecord{ProductID: "apple", Available: 3, Applied: map[string]int64{"reserve/o1": -2}})
	require.Equal(t, 200, do(t, srv, "PUT", "/stock/apple", jsonCT, `{"available":10}`).Code)
	assert.Equal(t, stockRecord{ProductID: "apple", Available: 10, Applied: map[string]int64{"reserve/o1": -2}}, stockOf(t, fake, "apple"))
}

func stockOf(t *testing.T, fake *daprfake.Client, productID string) stockRecord {
	t.Helper()
	data, ok := fake.Value(testStore, stockKey(productID))
	require.True(t, ok, "no stock for %s", productID)
	var s stockRecord
	require.NoError(t, json.Unmarshal(data, &s))
	return s
}
