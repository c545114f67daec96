package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/lookuptest"
)

// cloudEvent returns the body the sidecar delivers for an inventory event of type
// typ about orderID carrying data (a value, or a json.RawMessage as it is).
func cloudEvent(t *testing.T, typ, orderID string, data any) string {
	t.Helper()
	return daprfake.CloudEvent(t, events.TopicInventory, typ, orderID, data)
}

func stock(orderID, customerID string, total int64) events.Stock {
	return events.Stock{OrderID: orderID, CustomerID: customerID, TotalCents: total, Currency: "EUR"}
}

// outcome is what a test checks of one published event.
type outcome struct {
	Type, ID string
	Payment  events.Payment
}

func published(t *testing.T, fake *daprfake.Client) []outcome {
	t.Helper()
	var out []outcome
	for _, e := range fake.Published() {
		require.Equal(t, events.TopicPayments, e.Topic)
		var p events.Payment
		require.NoError(t, json.Unmarshal(e.Data, &p))
		out = append(out, outcome{Type: e.Type(), ID: e.ID(), Payment: p})
	}
	return out
}

func succeeded(orderID, customerID string, amount int64) outcome {
	return outcome{Type: events.PaymentSucceeded, ID: events.EventID(orderID, events.PaymentSucceeded),
		Payment: events.Payment{OrderID: orderID, CustomerID: customerID, AmountCents: amount, Currency: "EUR"}}
}

func failed(orderID, customerID string, amount int64) outcome {
	return outcome{Type: events.PaymentFailed, ID: events.EventID(orderID, events.PaymentFailed),
		Payment: events.Payment{OrderID: orderID, CustomerID: customerID, AmountCents: amount, Currency: "EUR", Reason: events.ReasonPaymentDeclined}}
}

func chargeStatus(t *testing.T, fake *daprfake.Client, orderID string) string {
	t.Helper()
	data, ok := fake.Value(testStore, chargeKey(orderID))
	if !ok {
		return ""
	}
	var rec charge
	require.NoError(t, json.Unmarshal(data, &rec))
	return rec.Status
}

func TestStockReserved(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*daprfake.Client)
		data    any
		status  string
		want    []outcome
		balance int64
		record  string
	}{
		{name: "charges", data: stock("o1", "c1", 300), status: events.StatusSuccess,
			want: []outcome{succeeded("o1", "c1", 300)}, balance: 700, record: statusSucceeded},
		{name: "exactly the balance", data: stock("o1", "c1", 1000), status: events.StatusSuccess,
			want: []outcome{succeeded("o1", "c1", 1000)}, balance: 0, record: statusSucceeded},
		{name: "too little on the account", data: stock("o1", "c1", 1001), status: events.StatusSuccess,
			want: []outcome{failed("o1", "c1", 1001)}, balance: 1000, record: statusFailed},
		{name: "no account", data: stock("o1", "c9", 1), status: events.StatusSuccess,
			want: []outcome{failed("o1", "c9", 1)}, balance: 1000, record: statusFailed},
		{name: "outbox delivers data as a JSON string", data: json.RawMessage(`"{\"orderId\":\"o1\",\"customerId\":\"c1\",\"totalCents\":5,\"currency\":\"EUR\"}"`),
			status: events.StatusSuccess, want: []outcome{succeeded("o1", "c1", 5)}, balance: 995, record: statusSucceeded},

		{name: "poison: no order id", data: stock("", "c1", 1), status: events.StatusDrop, balance: 1000},
		{name: "poison: bad order id", data: stock("o 1", "c1", 1), status: events.StatusDrop, balance: 1000},
		{name: "poison: no customer", data: stock("o1", "", 1), status: events.StatusDrop, balance: 1000},
		{name: "poison: zero total", data: stock("o1", "c1", 0), status: events.StatusDrop, balance: 1000},
		{name: "poison: negative total", data: stock("o1", "c1", -5), status: events.StatusDrop, balance: 1000},
		{name: "poison: unknown field", data: json.RawMessage(`{"orderId":"o1","customerId":"c1","totalCents":1,"tip":2}`),
			status: events.StatusDrop, balance: 1000},
		{name: "poison: data not an object", data: json.RawMessage(`42`), status: events.StatusDrop, balance: 1000},

		{name: "single reads down: a charge reads in bulk only", setup: daprfake.FailOn("GetState"), data: stock("o1", "c1", 300),
			status: events.StatusSuccess, want: []outcome{succeeded("o1", "c1", 300)}, balance: 700, record: statusSucceeded},
		{name: "bulk read down: retried, nothing changed", setup: daprfake.FailOn("GetBulkState"), data: stock("o1", "c1", 300),
			status: events.StatusRetry, balance: 1000},
		{name: "writes down: retried, nothing changed", setup: daprfake.FailOn("SaveState"), data: stock("o1", "c1", 300),
			status: events.StatusRetry, balance: 1000},
		{name: "broker down: retried after the effect", setup: daprfake.FailOn("PublishEvent"), data: stock("o1", "c1", 300),
			status: events.StatusRetry, balance: 700, record: statusSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, map[string]int64{"c1": 1000})
			if tt.setup != nil {
				tt.setup(fake)
			}
			assert.Equal(t, tt.status, daprfake.DeliverInBatch(t, srv, pathStockReserved, cloudEvent(t, events.StockReserved, "o1", tt.data)))
			fake.Hook = nil
			assert.Equal(t, tt.want, published(t, fake))
			assert.Equal(t, tt.balance, balanceOf(t, fake, "c1"))
			assert.Equal(t, tt.record, chargeStatus(t, fake, "o1"))
		})
	}
}

