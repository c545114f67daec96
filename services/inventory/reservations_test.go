package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/lookuptest"
)

// cloudEvent returns the body the sidecar delivers for an order event of type typ
// about orderID carrying data (a value, or a json.RawMessage as it is).
func cloudEvent(t *testing.T, typ, orderID string, data any) string {
	t.Helper()
	return daprfake.CloudEvent(t, events.OrderTopic(typ), typ, orderID, data)
}

func order(orderID string, lines ...events.Line) events.Order {
	var total int64
	for _, ln := range lines {
		total += ln.Quantity * 100
	}
	return events.Order{OrderID: orderID, CustomerID: "c1", Status: events.StatusPending, Lines: lines,
		TotalCents: total, Currency: "EUR"}
}

func ln(productID string, quantity int64) events.Line {
	return events.Line{ProductID: productID, Quantity: quantity, PriceCents: 100}
}

// outcome is what a test checks of one published event.
type outcome struct {
	Type, ID string
	Stock    events.Stock
}

func published(t *testing.T, fake *daprfake.Client) []outcome {
	t.Helper()
	var out []outcome
	for _, e := range fake.Published() {
		require.Equal(t, events.TopicInventory, e.Topic)
		require.Equal(t, events.PubSub, e.PubSub)
		var s events.Stock
		require.NoError(t, json.Unmarshal(e.Data, &s))
		out = append(out, outcome{Type: e.Type(), ID: e.ID(), Stock: s})
	}
	return out
}

func reserved(orderID string, total int64) outcome {
	return outcome{Type: events.StockReserved, ID: events.EventID(orderID, events.StockReserved),
		Stock: events.Stock{OrderID: orderID, CustomerID: "c1", TotalCents: total, Currency: "EUR"}}
}

func rejected(orderID string, total int64, reason string) outcome {
	return outcome{Type: events.StockRejected, ID: events.EventID(orderID, events.StockRejected),
		Stock: events.Stock{OrderID: orderID, CustomerID: "c1", TotalCents: total, Currency: "EUR", Reason: reason}}
}

func released(orderID string, total int64, reason string) outcome {
	return outcome{Type: events.StockReleased, ID: events.EventID(orderID, events.StockReleased),
		Stock: events.Stock{OrderID: orderID, CustomerID: "c1", TotalCents: total, Currency: "EUR", Reason: reason}}
}

// available returns the stock of each product, and checks that every mark left
// on a record belongs to an operation whose outcome is recorded: the marks of
// recorded operations go with the next change of the stock.
func available(t *testing.T, fake *daprfake.Client, productIDs ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, id := range productIDs {
		s := stockOf(t, fake, id)
		for op := range s.Applied {
			kind, orderID, _ := strings.Cut(op, "/")
			status := statusOf(t, fake, orderID)
			recorded := status == statusReserved || status == statusReleased
			if kind == "release" {
				recorded = status == statusReleased
			}
			assert.True(t, recorded, "mark %s left on %s, whose reservation is %q", op, id, status)
		}
		out[id] = s.Available
	}
	return out
}

func statusOf(t *testing.T, fake *daprfake.Client, orderID string) string {
	t.Helper()
	data, ok := fake.Value(testStore, reservationKey(orderID))
	if !ok {
		return ""
	}
	var rec reservation
	require.NoError(t, json.Unmarshal(data, &rec))
	return rec.Status
}

