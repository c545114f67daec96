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
	testStore = "payments-test"
	jsonCT    = "application/json"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testBank(fake sidecar) *bank {
	return newBank(quiet(), fake, testStore, keylock.New(16))
}

// setup returns a server on a fake store with the given accounts.
func setup(t *testing.T, balances map[string]int64) (http.Handler, *daprfake.Client) {
	t.Helper()
	fake := &daprfake.Client{}
	b := testBank(fake)
	for id, n := range balances {
		require.NoError(t, b.accounts.Set(context.Background(), id, n))
	}
	return newServer(quiet(), "payments-1", "payments", b), fake
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

func TestAccountAPI(t *testing.T) {
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
		{name: "get", method: "GET", path: "/accounts/c1", status: 200, want: `{"customerId":"c1","balanceCents":1000}`},
		{name: "get unknown", method: "GET", path: "/accounts/c2", status: 404, detail: `customer "c2" has no account`},
		{name: "get bad id", method: "GET", path: "/accounts/c%3F1", status: 400, detail: `customer id "c?1" may only hold`},
		{name: "get long id", method: "GET", path: "/accounts/" + strings.Repeat("c", 65), status: 400, detail: "the limit is 64"},
		{name: "get: store down", setup: daprfake.FailOn("GetState"), method: "GET", path: "/accounts/c1", status: 500, detail: "internal error"},
		{name: "delete not allowed", method: "DELETE", path: "/accounts/c1", status: 405, detail: "not allowed"},

		{name: "put opens", method: "PUT", path: "/accounts/c2", ctype: jsonCT, body: `{"balanceCents":250}`, status: 200,
			want: `{"customerId":"c2","balanceCents":250}`},
		{name: "put sets", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balanceCents":0}`, status: 200,
			want: `{"customerId":"c1","balanceCents":0}`},
		{name: "put negative", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balanceCents":-1}`, status: 400,
			detail: "balanceCents must be zero or more, not -1"},
		{name: "put huge", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balanceCents":1000000000001}`, status: 400, detail: "over the limit"},
		{name: "put missing", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{}`, status: 400, detail: "balanceCents is required"},
		{name: "put null", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balanceCents":null}`, status: 400, detail: "balanceCents is required"},
		{name: "put fraction", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balanceCents":9.99}`, status: 400, detail: `field "balanceCents"`},
		{name: "put unknown field", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balance":5}`, status: 400, detail: `unknown field "balance"`},
		{name: "put malformed", method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balanceCents":1`, status: 400, detail: "malformed JSON"},
		{name: "put not JSON", method: "PUT", path: "/accounts/c1", ctype: "text/csv", body: `1`, status: 415, detail: "Content-Type"},
		{name: "put oversized", method: "PUT", path: "/accounts/c1", ctype: jsonCT,
			body: `{"balanceCents":1,"x":"` + strings.Repeat("a", httpx.DefaultMaxBody) + `"}`, status: 413, detail: "limit"},
		{name: "put bad id", method: "PUT", path: "/accounts/%20", ctype: jsonCT, body: `{"balanceCents":1}`, status: 400, detail: "may only hold"},
		{name: "put: store down", setup: daprfake.FailOn("SaveState"), method: "PUT", path: "/accounts/c1", ctype: jsonCT, body: `{"balanceCents":1}`,
			status: 500, detail: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, map[string]int64{"c1": 1000})
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

func balanceOf(t *testing.T, fake *daprfake.Client, customerID string) int64 {
	t.Helper()
	data, ok := fake.Value(testStore, accountKey(customerID))
	require.True(t, ok, "no account for %s", customerID)
	var a account
	require.NoError(t, json.Unmarshal(data, &a))
	// A mark may outlive its operation only once the operation is recorded: a
	// charge as succeeded (or refunded since), a refund as refunded.
	for op := range a.Pending {
		kind, orderID, _ := strings.Cut(op, "/")
		data, ok := fake.Value(testStore, chargeKey(orderID))
		var c charge
		ok = ok && json.Unmarshal(data, &c) == nil
		recorded := ok && c.Status == statusRefunded
		if kind == "charge" {
			recorded = recorded || ok && c.Status == statusSucceeded
		}
		assert.True(t, recorded, "mark %s left on the account of %s, whose operation is not recorded (%q)", op, customerID, c.Status)
	}
	return a.BalanceCents
}