// TestStockReservedRedelivered delivers the same StockReserved again after each
// way the first delivery can end: the customer is charged once, and the recorded
// outcome is published again under the same id.
// TestChargeCalls shows what a charge costs the store: one bulk read of the
// charge record and the account, the account's compare-and-swap, which also
// takes the previous charge's mark with it, the record and the publish.
func TestChargeCalls(t *testing.T) {
	srv, fake := setup(t, map[string]int64{"c1": 1000})
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, cloudEvent(t, events.StockReserved, "o1", stock("o1", "c1", 300))))

	calls := map[string]int{}
	fake.Hook = func(method, _ string) error {
		calls[method]++
		return nil
	}
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, cloudEvent(t, events.StockReserved, "o2", stock("o2", "c1", 200))))
	assert.Equal(t, map[string]int{"GetBulkState": 2, "SaveState": 2, "PublishEvent": 1}, calls, "the fake counts each key of a bulk read")
	fake.Hook = nil
	data, ok := fake.Value(testStore, accountKey("c1"))
	require.True(t, ok)
	var a account
	require.NoError(t, json.Unmarshal(data, &a))
	assert.Equal(t, map[string]int64{"charge/o2": 200}, a.Pending, "o1's mark went with o2's debit")
	assert.Equal(t, int64(500), balanceOf(t, fake, "c1"))
}

func TestStockReservedRedelivered(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fail    func(method, key string) error // for the first delivery only
		first   string
		total   int64
		want    []outcome
		balance int64
	}{
		{name: "after success", total: 300, first: events.StatusSuccess,
			want: []outcome{succeeded("o1", "c1", 300), succeeded("o1", "c1", 300)}, balance: 700},
		{name: "after decline", total: 3000, first: events.StatusSuccess,
			want: []outcome{failed("o1", "c1", 3000), failed("o1", "c1", 3000)}, balance: 1000},
		{name: "after the publish failed", total: 300, first: events.StatusRetry,
			fail: func(m, _ string) error {
				if m == "PublishEvent" {
					return boom
				}
				return nil
			}, want: []outcome{succeeded("o1", "c1", 300)}, balance: 700},
		{name: "after the record failed, account already debited", total: 300, first: events.StatusRetry,
			fail: func(m, key string) error {
				if m == "SaveState" && key == chargeKey("o1") {
					return boom
				}
				return nil
			}, want: []outcome{succeeded("o1", "c1", 300)}, balance: 700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, map[string]int64{"c1": 1000})
			fake.Hook = tt.fail
			body := cloudEvent(t, events.StockReserved, "o1", stock("o1", "c1", tt.total))
			assert.Equal(t, tt.first, daprfake.DeliverInBatch(t, srv, pathStockReserved, body))
			fake.Hook = nil
			assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, body))
			assert.Equal(t, tt.want, published(t, fake))
			assert.Equal(t, tt.balance, balanceOf(t, fake, "c1"))
		})
	}
}