func TestOrderPlaced(t *testing.T) {
	stock := map[string]int64{"apple": 5, "tea": 2}
	tests := []struct {
		name   string
		setup  func(*daprfake.Client)
		data   any
		status string
		want   []outcome
		stock  map[string]int64
		record string
	}{
		{name: "reserves every line", data: order("o1", ln("apple", 2), ln("tea", 2)), status: events.StatusSuccess,
			want: []outcome{reserved("o1", 400)}, stock: map[string]int64{"apple": 3, "tea": 0}, record: statusReserved},
		{name: "outbox delivers data as a JSON string", data: mustString(t, order("o1", ln("apple", 1))), status: events.StatusSuccess,
			want: []outcome{reserved("o1", 100)}, stock: map[string]int64{"apple": 4, "tea": 2}, record: statusReserved},
		{name: "lines of one product add up", data: order("o1", ln("apple", 3), ln("apple", 3)), status: events.StatusSuccess,
			want: []outcome{rejected("o1", 600, events.ReasonOutOfStock)}, stock: stock, record: statusRejected},
		{name: "one line short rejects all", data: order("o1", ln("apple", 1), ln("tea", 3)), status: events.StatusSuccess,
			want: []outcome{rejected("o1", 400, events.ReasonOutOfStock)}, stock: stock, record: statusRejected},
		{name: "unknown product", data: order("o1", ln("apple", 1), ln("pear", 1)), status: events.StatusSuccess,
			want: []outcome{rejected("o1", 200, events.ReasonUnknownProduct)}, stock: stock, record: statusRejected},
		{name: "unknown product wins over out of stock", data: order("o1", ln("apple", 9), ln("pear", 1)), status: events.StatusSuccess,
			want: []outcome{rejected("o1", 1000, events.ReasonUnknownProduct)}, stock: stock, record: statusRejected},
		{name: "exactly the last units", data: order("o1", ln("apple", 5)), status: events.StatusSuccess,
			want: []outcome{reserved("o1", 500)}, stock: map[string]int64{"apple": 0, "tea": 2}, record: statusReserved},

		{name: "poison: no order id", data: order("", ln("apple", 1)), status: events.StatusDrop, stock: stock},
		{name: "poison: bad order id", data: order("o/1", ln("apple", 1)), status: events.StatusDrop, stock: stock},
		{name: "poison: no customer", data: func() events.Order { o := order("o1", ln("apple", 1)); o.CustomerID = ""; return o }(),
			status: events.StatusDrop, stock: stock},
		{name: "poison: no lines", data: order("o1"), status: events.StatusDrop, stock: stock},
		{name: "poison: zero quantity", data: order("o1", ln("apple", 0)), status: events.StatusDrop, stock: stock},
		{name: "poison: negative quantity", data: order("o1", ln("apple", 2), ln("tea", -1)), status: events.StatusDrop, stock: stock},
		{name: "poison: bad product id", data: order("o1", ln("a b", 1)), status: events.StatusDrop, stock: stock},
		{name: "poison: no total", data: func() events.Order { o := order("o1", ln("apple", 1)); o.TotalCents = 0; return o }(),
			status: events.StatusDrop, stock: stock},
		{name: "poison: unknown field", data: json.RawMessage(`{"orderId":"o1","customerId":"c1","lines":[],"colour":"red"}`),
			status: events.StatusDrop, stock: stock},
		{name: "poison: data not an object", data: json.RawMessage(`[1,2]`), status: events.StatusDrop, stock: stock},

		{name: "single reads down: a placement reads in bulk only", setup: daprfake.FailOn("GetState"), data: order("o1", ln("apple", 1)),
			status: events.StatusSuccess, stock: map[string]int64{"apple": 4, "tea": 2}, record: statusReserved, want: []outcome{reserved("o1", 100)}},
		{name: "bulk read down: retried, nothing changed", setup: daprfake.FailOn("GetBulkState"), data: order("o1", ln("apple", 1)),
			status: events.StatusRetry, stock: stock},
		{name: "writes down: retried, nothing changed", setup: daprfake.FailOn("SaveState"), data: order("o1", ln("apple", 1)),
			status: events.StatusRetry, stock: stock},
		{name: "broker down: retried after the effect", setup: daprfake.FailOn("PublishEvent"), data: order("o1", ln("apple", 1)),
			status: events.StatusRetry, stock: map[string]int64{"apple": 4, "tea": 2}, record: statusReserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, stock)
			if tt.setup != nil {
				tt.setup(fake)
			}
			got := daprfake.DeliverInBatch(t, srv, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", tt.data))
			assert.Equal(t, tt.status, got)
			fake.Hook = nil
			assert.Equal(t, tt.want, published(t, fake))
			assert.Equal(t, tt.stock, available(t, fake, "apple", "tea"))
			assert.Equal(t, tt.record, statusOf(t, fake, "o1"))
		})
	}
}

func mustString(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	s, err := json.Marshal(string(b))
	require.NoError(t, err)
	return s
}

