package tests

import (
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