// TestConcurrentCharges charges 20 orders of 100 at once to an account of 500,
// on one instance and on two that share the store but not their locks: exactly 5
// succeed and the balance ends at 0, never below. A delivery answered RETRY is
// delivered again, as the sidecar would.
func TestConcurrentCharges(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d instances", instances), func(t *testing.T) {
			fake := &daprfake.Client{}
			var srvs []http.Handler
			for i := 0; i < instances; i++ {
				srvs = append(srvs, newServer(quiet(), fmt.Sprint(i), "payments", testBank(fake)))
			}
			require.Equal(t, 200, do(t, srvs[0], "PUT", "/accounts/c1", jsonCT, `{"balanceCents":500}`).Code)
			var wg sync.WaitGroup
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					orderID := fmt.Sprintf("o%d", i)
					body := cloudEvent(t, events.StockReserved, orderID, stock(orderID, "c1", 100))
					for attempt := 0; attempt < 20; attempt++ {
						if daprfake.DeliverInBatch(t, srvs[(i+attempt)%instances], pathStockReserved, body) == events.StatusSuccess {
							return
						}
					}
					t.Errorf("order %s never processed", orderID)
				}()
			}
			wg.Wait()
			count := map[string]int{}
			for _, o := range published(t, fake) {
				count[o.Type]++
			}
			assert.Equal(t, map[string]int{events.PaymentSucceeded: 5, events.PaymentFailed: 15}, count)
			assert.Equal(t, int64(0), balanceOf(t, fake, "c1"))
		})
	}
}

// TestAnotherInstanceChargesFirst lets another instance spend the balance between
// this instance's read and its write: the compare-and-swap fails, the account is
// read again and this charge is declined, never overdrawn.
func TestAnotherInstanceChargesFirst(t *testing.T) {
	fake := &daprfake.Client{}
	other := newServer(quiet(), "b", "payments", testBank(fake))
	require.Equal(t, 200, do(t, other, "PUT", "/accounts/c1", jsonCT, `{"balanceCents":100}`).Code)
	store := &daprfake.Interloper{Client: fake, Key: accountKey("c1"), Before: func() {
		assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, other, pathStockReserved, cloudEvent(t, events.StockReserved, "o2", stock("o2", "c1", 100))))
	}}
	this := newServer(quiet(), "a", "payments", testBank(store))
	assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, this, pathStockReserved, cloudEvent(t, events.StockReserved, "o1", stock("o1", "c1", 100))))
	assert.Equal(t, []outcome{succeeded("o2", "c1", 100), failed("o1", "c1", 100)}, published(t, fake))
	assert.Equal(t, int64(0), balanceOf(t, fake, "c1"))
}

func TestSubscriptionsAndDeadLetters(t *testing.T) {
	srv, _ := setup(t, nil)
	rec := do(t, srv, "GET", "/dapr/subscribe", "", "")
	require.Equal(t, 200, rec.Code)
	assert.JSONEq(t, `[
		{"pubsubname":"pubsub","topic":"inventory","deadLetterTopic":"payments-deadletter","routes":{
			"rules":[{"match":"event.type == \"daprshop.stock.reserved.v1\"","path":"/events/stock-reserved"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":20}},
		{"pubsubname":"pubsub","topic":"order-cancelled","deadLetterTopic":"payments-deadletter","routes":{
			"rules":[{"match":"event.type == \"daprshop.order.cancelled.v1\"","path":"/events/order-cancelled"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":20}},
		{"pubsubname":"pubsub","topic":"payments-deadletter","routes":{"default":"/events/deadletter"}}]`, rec.Body.String())

	assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOtherEvent, cloudEvent(t, events.StockRejected, "o1", stock("o1", "c1", 1))))
	assert.Equal(t, events.StatusSuccess, daprfake.Deliver(t, srv, pathDeadLetter, cloudEvent(t, events.StockReserved, "o9", stock("o9", "c1", 1))))
	rec = do(t, srv, "GET", "/deadletters", "", "")
	assert.JSONEq(t, `{"count":1,"recent":[{"id":"o9/daprshop.stock.reserved.v1","type":"daprshop.stock.reserved.v1","topic":"inventory","processed":true}]}`, rec.Body.String())
}

