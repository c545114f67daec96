package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
)

const (
	appleAndPear = `{"customerId":"c1","items":[{"productId":"apple","quantity":2},{"productId":"pear","quantity":1}]}`
	justPear     = `{"customerId":"c1","items":[{"productId":"pear","quantity":3}]}`
)

// itemsJSON returns n distinct items.
func itemsJSON(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"productId":"p%d","quantity":1}`, i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// assertOrderTx checks that ops is exactly one stored upsert of o, carrying the
// event type typ and written under etag ("" for a new order), followed by one
// projection of the same key whose value is the event payload.
func assertOrderTx(t *testing.T, ops []client.StateOperation, o order, typ, etag string) {
	t.Helper()
	require.Len(t, ops, 2, "one stored upsert and one projection")
	stored, proj := ops[0], ops[1]

	assert.Equal(t, client.StateOperationTypeUpsert, stored.Type)
	assert.Equal(t, orderKey(o.ID), stored.Item.Key)
	assert.Equal(t, map[string]string{"type": typ, "datacontenttype": "application/json"}, stored.Item.Metadata)
	require.NotNil(t, stored.Item.Options)
	assert.Equal(t, client.StateConcurrencyFirstWrite, stored.Item.Options.Concurrency)
	if etag == "" {
		assert.Nil(t, stored.Item.Etag)
	} else if assert.NotNil(t, stored.Item.Etag) {
		assert.Equal(t, etag, stored.Item.Etag.Value)
	}
	var saved order
	require.NoError(t, json.Unmarshal(stored.Item.Value, &saved))
	assert.Equal(t, o, saved)

	assert.Equal(t, client.StateOperationTypeUpsert, proj.Type)
	assert.Equal(t, stored.Item.Key, proj.Item.Key)
	assert.Equal(t, map[string]string{"outbox.projection": "true"}, proj.Item.Metadata)
	assert.Nil(t, proj.Item.Etag)
	var ev events.Order
	dec := json.NewDecoder(bytes.NewReader(proj.Item.Value))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&ev))
	assert.Equal(t, o.event(), ev)
}

func TestPlaceOrder(t *testing.T) {
	e := newTestEnv(t)
	rec := e.post("key-1", appleAndPear)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	o := decodeBody[order](t, rec)

	assert.True(t, validOrderID(o.ID), o.ID)
	assert.Equal(t, "/"+o.ID, rec.Header().Get("Location"))
	assert.Equal(t, "c1", o.CustomerID)
	assert.Equal(t, events.StatusPending, o.Status)
	assert.Empty(t, o.Reason)
	assert.Equal(t, []events.Line{
		{ProductID: "apple", Quantity: 2, PriceCents: 120},
		{ProductID: "pear", Quantity: 1, PriceCents: 95},
	}, o.Lines)
	assert.Equal(t, int64(335), o.TotalCents)
	assert.Equal(t, "EUR", o.Currency)
	require.Len(t, o.History, 1)
	assert.Equal(t, events.StatusPending, o.History[0].Status)
	assert.Equal(t, o.CreatedAt, o.History[0].At)

	// The JSON has the documented fields, reason included even when empty.
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	for _, f := range []string{"id", "customerId", "status", "reason", "lines", "totalCents", "currency", "createdAt", "history"} {
		assert.Contains(t, raw, f)
	}

	assert.Equal(t, []string{"catalog GET products?ids=apple,pear"}, e.fake.calls(), "priced with one call")
	txs := e.fake.transactions()
	require.Len(t, txs, 1)
	assertOrderTx(t, txs[0], o, events.OrderPlaced, "")

	index, ok := e.fake.value(customerKey("c1"))
	require.True(t, ok)
	assert.JSONEq(t, fmt.Sprintf(`{"ids":[%q],"pages":0}`, o.ID), string(index))
	_, ok = e.fake.value(claimKey("key-1"))
	assert.True(t, ok, "the idempotency key is claimed")

	got := e.do(http.MethodGet, "/"+o.ID, "", nil)
	require.Equal(t, http.StatusOK, got.Code)
	assert.Equal(t, o, decodeBody[order](t, got))
}

func TestPlaceOrderRejectsBadInput(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json"}, headerIdempotencyKey: {"k"}}
	withKey := func(key string) http.Header {
		return http.Header{"Content-Type": {"application/json"}, headerIdempotencyKey: {key}}
	}
	tests := []struct {
		name   string
		header http.Header
		body   string
		status int
		detail string
	}{
		{"no idempotency key", http.Header{"Content-Type": {"application/json"}}, appleAndPear, http.StatusPreconditionRequired, "Idempotency-Key header is required"},
		{"empty idempotency key", withKey(""), appleAndPear, http.StatusBadRequest, "1 to 128 printable"},
		{"idempotency key too long", withKey(strings.Repeat("k", 129)), appleAndPear, http.StatusBadRequest, "1 to 128 printable"},
		{"idempotency key not printable", withKey("a\x01b"), appleAndPear, http.StatusBadRequest, "1 to 128 printable"},
		{"idempotency key not ascii", withKey("clé"), appleAndPear, http.StatusBadRequest, "1 to 128 printable"},
		{"no content type", http.Header{headerIdempotencyKey: {"k"}}, appleAndPear, http.StatusUnsupportedMediaType, "Content-Type"},
		{"wrong content type", http.Header{"Content-Type": {"text/plain"}, headerIdempotencyKey: {"k"}}, appleAndPear, http.StatusUnsupportedMediaType, "Content-Type"},
		{"oversized body", jsonCT, `{"customerId":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, "limit"},
		{"empty body", jsonCT, "", http.StatusBadRequest, "empty"},
		{"malformed json", jsonCT, `{"customerId":`, http.StatusBadRequest, "malformed JSON"},
		{"unknown field", jsonCT, `{"customerId":"c1","items":[],"coupon":"x"}`, http.StatusBadRequest, `unknown field "coupon"`},
		{"not an object", jsonCT, `[1,2]`, http.StatusBadRequest, "must be a JSON object"},
		{"two objects", jsonCT, appleAndPear + appleAndPear, http.StatusBadRequest, "single JSON object"},
		{"wrong type", jsonCT, `{"customerId":1}`, http.StatusBadRequest, "customerId"},
		{"missing customer", jsonCT, `{"items":[{"productId":"apple","quantity":1}]}`, http.StatusBadRequest, "customerId is required"},
		{"customer with a slash", jsonCT, `{"customerId":"c/1","items":[{"productId":"apple","quantity":1}]}`, http.StatusBadRequest, "customerId must be"},
		{"customer too long", jsonCT, `{"customerId":"` + strings.Repeat("c", 65) + `","items":[{"productId":"apple","quantity":1}]}`, http.StatusBadRequest, "customerId must be"},
		{"no items", jsonCT, `{"customerId":"c1"}`, http.StatusBadRequest, "items must hold 1 to 50 lines, not 0"},
		{"empty items", jsonCT, `{"customerId":"c1","items":[]}`, http.StatusBadRequest, "items must hold 1 to 50 lines, not 0"},
		{"too many items", jsonCT, `{"customerId":"c1","items":` + itemsJSON(51) + `}`, http.StatusBadRequest, "items must hold 1 to 50 lines, not 51"},
		{"missing product", jsonCT, `{"customerId":"c1","items":[{"quantity":1}]}`, http.StatusBadRequest, "items[0].productId is required"},
		{"null item", jsonCT, `{"customerId":"c1","items":[null]}`, http.StatusBadRequest, "items[0].productId is required"},
		{"product with a space", jsonCT, `{"customerId":"c1","items":[{"productId":"a b","quantity":1}]}`, http.StatusBadRequest, "items[0].productId must be"},
		{"product too long", jsonCT, `{"customerId":"c1","items":[{"productId":"` + strings.Repeat("p", 65) + `","quantity":1}]}`, http.StatusBadRequest, "items[0].productId must be"},
		{"zero quantity", jsonCT, `{"customerId":"c1","items":[{"productId":"apple","quantity":0}]}`, http.StatusBadRequest, "items[0].quantity must be between 1 and 1000, not 0"},
		{"negative quantity", jsonCT, `{"customerId":"c1","items":[{"productId":"apple","quantity":-1}]}`, http.StatusBadRequest, "items[0].quantity"},
		{"quantity over the limit", jsonCT, `{"customerId":"c1","items":[{"productId":"apple","quantity":1001}]}`, http.StatusBadRequest, "items[0].quantity must be between 1 and 1000, not 1001"},
		{"fractional quantity", jsonCT, `{"customerId":"c1","items":[{"productId":"apple","quantity":1.5}]}`, http.StatusBadRequest, "quantity"},
		{"product twice", jsonCT, `{"customerId":"c1","items":[{"productId":"apple","quantity":1},{"productId":"pear","quantity":1},{"productId":"apple","quantity":2}]}`, http.StatusBadRequest, "product apple is listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/", tt.body, tt.header)
			assertProblem(t, rec, tt.status, tt.detail)
			assert.Empty(t, e.fake.keys(), "nothing written")
			assert.Empty(t, e.fake.transactions(), "no event published")
			assert.Empty(t, e.fake.calls(), "the catalog is not asked")
		})
	}
}

