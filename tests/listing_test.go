package tests

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOrdersOfACustomerPageByPage places more orders for one customer than
// one page of the customer's index holds in the orders service (100), so the
// older ones move to a page of their own in the store, and lists them through
// the gateway page by page: every order once, newest first.
func TestOrdersOfACustomerPageByPage(t *testing.T) {
	p := newProduct(t, 100, 0) // out of stock: each order settles at once, cancelled
	customer := newCustomer(t, 0)
	const n = 110
	placed := make([]string, n)
	for i := range placed {
		placed[i] = place(t, customer, orderLine{ProductID: p.ID, Quantity: 1}).ID
	}

	listed := ordersOf(t, customer)
	require.Len(t, listed, n)
	for i, o := range listed {
		assert.Equal(t, placed[n-1-i], o.ID, "position %d, newest first", i)
		assert.Equal(t, customer, o.CustomerID)
	}
}

// TestProductsPageByPage lists the catalog through the gateway a few products
// at a time, following each answer's Link header: every product once, sorted
// by id, the one just created among them.
func TestProductsPageByPage(t *testing.T) {
	created := newProduct(t, 100, 0)
	var ids []string
	path := "/api/catalog/products?limit=3"
	for page := 1; path != ""; page++ {
		r := call(t, http.MethodGet, path, nil, nil)
		require.Equal(t, http.StatusOK, r.status, "page %d (%s): %s", page, path, r.body)
		var ps []product
		r.json(t, &ps)
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		path = ""
		if link := r.header.Get("Link"); link != "" {
			require.True(t, strings.HasPrefix(link, "</api/catalog/products?") && strings.HasSuffix(link, `>; rel="next"`), "link %q", link)
			path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	assert.Contains(t, ids, created.ID)
	assert.True(t, slices.IsSorted(ids), "sorted by id")
	assert.Len(t, ids, len(slices.Compact(slices.Clone(ids))), "each product once")
}
