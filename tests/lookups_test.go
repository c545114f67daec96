package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorded is an entry of the consumers' lookups, as far as the orders'
// reconciler reads it.
type recorded struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Type    string `json:"type"`
}

// lookup asks path (an app's lookup, with its orderIds) through the gateway.
func lookup(t *testing.T, path string) []recorded {
	t.Helper()
	r := call(t, http.MethodGet, path, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "GET %s: %s", path, r.body)
	var out []recorded
	r.json(t, &out)
	return out
}

// TestConsumersTellWhatTheyRecorded checks, on the real stores, the lookups
// that orders' reconciler asks to learn whether a final order's event reached
// each consumer: a confirmed order's reservation stands, its charge succeeded
// and its customer was told; a declined one's reservation was released, its
// charge failed and its customer was told of the cancellation; an order the
// consumers never saw is not listed.
func TestConsumersTellWhatTheyRecorded(t *testing.T) {
	p := newProduct(t, 300, 10)
	rich, poor := newCustomer(t, 10_000), newCustomer(t, 100)
	confirmed := settled(t, place(t, rich, orderLine{ProductID: p.ID, Quantity: 1}).ID)
	require.Equal(t, "confirmed", confirmed.Status)
	declined := settled(t, place(t, poor, orderLine{ProductID: p.ID, Quantity: 1}).ID)
	require.Equal(t, "payment_declined", declined.Reason)
	unknown := "0123456789abcdef0123456789abcdef"
	ids := confirmed.ID + "," + declined.ID + "," + unknown

	eventually(t, 30*time.Second, func() bool {
		return len(lookup(t, "/api/inventory/reservations?orderIds="+ids)) == 2 &&
			lookup(t, "/api/inventory/reservations?orderIds="+declined.ID)[0].Status == "released"
	}, "the inventory recorded both orders")
	assert.Equal(t, []recorded{{OrderID: confirmed.ID, Status: "reserved"}, {OrderID: declined.ID, Status: "released"}},
		lookup(t, "/api/inventory/reservations?orderIds="+ids))
	eventually(t, 30*time.Second, func() bool {
		return len(lookup(t, "/api/payments/charges?orderIds="+ids)) == 2
	}, "payments recorded both orders")
	assert.Equal(t, []recorded{{OrderID: confirmed.ID, Status: "succeeded"}, {OrderID: declined.ID, Status: "failed"}},
		lookup(t, "/api/payments/charges?orderIds="+ids))
	eventually(t, 30*time.Second, func() bool {
		return len(lookup(t, "/api/notifications/notified?orderIds="+ids)) == 2
	}, "notifications told both customers")
	assert.Equal(t, []recorded{
		{OrderID: confirmed.ID, Type: "daprshop.order.confirmed.v1"},
		{OrderID: declined.ID, Type: "daprshop.order.cancelled.v1"},
	}, lookup(t, "/api/notifications/notified?orderIds="+ids))
}