// TestOrderPlacedRedelivered delivers the same OrderPlaced again after each way
// the first delivery can end: the effect happens once, and the recorded outcome is
// published again under the same id.
func TestOrderPlacedRedelivered(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		fail  func(method, key string) error // for the first delivery only
		first string
		order events.Order
		want  []outcome // after both deliveries
		stock int64
	}{
		{name: "after success", order: order("o1", ln("apple", 2)), first: events.StatusSuccess,
			want: []outcome{reserved("o1", 200), reserved("o1", 200)}, stock: 3},
		{name: "after rejection", order: order("o1", ln("apple", 9)), first: events.StatusSuccess,
			want: []outcome{rejected("o1", 900, events.ReasonOutOfStock), rejected("o1", 900, events.ReasonOutOfStock)}, stock: 5},
		{name: "after the publish failed", order: order("o1", ln("apple", 2)), first: events.StatusRetry,
			fail: func(m, _ string) error {
				if m == "PublishEvent" {
					return boom
				}
				return nil
			}, want: []outcome{reserved("o1", 200)}, stock: 3},
		{name: "after the record failed, stock already held", order: order("o1", ln("apple", 2), ln("tea", 1)), first: events.StatusRetry,
			fail: func(m, key string) error {
				if m == "SaveState" && key == reservationKey("o1") {
					return boom
				}
				return nil
			}, want: []outcome{reserved("o1", 300)}, stock: 3},
		{name: "after the second line failed", order: order("o1", ln("apple", 2), ln("tea", 1)), first: events.StatusRetry,
			fail: func(m, key string) error {
				if m == "SaveState" && key == stockKey("tea") {
					return boom
				}
				return nil
			}, want: []outcome{reserved("o1", 300)}, stock: 3},
		{name: "after a rejection failed to record, holds given back", order: order("o1", ln("apple", 2), ln("tea", 9)), first: events.StatusRetry,
			fail: func(m, key string) error {
				if m == "SaveState" && key == reservationKey("o1") {
					return boom
				}
				return nil
			}, want: []outcome{rejected("o1", 1100, events.ReasonOutOfStock)}, stock: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, map[string]int64{"apple": 5, "tea": 2})
			fake.Hook = tt.fail
			body := cloudEvent(t, events.OrderPlaced, "o1", tt.order)
			assert.Equal(t, tt.first, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, body))
			fake.Hook = nil
			assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, body))
			assert.Equal(t, tt.want, published(t, fake))
			assert.Equal(t, tt.stock, available(t, fake, "apple")["apple"])
		})
	}
}

// TestMarkedLineIsNotTakenTwice starts from the state an attempt leaves when it
// took a line and then died: the retry takes the other line only.
func TestMarkedLineIsNotTakenTwice(t *testing.T) {
	srv, fake := setup(t, nil)
	fake.Put(testStore, stockKey("apple"), stockRecord{ProductID: "apple", Available: 3, Applied: map[string]int64{"reserve/o1": -2}})
	fake.Put(testStore, stockKey("tea"), stockRecord{ProductID: "tea", Available: 1})
	body := cloudEvent(t, events.OrderPlaced, "o1", order("o1", ln("apple", 2), ln("tea", 1)))
	assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, body))
	assert.Equal(t, map[string]int64{"apple": 3, "tea": 0}, available(t, fake, "apple", "tea"))
}

// TestHoldsLeftByAnInterruptedAttemptGoBack: an attempt held lines and was cut
// short before it recorded them, and the order was then recorded as holding
// nothing (cancelled, or rejected by another attempt). The next delivery of the
// placement gives the lines back, once.
func TestHoldsLeftByAnInterruptedAttemptGoBack(t *testing.T) {
	o1 := order("o1", ln("apple", 2), ln("tea", 1))
	cancelled := o1
	cancelled.Status, cancelled.Reason = events.StatusCancelled, events.ReasonProcessing
	failSave := func(key string) func(string, string) error {
		return func(m, k string) error {
			if m == "SaveState" && k == key {
				return errors.New("boom")
			}
			return nil
		}
	}
	for _, tt := range []struct {
		name string
		// interrupt leaves the holds of o1 on the stock, unrecorded, and then
		// records o1 as holding nothing.
		interrupt func(t *testing.T, srv http.Handler, fake *daprfake.Client)
	}{
		{name: "every line held, the record failed, then the order cancelled", interrupt: func(t *testing.T, srv http.Handler, fake *daprfake.Client) {
			fake.Hook = failSave(reservationKey("o1"))
			require.Equal(t, events.StatusRetry, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", o1)))
			fake.Hook = nil
			require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cloudEvent(t, events.OrderCancelled, "o1", cancelled)))
		}},
		{name: "one line held, the next failed, then the order cancelled", interrupt: func(t *testing.T, srv http.Handler, fake *daprfake.Client) {
			fake.Hook = failSave(stockKey("tea"))
			require.Equal(t, events.StatusRetry, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", o1)))
			fake.Hook = nil
			require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cloudEvent(t, events.OrderCancelled, "o1", cancelled)))
		}},
		{name: "a line held, and another attempt recorded a rejection", interrupt: func(t *testing.T, _ http.Handler, fake *daprfake.Client) {
			fake.Put(testStore, stockKey("apple"), stockRecord{ProductID: "apple", Available: 3, Applied: map[string]int64{reserveOp("o1"): -2}})
			fake.Put(testStore, reservationKey("o1"), reservation{OrderID: "o1", CustomerID: "c1", TotalCents: 300, Currency: "EUR",
				Lines: []line{{ProductID: "apple", Quantity: 2}, {ProductID: "tea", Quantity: 1}}, Status: statusRejected, Reason: events.ReasonOutOfStock})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, map[string]int64{"apple": 5, "tea": 2})
			tt.interrupt(t, srv, fake)
			require.Equal(t, int64(3), stockOf(t, fake, "apple").Available, "the interrupted attempt's hold is on the stock")
			before := len(fake.Published())
			for range 2 {
				assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", o1)))
			}
			assert.Equal(t, map[string]int64{"apple": 5, "tea": 2}, available(t, fake, "apple", "tea"))
			for _, p := range published(t, fake)[before:] {
				assert.Equal(t, events.StockRejected, p.Type, "only the recorded rejection is announced again")
			}
		})
	}
}

