package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/keylock"
)

var _ sidecar = (*daprfake.Client)(nil)

const testStore = "catalog-test"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestCatalog returns a catalog on a fake store that holds the demo products.
func newTestCatalog(t *testing.T) (*catalog, *daprfake.Client) {
	t.Helper()
	fake := &daprfake.Client{}
	cat := &catalog{dapr: fake, store: testStore, locks: keylock.New(16)}
	n, err := cat.seed(context.Background(), demoProducts)
	require.NoError(t, err)
	require.Equal(t, len(demoProducts), n)
	return cat, fake
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

const (
	jsonCT  = "application/json"
	appleJS = `{"id":"apple","name":"Apple","priceCents":50,"currency":"EUR"}`
)

func TestAPI(t *testing.T) {
	tooMany := strings.TrimSuffix(strings.Repeat("p,", maxQueryIDs+1), ",")
	var many []string
	for i := 0; i <= maxQueryIDs; i++ {
		many = append(many, fmt.Sprintf("p%d", i))
	}
	tests := []struct {
		name         string
		setup        func(*daprfake.Client)
		method, path string
		ctype, body  string
		status       int
		want         string // the JSON answer, for a success
		detail       string // part of the problem's detail, for an error
	}{
		{name: "health", method: "GET", path: "/healthz", status: 200},
		{name: "list all sorted", method: "GET", path: "/products", status: 200,
			want: `[` + appleJS + `,{"id":"banana","name":"Banana","priceCents":30,"currency":"EUR"},
				{"id":"coffee","name":"Coffee beans, 250 g","priceCents":899,"currency":"EUR"},
				{"id":"notebook","name":"Notebook, A5","priceCents":299,"currency":"EUR"},
				{"id":"tea","name":"Green tea, 20 bags","priceCents":349,"currency":"EUR"}]`},
		{name: "list empty store", setup: func(f *daprfake.Client) { *f = daprfake.Client{} },
			method: "GET", path: "/products", status: 200, want: `[]`},
		{name: "list a page", method: "GET", path: "/products?limit=2", status: 200,
			want: `[` + appleJS + `,{"id":"banana","name":"Banana","priceCents":30,"currency":"EUR"}]`},
		{name: "list after an id that is not a product", method: "GET", path: "/products?limit=1&after=b", status: 200,
			want: `[{"id":"banana","name":"Banana","priceCents":30,"currency":"EUR"}]`},
		{name: "list after the last", method: "GET", path: "/products?after=zzz", status: 200, want: `[]`},
		{name: "list: limit 0", method: "GET", path: "/products?limit=0", status: 400, detail: `limit must be a whole number from 1 to 500, not "0"`},
		{name: "list: limit over 500", method: "GET", path: "/products?limit=501", status: 400, detail: "from 1 to 500"},
		{name: "list: limit not a number", method: "GET", path: "/products?limit=all", status: 400, detail: `not "all"`},
		{name: "list: bad after", method: "GET", path: "/products?after=a%2Fb", status: 400, detail: `query parameter after "a/b" may only hold`},
		{name: "list: empty after", method: "GET", path: "/products?after=", status: 400, detail: "query parameter after is empty"},
		{name: "ids with limit", method: "GET", path: "/products?ids=apple&limit=2", status: 400, detail: "does not take limit or after"},
		{name: "list: products unreadable", setup: daprfake.FailOn("GetBulkState"), method: "GET", path: "/products?limit=2", status: 500, detail: "internal error"},
		{name: "ids: only those found, sorted", method: "GET", path: "/products?ids=tea,apple,nope,apple", status: 200,
			want: `[` + appleJS + `,{"id":"tea","name":"Green tea, 20 bags","priceCents":349,"currency":"EUR"}]`},
		{name: "ids: repeated parameter", method: "GET", path: "/products?ids=tea&ids=apple", status: 200,
			want: `[` + appleJS + `,{"id":"tea","name":"Green tea, 20 bags","priceCents":349,"currency":"EUR"}]`},
		{name: "ids: none found", method: "GET", path: "/products?ids=nope", status: 200, want: `[]`},
		{name: "ids: empty", method: "GET", path: "/products?ids=", status: 400, detail: "query parameter ids: product id is empty"},
		{name: "ids: empty element", method: "GET", path: "/products?ids=apple,,tea", status: 400, detail: "product id is empty"},
		{name: "ids: bad id", method: "GET", path: "/products?ids=apple,a%2Fb", status: 400, detail: `product id "a/b" may only hold`},
		{name: "ids: duplicates count once", method: "GET", path: "/products?ids=" + tooMany, status: 200, want: `[]`},
		{name: "ids: too many", method: "GET", path: "/products?ids=" + strings.Join(many, ","), status: 400, detail: "names 101 products; the limit is 100"},
		{name: "list: store down", setup: daprfake.FailOn("GetState"), method: "GET", path: "/products", status: 500, detail: "internal error"},
		{name: "list: a stored product is corrupt", setup: func(f *daprfake.Client) { f.Put(testStore, productKey("apple"), []byte(`{"id":`)) },
			method: "GET", path: "/products", status: 500, detail: "internal error"},
		{name: "ids: store down", setup: daprfake.FailOn("GetBulkState"), method: "GET", path: "/products?ids=apple", status: 500, detail: "internal error"},

		{name: "get", method: "GET", path: "/products/apple", status: 200, want: appleJS},
		{name: "get unknown", method: "GET", path: "/products/nope", status: 404, detail: `product "nope" not found`},
		{name: "get bad id", method: "GET", path: "/products/bad%21id", status: 400, detail: `product id "bad!id" may only hold`},
		{name: "get long id", method: "GET", path: "/products/" + strings.Repeat("x", 65), status: 400, detail: "65 characters long; the limit is 64"},
		{name: "get: store down", setup: daprfake.FailOn("GetState"), method: "GET", path: "/products/apple", status: 500, detail: "internal error"},
		{name: "delete not allowed", method: "DELETE", path: "/products/apple", status: 405, detail: "DELETE is not allowed"},

		{name: "create", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":70,"currency":"EUR"}`, status: 201,
			want: `{"id":"pear","name":"Pear","priceCents":70,"currency":"EUR"}`},
		{name: "create existing", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"apple","name":"Other","priceCents":1,"currency":"USD"}`, status: 409, detail: `product "apple" already exists`},
		{name: "create malformed", method: "POST", path: "/products", ctype: jsonCT, body: `{"id":"pear",`, status: 400, detail: "malformed JSON"},
		{name: "create unknown field", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":70,"currency":"EUR","stock":3}`, status: 400, detail: `unknown field "stock"`},
		{name: "create not JSON", method: "POST", path: "/products", ctype: "text/plain", body: `{}`, status: 415, detail: "Content-Type must be application/json"},
		{name: "create no content type", method: "POST", path: "/products", body: `{}`, status: 415, detail: "Content-Type must be application/json"},
		{name: "create oversized", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"` + strings.Repeat("a", httpx.DefaultMaxBody) + `"}`, status: 413, detail: "limit"},
		{name: "create empty body", method: "POST", path: "/products", ctype: jsonCT, body: ``, status: 400, detail: "empty"},
		{name: "create two objects", method: "POST", path: "/products", ctype: jsonCT, body: `{}{}`, status: 400, detail: "single JSON object"},
		{name: "create array", method: "POST", path: "/products", ctype: jsonCT, body: `[]`, status: 400, detail: "JSON object"},
		{name: "create zero price", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":0,"currency":"EUR"}`, status: 400, detail: "priceCents must be a positive whole number of cents, not 0"},
		{name: "create negative price", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":-5,"currency":"EUR"}`, status: 400, detail: "not -5"},
		{name: "create fractional price", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":1.5,"currency":"EUR"}`, status: 400, detail: `field "priceCents"`},
		{name: "create price as string", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":"70","currency":"EUR"}`, status: 400, detail: `field "priceCents"`},
		{name: "create huge price", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":1000000001,"currency":"EUR"}`, status: 400, detail: "over the limit"},
		{name: "create lower-case currency", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":70,"currency":"eur"}`, status: 400, detail: `currency must be three upper-case letters such as EUR, not "eur"`},
		{name: "create long currency", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":70,"currency":"EURO"}`, status: 400, detail: "currency"},
		{name: "create missing currency", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":70}`, status: 400, detail: "currency"},
		{name: "create blank name", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"  ","priceCents":70,"currency":"EUR"}`, status: 400, detail: "name is required"},
		{name: "create long name", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"` + strings.Repeat("é", maxNameLen+1) + `","priceCents":70,"currency":"EUR"}`, status: 400, detail: "name is 201 characters long"},
		{name: "create missing id", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"name":"Pear","priceCents":70,"currency":"EUR"}`, status: 400, detail: "product id is empty"},
		{name: "create bad id", method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pe ar","name":"Pear","priceCents":70,"currency":"EUR"}`, status: 400, detail: "may only hold"},
		{name: "create: store down", setup: daprfake.FailOn("SaveState"), method: "POST", path: "/products", ctype: jsonCT,
			body: `{"id":"pear","name":"Pear","priceCents":70,"currency":"EUR"}`, status: 500, detail: "internal error"},

		{name: "put creates", method: "PUT", path: "/products/pear", ctype: jsonCT,
			body: `{"name":"Pear","priceCents":70,"currency":"EUR"}`, status: 200,
			want: `{"id":"pear","name":"Pear","priceCents":70,"currency":"EUR"}`},
		{name: "put replaces", method: "PUT", path: "/products/apple", ctype: jsonCT,
			body: `{"name":"Red apple","priceCents":65,"currency":"EUR"}`, status: 200,
			want: `{"id":"apple","name":"Red apple","priceCents":65,"currency":"EUR"}`},
		{name: "put id in body", method: "PUT", path: "/products/apple", ctype: jsonCT,
			body: `{"id":"apple","name":"Apple","priceCents":65,"currency":"EUR"}`, status: 400, detail: `unknown field "id"`},
		{name: "put bad path id", method: "PUT", path: "/products/bad%21id", ctype: jsonCT,
			body: `{"name":"Pear","priceCents":70,"currency":"EUR"}`, status: 400, detail: "may only hold"},
		{name: "put zero price", method: "PUT", path: "/products/apple", ctype: jsonCT,
			body: `{"name":"Apple","priceCents":0,"currency":"EUR"}`, status: 400, detail: "priceCents"},
		{name: "put malformed", method: "PUT", path: "/products/apple", ctype: jsonCT, body: `nope`, status: 400, detail: "malformed JSON"},
		{name: "put not JSON", method: "PUT", path: "/products/apple", ctype: "application/xml", body: `<a/>`, status: 415, detail: "Content-Type"},
		{name: "put oversized", method: "PUT", path: "/products/apple", ctype: jsonCT,
			body: `{"name":"` + strings.Repeat("a", httpx.DefaultMaxBody) + `"}`, status: 413, detail: "limit"},
		{name: "put: store down", setup: daprfake.FailOn("SaveState"), method: "PUT", path: "/products/apple", ctype: jsonCT,
			body: `{"name":"Apple","priceCents":65,"currency":"EUR"}`, status: 500, detail: "internal error"},
		{name: "put new: store down", setup: daprfake.FailOn("SaveState"), method: "PUT", path: "/products/pear", ctype: jsonCT,
			body: `{"name":"Pear","priceCents":70,"currency":"EUR"}`, status: 500, detail: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat, fake := newTestCatalog(t)
			if tt.setup != nil {
				tt.setup(fake)
			}
			before := fake.Dump(testStore)
			rec := do(t, newServer(quiet(), "catalog-1", cat), tt.method, tt.path, tt.ctype, tt.body)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status >= 400 {
				assert.Equal(t, httpx.ProblemContentType, rec.Header().Get("Content-Type"))
				var p httpx.Problem
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				assert.Equal(t, tt.status, p.Status)
				assert.Contains(t, p.Detail, tt.detail)
				assert.Equal(t, before, fake.Dump(testStore), "a refused request changes nothing")
				return
			}
			if tt.want != "" {
				assert.Equal(t, jsonCT, rec.Header().Get("Content-Type"))
				assert.JSONEq(t, tt.want, rec.Body.String())
			}
		})
	}
}

func TestWritesAreVisible(t *testing.T) {
	cat, _ := newTestCatalog(t)
	srv := newServer(quiet(), "catalog-1", cat)
	require.Equal(t, 201, do(t, srv, "POST", "/products", jsonCT, `{"id":"pear","name":"Pear","priceCents":70,"currency":"EUR"}`).Code)
	require.Equal(t, 200, do(t, srv, "PUT", "/products/apple", jsonCT, `{"name":"Red apple","priceCents":65,"currency":"EUR"}`).Code)
	require.Equal(t, 200, do(t, srv, "PUT", "/products/zucchini", jsonCT, `{"name":"Zucchini","priceCents":120,"currency":"EUR"}`).Code)

	rec := do(t, srv, "GET", "/products", "", "")
	var ps []product
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ps))
	var got []string
	for _, p := range ps {
		got = append(got, p.ID)
	}
	assert.Equal(t, []string{"apple", "banana", "coffee", "notebook", "pear", "tea", "zucchini"}, got)
	assert.Equal(t, product{ID: "apple", Name: "Red apple", PriceCents: 65, Currency: "EUR"}, ps[0])
}

func TestSeedIsIdempotentAndKeepsChanges(t *testing.T) {
	cat, _ := newTestCatalog(t)
	srv := newServer(quiet(), "catalog-1", cat)
	require.Equal(t, 200, do(t, srv, "PUT", "/products/apple", jsonCT, `{"name":"Red apple","priceCents":65,"currency":"EUR"}`).Code)

	n, err := cat.seed(context.Background(), demoProducts)
	require.NoError(t, err)
	assert.Zero(t, n, "a second start creates nothing")
	assert.JSONEq(t, `{"id":"apple","name":"Red apple","priceCents":65,"currency":"EUR"}`,
		do(t, srv, "GET", "/products/apple", "", "").Body.String(), "the operator's change stays")
}

// TestSeedFromTwoInstancesAtOnce starts two instances, each with its own locks, on
// one store: every product is created exactly once and the index lists them all.
func TestSeedFromTwoInstancesAtOnce(t *testing.T) {
	fake := &daprfake.Client{}
	var wg sync.WaitGroup
	created := make([]int, 4)
	for i := range created {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cat := &catalog{dapr: fake, store: testStore, locks: keylock.New(16)}
			n, err := cat.seed(context.Background(), demoProducts)
			assert.NoError(t, err)
			created[i] = n
		}()
	}
	wg.Wait()
	assert.Equal(t, len(demoProducts), created[0]+created[1]+created[2]+created[3])
	cat := &catalog{dapr: fake, store: testStore, locks: keylock.New(16)}
	ps, next, err := cat.list(context.Background(), "", maxListLimit)
	require.NoError(t, err)
	assert.Len(t, ps, len(demoProducts))
	assert.Empty(t, next)
}

// TestListProductsPageByPage follows the Link header from page to page, as the
// gateway exposes them: every product once, sorted by id.
func TestListProductsPageByPage(t *testing.T) {
	cat, _ := newTestCatalog(t)
	srv := newServer(quiet(), "catalog-1", cat)
	var got []string
	var links []string
	path := "/products?limit=2"
	for path != "" {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set(httpx.HeaderForwardedPrefix, "/api/catalog")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var ps []product
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ps))
		for _, p := range ps {
			got = append(got, p.ID)
		}
		path = ""
		if link := rec.Header().Get("Link"); link != "" {
			links = append(links, link)
			target, _, _ := strings.Cut(strings.TrimPrefix(link, "<"), ">")
			path = strings.TrimPrefix(target, "/api/catalog")
		}
	}
	assert.Equal(t, []string{"apple", "banana", "coffee", "notebook", "tea"}, got)
	assert.Equal(t, []string{
		`</api/catalog/products?limit=2&after=banana>; rel="next"`,
		`</api/catalog/products?limit=2&after=notebook>; rel="next"`,
	}, links)
}