// TestDeadEventsAreProcessedAgain delivers to the dead-letter route a
// reservation that died of a failure that has passed since: it is charged, as
// its own route would have done, and while the store still fails it is
// answered RETRY and not counted yet.
func TestDeadEventsAreProcessedAgain(t *testing.T) {
	srv, fake := setup(t, map[string]int64{"c1": 1000})
	reservedEvent := cloudEvent(t, events.StockReserved, "o1", stock("o1", "c1", 300))

	daprfake.FailOn("GetBulkState")(fake)
	assert.Equal(t, events.StatusRetry, daprfake.Deliver(t, srv, pathDeadLetter, reservedEvent))
	fake.Hook = nil
	assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"), "nothing charged")

	assert.Equal(t, events.StatusSuccess, daprfake.Deliver(t, srv, pathDeadLetter, reservedEvent))
	assert.Equal(t, int64(700), balanceOf(t, fake, "c1"))
	assert.Equal(t, []outcome{succeeded("o1", "c1", 300)}, published(t, fake))
	assert.Equal(t, events.StatusSuccess, daprfake.Deliver(t, srv, pathDeadLetter, reservedEvent))
	assert.Equal(t, int64(700), balanceOf(t, fake, "c1"), "charged once")

	rec := do(t, srv, "GET", "/deadletters", "", "")
	assert.JSONEq(t, `{"count":2,"recent":[
		{"id":"o1/daprshop.stock.reserved.v1","type":"daprshop.stock.reserved.v1","topic":"inventory","processed":true},
		{"id":"o1/daprshop.stock.reserved.v1","type":"daprshop.stock.reserved.v1","topic":"inventory","processed":true}]}`, rec.Body.String())
}

// cancelledOrder is the OrderCancelled data of order orderID of customerID.
func cancelledOrder(orderID, customerID string, total int64, reason string) events.Order {
	return events.Order{OrderID: orderID, CustomerID: customerID, Status: events.StatusCancelled, Reason: reason,
		Lines: []events.Line{{ProductID: "apple", Quantity: 1, PriceCents: total}}, TotalCents: total, Currency: "EUR"}
}