func TestOrderCancelled(t *testing.T) {
	cancel := func(o events.Order) events.Order {
		o.Status, o.Reason = events.StatusCancelled, events.ReasonPaymentDeclined
		return o
	}
	o1 := order("o1", ln("apple", 2), ln("tea", 1))
	tests := []struct {
		name    string
		placed  *events.Order // delivered first, if set
		setup   func(*daprfake.Client)
		data    any
		status  string
		want    []outcome // published after the placement's outcome
		stock   map[string]int64
		record  string
		replays int // further deliveries of the same cancellation
	}{
		{name: "releases a reservation", placed: &o1, data: cancel(o1), status: events.StatusSuccess,
			want: []outcome{released("o1", 300, events.ReasonPaymentDeclined)}, stock: map[string]int64{"apple": 5, "tea": 2}, record: statusReleased},
		{name: "releases once however often delivered", placed: &o1, data: cancel(o1), status: events.StatusSuccess, replays: 2,
			want: []outcome{released("o1", 300, events.ReasonPaymentDeclined), released("o1", 300, events.ReasonPaymentDeclined),
				released("o1", 300, events.ReasonPaymentDeclined)}, stock: map[string]int64{"apple": 5, "tea": 2}, record: statusReleased},
		{name: "nothing to release after a rejection", placed: ptr(order("o1", ln("tea", 5))), data: cancel(order("o1", ln("tea", 5))),
			status: events.StatusSuccess, stock: map[string]int64{"apple": 5, "tea": 2}, record: statusRejected},
		{name: "cancellation before placement is recorded", data: cancel(o1), status: events.StatusSuccess,
			stock: map[string]int64{"apple": 5, "tea": 2}, record: statusCancelled},
		{name: "cancellation without lines", placed: &o1, data: events.Order{OrderID: "o1", CustomerID: "c1", Status: events.StatusCancelled},
			status: events.StatusSuccess, want: []outcome{released("o1", 300, "")}, stock: map[string]int64{"apple": 5, "tea": 2}, record: statusReleased},
		{name: "poison: no order id", placed: &o1, data: cancel(order("")), status: events.StatusDrop,
			stock: map[string]int64{"apple": 3, "tea": 1}, record: statusReserved},
		{name: "poison: bad product id", placed: &o1, data: cancel(order("o1", ln("a/b", 1))), status: events.StatusDrop,
			stock: map[string]int64{"apple": 3, "tea": 1}, record: statusReserved},
		{name: "store down: retried, nothing changed", placed: &o1, setup: daprfake.FailOn("GetState"), data: cancel(o1), status: events.StatusRetry,
			stock: map[string]int64{"apple": 3, "tea": 1}, record: statusReserved},
		{name: "broker down: retried after the effect", placed: &o1, setup: daprfake.FailOn("PublishEvent"), data: cancel(o1), status: events.StatusRetry,
			stock: map[string]int64{"apple": 5, "tea": 2}, record: statusReleased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup(t, map[string]int64{"apple": 5, "tea": 2})
			var before []outcome
			if tt.placed != nil {
				require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", *tt.placed)))
				before = published(t, fake)
			}
			if tt.setup != nil {
				tt.setup(fake)
			}
			body := cloudEvent(t, events.OrderCancelled, "o1", tt.data)
			assert.Equal(t, tt.status, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, body))
			fake.Hook = nil
			for i := 0; i < tt.replays; i++ {
				assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, body))
			}
			after := published(t, fake)[len(before):]
			if len(tt.want) == 0 {
				assert.Empty(t, after)
			} else {
				assert.Equal(t, tt.want, after)
			}
			assert.Equal(t, tt.stock, available(t, fake, "apple", "tea"))
			assert.Equal(t, tt.record, statusOf(t, fake, "o1"))
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestReleaseAfterPublishFailureHappensOnce(t *testing.T) {
	srv, fake := setup(t, map[string]int64{"apple": 5})
	o := order("o1", ln("apple", 2))
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", o)))
	daprfake.FailOn("PublishEvent")(fake)
	body := cloudEvent(t, events.OrderCancelled, "o1", o)
	require.Equal(t, events.StatusRetry, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, body))
	fake.Hook = nil
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, body))
	assert.Equal(t, int64(5), available(t, fake, "apple")["apple"])
	assert.Equal(t, []outcome{reserved("o1", 200), released("o1", 200, "")}, published(t, fake))
}