func TestSeedFailure(t *testing.T) {
	fake := &daprfake.Client{}
	daprfake.FailOn("SaveState")(fake)
	cat := &catalog{dapr: fake, store: testStore, locks: keylock.New(16)}
	_, err := cat.seed(context.Background(), demoProducts)
	assert.ErrorContains(t, err, "connection refused")
}

func TestConcurrentCreatesOfOneID(t *testing.T) {
	fake := &daprfake.Client{}
	// Two instances, so that only the store's create-if-absent can tell them apart.
	srvs := []http.Handler{
		newServer(quiet(), "a", &catalog{dapr: fake, store: testStore, locks: keylock.New(16)}),
		newServer(quiet(), "b", &catalog{dapr: fake, store: testStore, locks: keylock.New(16)}),
	}
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"id":"pear","name":"Pear %d","priceCents":70,"currency":"EUR"}`, i)
			codes[i] = do(t, srvs[i%2], "POST", "/products", jsonCT, body).Code
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	assert.Equal(t, map[int]int{201: 1, 409: 9}, count)
}

// racer is a store on which another instance writes every key, as the catalog
// does, just before each of this instance's writes, so that every
// compare-and-swap loses.
type racer struct{ *daprfake.Client }

func (r racer) SaveStateWithETag(ctx context.Context, store, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error {
	cur, err := r.GetState(ctx, store, key, nil)
	if err != nil {
		return err
	}
	other := []byte(`{"id":"apple","name":"someone else's","priceCents":1,"currency":"EUR"}`)
	if err := r.Client.SaveStateWithETag(ctx, store, key, other, cur.Etag, nil,
		client.WithConcurrency(client.StateConcurrencyFirstWrite)); err != nil {
		return err
	}
	return r.Client.SaveStateWithETag(ctx, store, key, data, etag, meta, so...)
}

func TestPutGivesUpOnConstantConflicts(t *testing.T) {
	fake := &daprfake.Client{}
	cat := &catalog{dapr: racer{fake}, store: testStore, locks: keylock.New(16)}
	// The index is written first: seed it so that the product write is the one
	// that keeps losing.
	fake.Put(testStore, indexKey, productIndex{IDs: []string{"apple"}})
	rec := do(t, newServer(quiet(), "catalog-1", cat), "PUT", "/products/apple", jsonCT, `{"name":"Apple","priceCents":65,"currency":"EUR"}`)
	assert.Equal(t, http.StatusConflict, rec.Code)
	assert.Contains(t, rec.Body.String(), "being changed by another request")
}