func TestOrderCancelled(t *testing.T) {
	reserve := func(orderID string, total int64) string {
		return cloudEvent(t, events.StockReserved, orderID, stock(orderID, "c1", total))
	}
	cancel := func(orderID string, total int64) string {
		return cloudEvent(t, events.OrderCancelled, orderID, cancelledOrder(orderID, "c1", total, events.ReasonProcessing))
	}
	t.Run("a charge is given back once, however often the cancellation comes", func(t *testing.T) {
		srv, fake := setup(t, map[string]int64{"c1": 1000})
		require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, reserve("o1", 300)))
		require.Equal(t, int64(700), balanceOf(t, fake, "c1"))
		for range 3 {
			assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cancel("o1", 300)))
		}
		assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"))
		assert.Equal(t, statusRefunded, chargeStatus(t, fake, "o1"))
		assert.Equal(t, []outcome{succeeded("o1", "c1", 300)}, published(t, fake), "a refund announces nothing")

		// A late redelivery of the reservation charges nothing again.
		assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, reserve("o1", 300)))
		assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"))
	})
	t.Run("a declined charge has nothing to give back", func(t *testing.T) {
		srv, fake := setup(t, map[string]int64{"c1": 100})
		require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, reserve("o1", 300)))
		assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cancel("o1", 300)))
		assert.Equal(t, int64(100), balanceOf(t, fake, "c1"))
		assert.Equal(t, statusFailed, chargeStatus(t, fake, "o1"))
	})
	t.Run("a cancellation before the charge keeps a late reservation from charging", func(t *testing.T) {
		srv, fake := setup(t, map[string]int64{"c1": 1000})
		assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cancel("o1", 300)))
		assert.Equal(t, statusCancelled, chargeStatus(t, fake, "o1"))
		assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, reserve("o1", 300)))
		assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"))
		pubs := published(t, fake)
		require.Len(t, pubs, 1)
		assert.Equal(t, events.PaymentFailed, pubs[0].Type, "the order is told it was not charged")
	})
	t.Run("a debit made as another instance records the cancellation is given back, once", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			// during is the key before whose first write by this instance the
			// other records the cancellation; without one, the other records it
			// after this instance's failed delivery.
			during string
			// failKey, when set, fails the failNth-th write of it once.
			failKey string
			failNth int
		}{
			{name: "given back in the same delivery", during: accountKey("c1")},
			{name: "the give-back fails: given back when delivered again", during: accountKey("c1"),
				failKey: accountKey("c1"), failNth: 2},
			{name: "the charge's record fails: given back when delivered again",
				failKey: chargeKey("o1"), failNth: 1},
		} {
			t.Run(tt.name, func(t *testing.T) {
				fake := &daprfake.Client{}
				other := newServer(quiet(), "b", "payments", testBank(fake))
				require.Equal(t, 200, do(t, other, "PUT", "/accounts/c1", jsonCT, `{"balanceCents":1000}`).Code)
				cancelThere := func() {
					assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, other, pathOrderCancelled, cancel("o1", 300)))
				}
				var store sidecar = fake
				if tt.during != "" {
					store = &daprfake.Interloper{Client: fake, Key: tt.during, Before: cancelThere}
				}
				this := newServer(quiet(), "a", "payments", testBank(store))
				if tt.failKey != "" {
					fake.Hook = failNth("SaveState", tt.failKey, tt.failNth)
					assert.Equal(t, events.StatusRetry, daprfake.DeliverInBatch(t, this, pathStockReserved, reserve("o1", 300)))
					fake.Hook = nil
					var a account
					data, _ := fake.Value(testStore, accountKey("c1"))
					require.NoError(t, json.Unmarshal(data, &a))
					require.Equal(t, int64(700), a.BalanceCents, "the debit is on the account")
					if tt.during == "" {
						cancelThere()
					}
				}
				for range 2 {
					assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, this, pathStockReserved, reserve("o1", 300)))
				}
				assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"))
				assert.Equal(t, statusCancelled, chargeStatus(t, fake, "o1"), "the cancellation's record stands")
				for _, p := range published(t, fake) {
					assert.Equal(t, events.PaymentFailed, p.Type, "the order is told it was not charged")
				}
			})
		}
	})
	t.Run("a refunded charge's mark left on the account gives nothing back again", func(t *testing.T) {
		fake := &daprfake.Client{}
		charger := newServer(quiet(), "a", "payments", testBank(fake))
		require.Equal(t, 200, do(t, charger, "PUT", "/accounts/c1", jsonCT, `{"balanceCents":1000}`).Code)
		require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, charger, pathStockReserved, reserve("o1", 300)))
		// Another instance, which never heard of the charge's mark, refunds it:
		// the mark stays, as it would when the charging instance stopped.
		refunder := newServer(quiet(), "b", "payments", testBank(fake))
		require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, refunder, pathOrderCancelled, cancel("o1", 300)))
		require.Equal(t, int64(1000), balanceOf(t, fake, "c1"))
		var a account
		data, _ := fake.Value(testStore, accountKey("c1"))
		require.NoError(t, json.Unmarshal(data, &a))
		require.Contains(t, a.Pending, chargeOp("o1"))

		assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, refunder, pathStockReserved, reserve("o1", 300)))
		assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"))
		assert.Equal(t, statusRefunded, chargeStatus(t, fake, "o1"))
	})
	t.Run("store down: retried, and given back once afterwards", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			fail func(method, key string) error
			// mid is the charge's status after the failed attempt, when the
			// test checks it: the credit went through, the record did not.
			mid string
		}{
			{name: "GetState", fail: failOn("GetState", "")},
			{name: "SaveState", fail: failOn("SaveState", "")},
			{name: "credited, but the record could not say so: credited once", fail: failOn("SaveState", chargeKey("o1")), mid: statusSucceeded},
		} {
			t.Run(tt.name, func(t *testing.T) {
				srv, fake := setup(t, map[string]int64{"c1": 1000})
				require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathStockReserved, reserve("o1", 300)))
				fake.Hook = tt.fail
				assert.Equal(t, events.StatusRetry, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cancel("o1", 300)))
				if tt.mid != "" {
					assert.Equal(t, tt.mid, chargeStatus(t, fake, "o1"))
				}
				fake.Hook = nil
				assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cancel("o1", 300)))
				assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"), "the mark kept the credit from happening twice")
				assert.Equal(t, statusRefunded, chargeStatus(t, fake, "o1"))
			})
		}
	})
	t.Run("poison", func(t *testing.T) {
		srv, fake := setup(t, map[string]int64{"c1": 1000})
		for name, data := range map[string]any{
			"no order id":   cancelledOrder("", "c1", 300, ""),
			"bad order id":  cancelledOrder("o 1", "c1", 300, ""),
			"no customer":   cancelledOrder("o1", "", 300, ""),
			"not an object": json.RawMessage(`42`),
		} {
			assert.Equal(t, events.StatusDrop, daprfake.DeliverInBatch(t, srv, pathOrderCancelled,
				cloudEvent(t, events.OrderCancelled, "o1", data)), name)
		}
		assert.Equal(t, int64(1000), balanceOf(t, fake, "c1"))
		assert.Empty(t, chargeStatus(t, fake, "o1"))
	})
}