func TestLatePlacementOfACancelledOrder(t *testing.T) {
	srv, fake := setup(t, map[string]int64{"apple": 5})
	o := order("o1", ln("apple", 2))
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled, cloudEvent(t, events.OrderCancelled, "o1", o)))
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", o)))
	assert.Equal(t, int64(5), available(t, fake, "apple")["apple"], "a cancelled order reserves nothing")
	assert.Empty(t, published(t, fake))
}

// TestLastUnits places 20 orders at once for the last 5 units, on one instance and
// on two instances that share the store but not their locks: exactly 5 are
// reserved and the stock ends at 0, never below. An order whose delivery is
// answered RETRY is delivered again, as the sidecar would.
func TestLastUnits(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d instances", instances), func(t *testing.T) {
			fake := &daprfake.Client{}
			var srvs []http.Handler
			for i := 0; i < instances; i++ {
				srvs = append(srvs, newServer(quiet(), fmt.Sprint(i), "inventory", testLedger(fake)))
			}
			require.Equal(t, 200, do(t, srvs[0], "PUT", "/stock/apple", jsonCT, `{"available":5}`).Code)
			require.Equal(t, 200, do(t, srvs[0], "PUT", "/stock/tea", jsonCT, `{"available":50}`).Code)

			var wg sync.WaitGroup
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					orderID := fmt.Sprintf("o%d", i)
					body := cloudEvent(t, events.OrderPlaced, orderID, order(orderID, ln("apple", 1), ln("tea", 1)))
					for attempt := 0; attempt < 20; attempt++ {
						if daprfake.DeliverInBatch(t, srvs[(i+attempt)%instances], pathOrderPlaced, body) == events.StatusSuccess {
							return
						}
					}
					t.Errorf("order %s never processed", orderID)
				}()
			}
			wg.Wait()

			count := map[string]int{}
			for _, o := range published(t, fake) {
				count[o.Type+" "+o.Stock.Reason]++
			}
			assert.Equal(t, map[string]int{events.StockReserved + " ": 5, events.StockRejected + " " + events.ReasonOutOfStock: 15}, count)
			assert.Equal(t, map[string]int64{"apple": 0, "tea": 45}, available(t, fake, "apple", "tea"))
		})
	}
}