func TestPlaceOrderAcceptsLimits(t *testing.T) {
	tests := []struct {
		name, key, body string
	}{
		{"longest key", strings.Repeat("k", 128), appleAndPear},
		{"key with spaces and punctuation", "order 42 / retry #1", appleAndPear},
		{"largest quantity", "k", `{"customerId":"c1","items":[{"productId":"apple","quantity":1000}]}`},
		{"id alphabet", "k", `{"customerId":"A.z_0-9","items":[{"productId":"apple","quantity":1}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.place(tt.key, tt.body)
		})
	}

	t.Run("fifty items", func(t *testing.T) {
		e := newTestEnv(t)
		for i := 0; i < 50; i++ {
			id := fmt.Sprintf("p%d", i)
			e.fake.products[id] = product{ID: id, PriceCents: 1, Currency: "EUR"}
		}
		o := e.place("k", `{"customerId":"c1","items":`+itemsJSON(50)+`}`)
		assert.Len(t, o.Lines, 50)
		assert.Equal(t, int64(50), o.TotalCents)
	})
}

func TestPlaceOrderCatalogFailures(t *testing.T) {
	down := func(method, _ string) error {
		if method == "InvokeMethod" {
			return errors.New("rpc error: code = Unavailable desc = no healthy instance of catalog")
		}
		return nil
	}
	tests := []struct {
		name   string
		body   string
		setup  func(f *fakeSidecar)
		status int
		detail string
	}{
		{"unknown product", `{"customerId":"c1","items":[{"productId":"apple","quantity":1},{"productId":"kiwi","quantity":1}]}`, nil, http.StatusUnprocessableEntity, "unknown product kiwi"},
		{"mixed currencies", `{"customerId":"c1","items":[{"productId":"apple","quantity":1},{"productId":"banana","quantity":1}]}`, nil, http.StatusUnprocessableEntity, "different currencies (EUR and USD)"},
		{"catalog unreachable", appleAndPear, func(f *fakeSidecar) { f.fail = down }, http.StatusServiceUnavailable, "catalog is unavailable"},
		{"catalog answers garbage", appleAndPear, func(f *fakeSidecar) { f.catalogAnswer = []byte("<html>") }, http.StatusBadGateway, "catalog answered"},
		{"catalog answers an object", appleAndPear, func(f *fakeSidecar) { f.catalogAnswer = []byte(`{"id":"apple"}`) }, http.StatusBadGateway, "catalog answered"},
		{"negative price", appleAndPear, func(f *fakeSidecar) {
			f.products["apple"] = product{ID: "apple", PriceCents: -1, Currency: "EUR"}
		}, http.StatusBadGateway, "no valid price for product apple"},
		{"no currency", appleAndPear, func(f *fakeSidecar) {
			f.products["pear"] = product{ID: "pear", PriceCents: 1}
		}, http.StatusBadGateway, "no valid price for product pear"},
		{"total overflows", `{"customerId":"c1","items":[{"productId":"apple","quantity":1000}]}`, func(f *fakeSidecar) {
			f.products["apple"] = product{ID: "apple", PriceCents: 1 << 60, Currency: "EUR"}
		}, http.StatusUnprocessableEntity, "total is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tt.setup != nil {
				tt.setup(e.fake)
			}
			rec := e.post("k", tt.body)
			assertProblem(t, rec, tt.status, tt.detail)
			assert.Empty(t, e.fake.keys(), "nothing written, not even the claim")
			assert.Empty(t, e.fake.transactions())
		})
	}

	t.Run("a retry after the catalog recovers places the order", func(t *testing.T) {
		cfg := testConfig()
		cfg.claimWait = 5 * time.Second
		e := newInstanceWith(t, newFake(), cfg)
		e.fake.fail = down
		assertProblem(t, e.post("k", appleAndPear), http.StatusServiceUnavailable, "catalog")
		e.fake.fail = nil
		start := time.Now()
		e.place("k", appleAndPear)
		assert.Less(t, time.Since(start), cfg.claimWait, "no claim was left to wait for")
	})
}

func TestPlaceOrderStoreFailures(t *testing.T) {
	// indexRaceThen loses the first write of an index to an ETag race, then
	// fails as next does.
	indexRaceThen := func(next func(string, string) error) func(string, string) error {
		var once sync.Once
		return func(m, key string) error {
			lost := false
			if m == "SaveState" && strings.HasPrefix(key, "customer-") {
				once.Do(func() { lost = true })
			}
			if lost {
				return errETagMismatch
			}
			return next(m, key)
		}
	}
	tests := []struct {
		name      string
		fail      func(string, string) error
		wantKeys  []string // key prefixes that may exist afterwards
		wantIndex bool
	}{
		{"claim cannot be read", failOn("GetBulkState", "idempotency-"), nil, false},
		// The claim, the index and the bucket are saved at once, each on its
		// own: a write that fails leaves the others done, and the step by step
		// placement that follows fails on the same write.
		{"claim cannot be saved", failOn("SaveState", "idempotency-"), []string{"customer-", "open-"}, true},
		{"index cannot be read", failOn("GetBulkState", "customer-"), nil, false},
		{"index cannot be saved", failOn("SaveState", "customer-"), []string{"idempotency-", "open-"}, false},
		{"index changed and cannot be read again", indexRaceThen(failOn("GetState", "customer-")), []string{"idempotency-", "open-"}, false},
		{"the minute cannot be marked", failOn("SaveState", "open-minute-"), []string{"idempotency-", "customer-"}, true},
		{"open orders' bucket cannot be read", failOn("GetState", "open-1"), []string{"idempotency-", "customer-", "open-minute-"}, true},
		{"open orders' bucket cannot be saved", failOn("SaveState", "open-1"), []string{"idempotency-", "customer-", "open-minute-"}, true},
		{"transaction fails", failOn("ExecuteStateTransaction", "order-"), []string{"idempotency-", "customer-", "open-"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.fake.fail = tt.fail
			rec := e.post("k", appleAndPear)
			assertProblem(t, rec, http.StatusInternalServerError, "internal error")
			assert.NotContains(t, rec.Body.String(), "redis", "store details stay in the log")
			for _, k := range e.fake.keys() {
				assert.False(t, strings.HasPrefix(k, "order-"), "no order saved: %s", k)
				allowed := false
				for _, p := range tt.wantKeys {
					allowed = allowed || strings.HasPrefix(k, p)
				}
				assert.True(t, allowed, "unexpected key %s", k)
			}
			if tt.wantIndex {
				// The index is written before the order, so the listing must
				// skip an id whose order was never saved.
				list := e.do(http.MethodGet, "/?customerId=c1", "", nil)
				require.Equal(t, http.StatusOK, list.Code)
				assert.Empty(t, decodeBody[customerOrders](t, list).Orders)
			}

			// Once the store recovers, the client's retry with the same key
			// finishes the order under the id that was claimed for it.
			e.fake.fail = nil
			o := e.place("k", appleAndPear)
			var c claim
			if v, ok := e.fake.value(claimKey("k")); ok {
				require.NoError(t, json.Unmarshal(v, &c))
				assert.Equal(t, c.OrderID, o.ID)
			}
			assert.Len(t, e.fake.transactions(), 1)
			list := e.do(http.MethodGet, "/?customerId=c1", "", nil)
			require.Equal(t, http.StatusOK, list.Code)
			assert.Len(t, decodeBody[customerOrders](t, list).Orders, 1)
		})
	}
}

// TestPlaceOrderStepByStepAfterALostWrite checks the placements whose claim,
// index and bucket cannot all be saved at once because someone else wrote one
// of them between the read and the save: the order is placed step by step from
// there, its id once in its index and its bucket, or refused when another
// request took its key.
func TestPlaceOrderStepByStepAfterALostWrite(t *testing.T) {
	// writtenMeanwhile has f write, just before the first save of a key with
	// prefix, what write returns for it, as another instance would, and
	// records the key in *written.
	writtenMeanwhile := func(f *fakeSidecar, prefix string, written *string, write func(key string) []byte) func(string, string) error {
		var once sync.Once
		return func(m, key string) error {
			if m == "SaveState" && strings.HasPrefix(key, prefix) {
				once.Do(func() {
					*written = key
					f.setBytes(key, write(key))
				})
			}
			return nil
		}
	}
	// ids are the ids held at key, an index's or a bucket's.
	ids := func(t testing.TB, f *fakeSidecar, key string) []string {
		t.Helper()
		v, ok := f.value(key)
		require.True(t, ok, "%s exists", key)
		var held struct {
			IDs []string `json:"ids"`
		}
		require.NoError(t, json.Unmarshal(v, &held))
		return held.IDs
	}
	// open counts the buckets that hold orderID.
	open := func(e *testEnv, orderID string) int {
		n := 0
		for _, k := range e.fake.keys() {
			if isBucket(k) {
				n += countOf(ids(e.t, e.fake, k), orderID)
			}
		}
		return n
	}

	const other = "0000000000000000000000000000000c"
	for _, tt := range []struct {
		name   string
		prefix string
		value  any // what another instance writes there
	}{
		{name: "the bucket changed", prefix: "open-1", value: bucket{IDs: []string{other}}},
		{name: "the index changed", prefix: "customer-", value: storedIndex{IDs: []string{other}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			var written string
			e.fake.fail = writtenMeanwhile(e.fake, tt.prefix, &written, func(string) []byte {
				b, err := json.Marshal(tt.value)
				require.NoError(t, err)
				return b
			})
			o := e.place("k", appleAndPear)
			assert.Equal(t, 1, e.fake.bulkSaves)
			require.Len(t, e.fake.transactions(), 1)
			assertOrderTx(t, e.fake.transactions()[0], o, events.OrderPlaced, "")
			assert.Contains(t, ids(t, e.fake, written), other, "what the other instance wrote is kept")
			assert.Equal(t, 1, countOf(ids(t, e.fake, customerKey("c1")), o.ID), "in its customer's index once")
			assert.Equal(t, 1, open(e, o.ID), "in one bucket of open orders, once")
			var c claim
			v, _ := e.fake.value(claimKey("k"))
			require.NoError(t, json.Unmarshal(v, &c))
			assert.Equal(t, o.ID, c.OrderID)
		})
	}

	t.Run("the key was claimed by another request", func(t *testing.T) {
		e := newTestEnv(t)
		var other claim
		var written string
		e.fake.fail = writtenMeanwhile(e.fake, claimKey("k"), &written, func(string) []byte {
			other = claim{RequestHash: "another body", OrderID: "0000000000000000000000000000000b", ClaimedAt: time.Now()}
			b, err := json.Marshal(other)
			require.NoError(t, err)
			return b
		})
		assertProblem(t, e.post("k", appleAndPear), http.StatusUnprocessableEntity, "different order")
		assert.Empty(t, e.fake.transactions(), "no order saved")
		v, _ := e.fake.value(claimKey("k"))
		var c claim
		require.NoError(t, json.Unmarshal(v, &c))
		assert.Equal(t, other.OrderID, c.OrderID, "the other request's claim stands")
		// The index and the bucket took the lost id; listing skips it, as the
		// reconciler drops it, since no order was saved under it.
		lost := ids(t, e.fake, customerKey("c1"))
		require.Len(t, lost, 1)
		list := e.do(http.MethodGet, "/?customerId=c1", "", nil)
		require.Equal(t, http.StatusOK, list.Code)
		assert.Empty(t, decodeBody[customerOrders](t, list).Orders)
	})
}

// countOf is how many times id is in ids.
func countOf(ids []string, id string) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func TestPlaceOrderIdempotency(t *testing.T) {
	t.Run("same key and body returns the same order", func(t *testing.T) {
		e := newTestEnv(t)
		first := e.place("k", appleAndPear)
		// Spacing differs, the request does not.
		again := e.place("k", strings.ReplaceAll(appleAndPear, ",", " , "))
		assert.Equal(t, first, again)
		assert.Len(t, e.fake.transactions(), 1, "nothing new is created")
		assert.Len(t, e.fake.calls(), 1, "a retry of a placed order is answered without the catalog")
	})

	t.Run("a new order reads once and writes claim, index, open orders and order", func(t *testing.T) {
		e := newTestEnv(t)
		var single []string
		e.fake.fail = func(method, key string) error {
			if method == "GetState" {
				single = append(single, key)
			}
			return nil
		}
		o := e.place("k", appleAndPear)
		assert.Equal(t, 1, e.fake.bulkGets, "claim and index in one read")
		require.Len(t, single, 1, "a freshly claimed id needs no check for an existing order")
		assert.True(t, strings.HasPrefix(single[0], "open-"), "only the bucket of open orders is read alone: %s", single[0])
		assert.Equal(t, 1, e.fake.bulkSaves, "claim, index and bucket in one write")
		assert.Equal(t, []string{minuteKey(e.clock.t.Unix() / 60), claimKey("k"), customerKey("c1"), single[0]}, e.fake.saves,
			"the minute is marked first, then claim, index and bucket are saved")
		assert.Equal(t, []string{o.ID}, e.bucketOf(o.ID).IDs, "the order is open")
		assert.Len(t, e.fake.transactions(), 1)
		assert.Len(t, e.fake.calls(), 1)
	})

	t.Run("a retry is answered while the catalog is down", func(t *testing.T) {
		e := newTestEnv(t)
		first := e.place("k", appleAndPear)
		e.fake.fail = func(method, _ string) error {
			if method == "InvokeMethod" {
				return errors.New("unreachable")
			}
			return nil
		}
		assert.Equal(t, first, e.place("k", appleAndPear))
	})

	t.Run("same key with another body is refused", func(t *testing.T) {
		e := newTestEnv(t)
		e.place("k", appleAndPear)
		before := e.fake.version(customerKey("c1"))
		assertProblem(t, e.post("k", justPear), http.StatusUnprocessableEntity, "already used for a different order")
		assert.Len(t, e.fake.transactions(), 1)
		assert.Equal(t, before, e.fake.version(customerKey("c1")))
	})

	t.Run("another customer under the same key is refused", func(t *testing.T) {
		e := newTestEnv(t)
		e.place("k", appleAndPear)
		assertProblem(t, e.post("k", strings.Replace(appleAndPear, "c1", "c2", 1)), http.StatusUnprocessableEntity, "different order")
		assert.Len(t, e.fake.transactions(), 1)
	})

	t.Run("different keys make different orders", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.place("k1", appleAndPear)
		b := e.place("k2", appleAndPear)
		assert.NotEqual(t, a.ID, b.ID)
		assert.Len(t, e.fake.transactions(), 2)
	})

	t.Run("a winner that died is finished under its claimed id", func(t *testing.T) {
		e := newTestEnv(t)
		claimed, before := deadWinnersClaim(t, e)

		start := time.Now()
		o := e.place("k", appleAndPear)
		assert.GreaterOrEqual(t, time.Since(start), testConfig().claimWait, "it waited for the winner first")
		assert.Equal(t, claimed, o.ID)
		assert.Greater(t, e.fake.version(claimKey("k")), before, "the claim was taken over")
		txs := e.fake.transactions()
		require.Len(t, txs, 1)
		assertOrderTx(t, txs[0], o, events.OrderPlaced, "")
	})

	t.Run("a takeover that cannot check for the winner's order saves nothing", func(t *testing.T) {
		e := newTestEnv(t)
		claimed, before := deadWinnersClaim(t, e)
		// The order reads while waiting succeed; the one after the takeover,
		// which guards against a winner that finished meanwhile, fails.
		e.fake.fail = func(m, key string) error {
			if m == "GetState" && key == orderKey(claimed) && e.fake.version(claimKey("k")) > before {
				return errors.New("redis: i/o timeout")
			}
			return nil
		}
		assertProblem(t, e.post("k", appleAndPear), http.StatusInternalServerError, "internal error")
		assert.Empty(t, e.fake.transactions())
		_, saved := e.fake.value(orderKey(claimed))
		assert.False(t, saved)
	})

	t.Run("a wait that cannot finish saves nothing", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			fail   func(e *testEnv, claimed string) func(method, key string) error
			status int
			detail string
		}{
			{name: "the winner's order cannot be read", status: http.StatusInternalServerError, detail: "internal error",
				fail: func(_ *testEnv, claimed string) func(string, string) error {
					return failOn("GetState", orderKey(claimed))
				}},
			{name: "the claim cannot be taken over", status: http.StatusInternalServerError, detail: "internal error",
				fail: func(*testEnv, string) func(string, string) error {
					return failOn("SaveState", claimKey("k"))
				}},
			{name: "the claim cannot be taken over, nor read again", status: http.StatusInternalServerError, detail: "internal error",
				fail: func(*testEnv, string) func(string, string) error {
					return func(m, k string) error {
						if k == claimKey("k") && (m == "SaveState" || m == "GetState") {
							return errStoreDown
						}
						return nil
					}
				}},
			{name: "every takeover is lost to another waiting request", status: http.StatusServiceUnavailable, detail: "still being placed",
				fail: func(e *testEnv, claimed string) func(string, string) error {
					return func(m, k string) error {
						if m == "SaveState" && k == claimKey("k") {
							// Another request takes the claim over just before.
							var req placeRequest
							require.NoError(t, json.Unmarshal([]byte(appleAndPear), &req))
							e.fake.set(t, k, claim{RequestHash: req.hash(), OrderID: claimed, ClaimedAt: time.Now()})
						}
						return nil
					}
				}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				e := newTestEnv(t)
				claimed, _ := deadWinnersClaim(t, e)
				e.fake.fail = tt.fail(e, claimed)
				assertProblem(t, e.post("k", appleAndPear), tt.status, tt.detail)
				assert.Empty(t, e.fake.transactions())
				_, saved := e.fake.value(orderKey(claimed))
				assert.False(t, saved)
			})
		}
	})

	t.Run("a waiting retry returns the winner's order when it appears", func(t *testing.T) {
		// A long wait, so that the request cannot give up on the winner
		// before the winner's order appears, however slow the machine.
		cfg := testConfig()
		cfg.claimWait = 5 * time.Second
		e := newInstanceWith(t, newFake(), cfg)
		var req placeRequest
		require.NoError(t, json.Unmarshal([]byte(appleAndPear), &req))
		const claimed = "0123456789abcdef0123456789abcdef"
		e.fake.set(t, claimKey("k"), claim{RequestHash: req.hash(), OrderID: claimed})
		winner := order{ID: claimed, CustomerID: "c1", Status: events.StatusPending, Currency: "EUR"}
		saved, err := json.Marshal(winner)
		require.NoError(t, err)
		go func() {
			time.Sleep(50 * time.Millisecond)
			e.fake.setBytes(orderKey(claimed), saved)
		}()
		o := e.place("k", appleAndPear)
		assert.Equal(t, winner, o)
		assert.Empty(t, e.fake.transactions(), "the waiting request wrote nothing")
	})
}

// deadWinnersClaim claims the key "k" for appleAndPear, as a request that died
// before it saved its order leaves it, and returns the claimed order id and
// the claim's version.
func deadWinnersClaim(t *testing.T, e *testEnv) (orderID string, version int) {
	t.Helper()
	var req placeRequest
	require.NoError(t, json.Unmarshal([]byte(appleAndPear), &req))
	const claimed = "0123456789abcdef0123456789abcdef"
	e.fake.set(t, claimKey("k"), claim{RequestHash: req.hash(), OrderID: claimed, ClaimedAt: time.Now()})
	return claimed, e.fake.version(claimKey("k"))
}

func TestPlaceOrderConcurrentRetries(t *testing.T) {
	tests := []struct {
		name      string
		instances int
	}{
		{"one instance", 1},
		{"two instances sharing the store", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			// The production wait, so that a slow test machine cannot make a
			// waiting request take over from a winner that is merely busy.
			cfg := testConfig()
			cfg.claimWait = 2 * time.Second
			envs := make([]*testEnv, tt.instances)
			for i := range envs {
				envs[i] = newInstanceWith(t, f, cfg)
			}
			const n = 20
			ids := make([]string, n)
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					rec := envs[i%len(envs)].post("same-key", appleAndPear)
					codes[i] = rec.Code
					var o order
					if json.Unmarshal(rec.Body.Bytes(), &o) == nil {
						ids[i] = o.ID
					}
				}(i)
			}
			wg.Wait()
			for i := range codes {
				assert.Equal(t, http.StatusAccepted, codes[i])
				assert.Equal(t, ids[0], ids[i])
			}
			assert.Len(t, f.transactions(), 1, "exactly one order created")
			orders := 0
			for _, k := range f.keys() {
				if strings.HasPrefix(k, "order-") {
					orders++
				}
			}
			assert.Equal(t, 1, orders)
			index, ok := f.value(customerKey("c1"))
			require.True(t, ok)
			assert.JSONEq(t, fmt.Sprintf(`{"ids":[%q],"pages":0}`, ids[0]), string(index))
		})
	}
}

// TestPlaceOrderBurstForOneCustomer places many orders for one customer at
// once, each under its own key, with every write of the customer's index slowed
// so that all of them read the index before any writes it: each is accepted
// and listed, none running out of compare-and-swap attempts on the index.
func TestPlaceOrderBurstForOneCustomer(t *testing.T) {
	f := newFake()
	f.fail = func(method, key string) error {
		if method == "SaveState" && key == customerKey("c1") {
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}
	e := newInstance(t, f)
	const n = 3 * casAttempts
	codes := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rec := e.post(fmt.Sprintf("k%d", i), justPear)
			codes[i], bodies[i] = rec.Code, rec.Body.String()
		}(i)
	}
	wg.Wait()
	for i := range codes {
		require.Equal(t, http.StatusAccepted, codes[i], bodies[i])
	}
	list := e.do(http.MethodGet, fmt.Sprintf("/?customerId=c1&limit=%d", n), "", nil)
	require.Equal(t, http.StatusOK, list.Code)
	assert.Len(t, decodeBody[customerOrders](t, list).Orders, n)
}

func TestGetOrder(t *testing.T) {
	e := newTestEnv(t)
	o := e.place("k", appleAndPear)
	tests := []struct {
		name   string
		path   string
		fail   func(string, string) error
		status int
		detail string
	}{
		{"found", "/" + o.ID, nil, http.StatusOK, ""},
		{"unknown", "/ffffffffffffffffffffffffffffffff", nil, http.StatusNotFound, "order ffffffffffffffffffffffffffffffff not found"},
		{"malformed", "/not-an-id", nil, http.StatusBadRequest, "malformed order id"},
		{"spaces", "/%20bad%20id", nil, http.StatusBadRequest, "malformed order id"},
		{"upper-case hex", "/" + strings.ToUpper(o.ID), nil, http.StatusBadRequest, "malformed order id"},
		{"store failure", "/" + o.ID, func(string, string) error { return errors.New("redis down") }, http.StatusInternalServerError, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.fake.fail = tt.fail
			defer func() { e.fake.fail = nil }()
			rec := e.do(http.MethodGet, tt.path, "", nil)
			if tt.status != http.StatusOK {
				assertProblem(t, rec, tt.status, tt.detail)
				return
			}
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, o, decodeBody[order](t, rec))
		})
	}
}

func TestListOrders(t *testing.T) {
	e := newTestEnv(t)
	first := e.place("k1", appleAndPear)
	second := e.place("k2", justPear)
	third := e.place("k3", `{"customerId":"c1","items":[{"productId":"apple","quantity":1}]}`)
	other := e.place("k4", `{"customerId":"c2","items":[{"productId":"apple","quantity":1}]}`)

	// An id whose order was never saved, as a crash between the index and the
	// order transaction leaves it, is skipped.
	x, err := (&orders{dapr: e.fake, cfg: testConfig()}).readIndex(context.Background(), "c1")
	require.NoError(t, err)
	e.fake.set(t, customerKey("c1"), storedIndex{IDs: append(x.ids, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")})

	t.Run("newest first", func(t *testing.T) {
		rec := e.do(http.MethodGet, "/?customerId=c1", "", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		got := decodeBody[customerOrders](t, rec)
		assert.Equal(t, "c1", got.CustomerID)
		assert.Equal(t, []order{third, second, first}, got.Orders)
	})
	t.Run("only the customer's own", func(t *testing.T) {
		rec := e.do(http.MethodGet, "/?customerId=c2", "", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, []order{other}, decodeBody[customerOrders](t, rec).Orders)
	})
	t.Run("a customer without orders has an empty list", func(t *testing.T) {
		rec := e.do(http.MethodGet, "/?customerId=nobody", "", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		assert.JSONEq(t, `{"customerId":"nobody","orders":[]}`, rec.Body.String())
	})

	failures := []struct {
		name   string
		query  string
		fail   func(string, string) error
		status int
		detail string
	}{
		{"missing customer", "", nil, http.StatusBadRequest, "customerId query parameter is required"},
		{"empty customer", "?customerId=", nil, http.StatusBadRequest, "customerId query parameter is required"},
		{"invalid customer", "?customerId=a%2Fb", nil, http.StatusBadRequest, "customerId must be"},
		{"customer too long", "?customerId=" + strings.Repeat("c", 65), nil, http.StatusBadRequest, "customerId must be"},
		{"index unreadable", "?customerId=c1", func(m, _ string) error {
			if m == "GetState" {
				return errors.New("redis down")
			}
			return nil
		}, http.StatusInternalServerError, "internal error"},
		{"orders unreadable", "?customerId=c1", func(m, _ string) error {
			if m == "GetBulkState" {
				return errors.New("redis down")
			}
			return nil
		}, http.StatusInternalServerError, "internal error"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			e.fake.fail = tt.fail
			defer func() { e.fake.fail = nil }()
			assertProblem(t, e.do(http.MethodGet, "/"+tt.query, "", nil), tt.status, tt.detail)
		})
	}
}

func TestPlaceOrderPastCapacity(t *testing.T) {
	f := newFake()
	cfg := testConfig()
	cfg.placementMin, cfg.placementMax = 1, 1
	cfg.placementTarget = 20 * time.Millisecond // how long a refused placement waits
	e := newInstanceWith(t, f, cfg)
	placed := e.place("key-placed", appleAndPear)

	// The next new order is held in the catalog, taking the one place there is.
	inCatalog, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.fail = func(method, _ string) error {
		if method == "InvokeMethod" {
			once.Do(func() {
				close(inCatalog)
				<-proceed
			})
		}
		return nil
	}
	held := make(chan *httptest.ResponseRecorder)
	go func() { held <- e.post("key-held", justPear) }()
	<-inCatalog
	keysBefore, gets := f.keys(), f.reads()

	rec := e.post("key-refused", justPear)
	assertProblem(t, rec, http.StatusServiceUnavailable, "retry with the same Idempotency-Key")
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Equal(t, httpx.EOverloaded, decodeBody[httpx.Problem](t, rec).Code)
	// A retry of an order already placed waits its turn like a new one.
	assertProblem(t, e.post("key-placed", appleAndPear), http.StatusServiceUnavailable, "retry")
	assert.ElementsMatch(t, keysBefore, f.keys(), "a refused order writes nothing")
	assert.Equal(t, gets, f.reads(), "nor reads anything")

	close(proceed)
	require.Equal(t, http.StatusAccepted, (<-held).Code)
	// With the place free again, the retries are answered.
	later := e.place("key-refused", justPear)
	assert.NotEqual(t, placed.ID, later.ID)
	assert.Equal(t, placed.ID, e.place("key-placed", appleAndPear).ID)
	assert.Len(t, f.transactions(), 3, "three orders, each created once")
}