// failOn is a fake hook that fails method on every key, or on key alone when
// it is not empty.
func failOn(method, key string) func(string, string) error {
	return func(m, k string) error {
		if m == method && (key == "" || k == key) {
			return errors.New("connection refused")
		}
		return nil
	}
}

// failNth is a fake hook that fails the nth call of method on key, and no other.
func failNth(method, key string, n int) func(string, string) error {
	var calls atomic.Int32
	return func(m, k string) error {
		if m == method && k == key && int(calls.Add(1)) == n {
			return errors.New("connection refused")
		}
		return nil
	}
}

func TestListCharges(t *testing.T) {
	others := make([]string, maxLookup-1)
	for i := range others {
		others[i] = fmt.Sprintf("x%d", i)
	}
	const o1 = `{"orderId":"o1","customerId":"c1","amountCents":300,"currency":"EUR","status":"succeeded"}`
	cases := []lookuptest.Case{
		{Name: "found and not, in the order asked, each once", Path: "/charges?orderIds=o3,nope,o1,o3&orderIds=o2,o4,o1", Status: 200,
			Want: `[{"orderId":"o3","customerId":"c3","amountCents":100,"currency":"EUR","status":"refunded"},
				` + o1 + `,
				{"orderId":"o2","customerId":"c2","amountCents":5000,"currency":"EUR","status":"failed","reason":"payment_declined"},
				{"orderId":"o4","customerId":"c4","amountCents":700,"currency":"USD","status":"cancelled","reason":"out_of_stock"}]`},
		{Name: "one", Path: "/charges?orderIds=o1", Status: 200, Want: `[` + o1 + `]`},
		{Name: "none found", Path: "/charges?orderIds=nope,o9", Status: 200, Want: `[]`},
		{Name: "the limit", Path: "/charges?orderIds=" + strings.Join(others, ",") + ",o1", Status: 200, Want: `[` + o1 + `]`},
		{Name: "duplicates count once", Path: "/charges?orderIds=" + strings.Repeat("o1,", maxLookup) + "o1", Status: 200, Want: `[` + o1 + `]`},
		{Name: "corrupt record", Setup: func(f *daprfake.Client) { f.Put(testStore, chargeKey("o2"), []byte("{")) },
			Path: "/charges?orderIds=o1,o2", Status: 500, Detail: "internal error"},
	}
	lookuptest.Lookup{
		Store:     testStore,
		KeyPrefix: "charge-",
		Seed: func(fake *daprfake.Client) {
			fake.Put(testStore, chargeKey("o1"), charge{OrderID: "o1", CustomerID: "c1", AmountCents: 300, Currency: "EUR", Status: statusSucceeded})
			fake.Put(testStore, chargeKey("o2"), charge{OrderID: "o2", CustomerID: "c2", AmountCents: 5000, Currency: "EUR",
				Status: statusFailed, Reason: events.ReasonPaymentDeclined})
			fake.Put(testStore, chargeKey("o3"), charge{OrderID: "o3", CustomerID: "c3", AmountCents: 100, Currency: "EUR", Status: statusRefunded})
			fake.Put(testStore, chargeKey("o4"), charge{OrderID: "o4", CustomerID: "c4", AmountCents: 700, Currency: "USD",
				Status: statusCancelled, Reason: events.ReasonOutOfStock})
			fake.Put(testStore, accountKey("c1"), account{CustomerID: "c1", BalanceCents: 700})
		},
		Server: func(fake *daprfake.Client) http.Handler {
			return newServer(quiet(), "payments-1", "payments", testBank(fake))
		},
	}.Run(t, append(cases, lookuptest.Refusals("/charges", maxLookup)...))
}