// TestMarksGoWithTheNextReservation shows what a reservation costs the store: a
// recorded reservation's marks are not removed by writes of their own but by the
// next change of each stock, here the next order's.
func TestMarksGoWithTheNextReservation(t *testing.T) {
	srv, fake := setup(t, map[string]int64{"apple": 10, "tea": 10})
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced,
		cloudEvent(t, events.OrderPlaced, "o1", order("o1", ln("apple", 1), ln("tea", 1)))))
	assert.Equal(t, map[string]int64{"reserve/o1": -1}, stockOf(t, fake, "apple").Applied)

	calls := map[string]int{}
	fake.Hook = func(method, _ string) error {
		calls[method]++
		return nil
	}
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderPlaced,
		cloudEvent(t, events.OrderPlaced, "o2", order("o2", ln("apple", 2)))))
	// One bulk read of the reservation and the stock (the fake counts its two
	// keys), the stock's compare-and-swap, the record, the publish.
	assert.Equal(t, map[string]int{"GetBulkState": 2, "SaveState": 2, "PublishEvent": 1}, calls)
	assert.Equal(t, map[string]int64{"reserve/o2": -2}, stockOf(t, fake, "apple").Applied, "o1's mark went with o2's change")
	assert.Equal(t, map[string]int64{"reserve/o1": -1}, stockOf(t, fake, "tea").Applied, "tea has not changed since")
	assert.Equal(t, map[string]int64{"apple": 7, "tea": 9}, available(t, fake, "apple", "tea"))
}

func TestSubscriptionsAndDeadLetters(t *testing.T) {
	srv, _ := setup(t, nil)
	rec := do(t, srv, "GET", "/dapr/subscribe", "", "")
	require.Equal(t, 200, rec.Code)
	assert.JSONEq(t, `[
		{"pubsubname":"pubsub","topic":"order-placed","deadLetterTopic":"inventory-deadletter","routes":{
			"rules":[{"match":"event.type == \"daprshop.order.placed.v1\"","path":"/events/order-placed"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":20}},
		{"pubsubname":"pubsub","topic":"order-cancelled","deadLetterTopic":"inventory-deadletter","routes":{
			"rules":[{"match":"event.type == \"daprshop.order.cancelled.v1\"","path":"/events/order-cancelled"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":20}},
		{"pubsubname":"pubsub","topic":"inventory-deadletter","routes":{"default":"/events/deadletter"}}]`, rec.Body.String())

	assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOtherEvent, cloudEvent(t, events.OrderConfirmed, "o1", order("o1"))))
	assert.Equal(t, events.StatusSuccess, daprfake.Deliver(t, srv, pathDeadLetter, cloudEvent(t, events.OrderPlaced, "o9", order("o9"))))
	rec = do(t, srv, "GET", "/deadletters", "", "")
	assert.JSONEq(t, `{"count":1,"recent":[{"id":"o9/daprshop.order.placed.v1","type":"daprshop.order.placed.v1","topic":"order-placed","processed":false}]}`, rec.Body.String(),
		"an order without lines is poison: counted, not processed")
}

// TestDeadEventsAreProcessedAgain delivers to the dead-letter route events that
// died of a failure that has passed since: a placement is reserved and a
// cancellation released, as their own routes would have done, and an event
// that fails again is answered RETRY and not counted yet.
func TestDeadEventsAreProcessedAgain(t *testing.T) {
	srv, fake := setup(t, map[string]int64{"apple": 5})
	o1 := order("o1", ln("apple", 2))
	placed := cloudEvent(t, events.OrderPlaced, "o1", o1)

	daprfake.FailOn("GetBulkState")(fake)
	assert.Equal(t, events.StatusRetry, daprfake.Deliver(t, srv, pathDeadLetter, placed))
	fake.Hook = nil
	assert.Equal(t, map[string]int64{"apple": 5}, available(t, fake, "apple"), "nothing changed")

	assert.Equal(t, events.StatusSuccess, daprfake.Deliver(t, srv, pathDeadLetter, placed))
	assert.Equal(t, map[string]int64{"apple": 3}, available(t, fake, "apple"))
	o1.Status, o1.Reason = events.StatusCancelled, events.ReasonPaymentDeclined
	assert.Equal(t, events.StatusSuccess, daprfake.Deliver(t, srv, pathDeadLetter, cloudEvent(t, events.OrderCancelled, "o1", o1)))
	assert.Equal(t, map[string]int64{"apple": 5}, available(t, fake, "apple"))
	assert.Equal(t, []outcome{reserved("o1", 200), released("o1", 200, events.ReasonPaymentDeclined)}, published(t, fake))

	rec := do(t, srv, "GET", "/deadletters", "", "")
	assert.JSONEq(t, `{"count":2,"recent":[
		{"id":"o1/daprshop.order.cancelled.v1","type":"daprshop.order.cancelled.v1","topic":"order-cancelled","processed":true},
		{"id":"o1/daprshop.order.placed.v1","type":"daprshop.order.placed.v1","topic":"order-placed","processed":true}]}`, rec.Body.String())
}

// TestAnotherInstanceTakesTheStockFirst lets another instance reserve the last
// unit between this instance's check and its write: this instance's
// compare-and-swap fails, it reads again, finds nothing left and rejects its
// order, and no unit is sold twice.
func TestAnotherInstanceTakesTheStockFirst(t *testing.T) {
	fake := &daprfake.Client{}
	other := newServer(quiet(), "b", "inventory", testLedger(fake))
	require.Equal(t, 200, do(t, other, "PUT", "/stock/apple", jsonCT, `{"available":1}`).Code)
	store := &daprfake.Interloper{Client: fake, Key: stockKey("apple"), Before: func() {
		assert.Equal(t, events.StatusSuccess,
			daprfake.DeliverInBatch(t, other, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o2", order("o2", ln("apple", 1)))))
	}}
	this := newServer(quiet(), "a", "inventory", testLedger(store))

	assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, this, pathOrderPlaced, cloudEvent(t, events.OrderPlaced, "o1", order("o1", ln("apple", 1)))))
	assert.Equal(t, []outcome{reserved("o2", 100), rejected("o1", 100, events.ReasonOutOfStock)}, published(t, fake))
	assert.Equal(t, int64(0), available(t, fake, "apple")["apple"])
}

func TestListReservations(t *testing.T) {
	others := make([]string, maxLookup-1)
	for i := range others {
		others[i] = fmt.Sprintf("x%d", i)
	}
	cases := []lookuptest.Case{
		{Name: "found and not, in the order asked, each once", Path: "/reservations?orderIds=o3,nope,o1,o3&orderIds=o2,o4,o1", Status: 200,
			Want: `[{"orderId":"o3","customerId":"c3","status":"released","reason":"payment_declined"},
				{"orderId":"o1","customerId":"c1","status":"reserved"},
				{"orderId":"o2","customerId":"c2","status":"rejected","reason":"out_of_stock"},
				{"orderId":"o4","customerId":"c4","status":"cancelled","reason":"processing_failed"}]`},
		{Name: "one", Path: "/reservations?orderIds=o1", Status: 200, Want: `[{"orderId":"o1","customerId":"c1","status":"reserved"}]`},
		{Name: "none found", Path: "/reservations?orderIds=nope,o9", Status: 200, Want: `[]`},
		{Name: "the limit", Path: "/reservations?orderIds=" + strings.Join(others, ",") + ",o1", Status: 200,
			Want: `[{"orderId":"o1","customerId":"c1","status":"reserved"}]`},
		{Name: "duplicates count once", Path: "/reservations?orderIds=" + strings.Repeat("o1,", maxLookup) + "o1", Status: 200,
			Want: `[{"orderId":"o1","customerId":"c1","status":"reserved"}]`},
		{Name: "corrupt record", Setup: func(f *daprfake.Client) { f.Put(testStore, reservationKey("o2"), []byte("{")) },
			Path: "/reservations?orderIds=o1,o2", Status: 500, Detail: "internal error"},
	}
	lookuptest.Lookup{
		Store:     testStore,
		KeyPrefix: "reservation-",
		Seed: func(fake *daprfake.Client) {
			fake.Put(testStore, reservationKey("o1"), reservation{OrderID: "o1", CustomerID: "c1", TotalCents: 200, Currency: "EUR",
				Lines: []line{{ProductID: "apple", Quantity: 2}}, Status: statusReserved})
			fake.Put(testStore, reservationKey("o2"), reservation{OrderID: "o2", CustomerID: "c2", TotalCents: 900, Currency: "EUR",
				Lines: []line{{ProductID: "apple", Quantity: 9}}, Status: statusRejected, Reason: events.ReasonOutOfStock})
			fake.Put(testStore, reservationKey("o3"), reservation{OrderID: "o3", CustomerID: "c3", TotalCents: 100, Currency: "EUR",
				Lines: []line{{ProductID: "tea", Quantity: 1}}, Status: statusReleased, Reason: events.ReasonPaymentDeclined})
			fake.Put(testStore, reservationKey("o4"), reservation{OrderID: "o4", CustomerID: "c4", Lines: []line{},
				Status: statusCancelled, Reason: events.ReasonProcessing})
		},
		Server: func(fake *daprfake.Client) http.Handler {
			return newServer(quiet(), "inventory-1", "inventory", testLedger(fake))
		},
	}.Run(t, append(cases, lookuptest.Refusals("/reservations", maxLookup)...))
}
