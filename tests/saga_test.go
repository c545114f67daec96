package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
)

func TestOrderHappyPath(t *testing.T) {
	apple := newProduct(t, 250, 10)
	pear := newProduct(t, 1999, 3)
	customer := newCustomer(t, 100_000)

	o := place(t, customer, orderLine{ProductID: apple.ID, Quantity: 4}, orderLine{ProductID: pear.ID, Quantity: 2})
	assert.Equal(t, "pending", o.Status)
	assert.Equal(t, int64(4*250+2*1999), o.TotalCents, "lines are priced by the catalog")
	assert.Equal(t, "EUR", o.Currency)

	o = settled(t, o.ID)
	require.Equal(t, "confirmed", o.Status, "reason %q", o.Reason)
	var statuses []string
	for _, h := range o.History {
		statuses = append(statuses, h.Status)
		assert.False(t, h.At.IsZero())
	}
	assert.Equal(t, []string{"pending", "reserved", "paid", "confirmed"}, statuses)

	assert.Equal(t, int64(6), stock(t, apple.ID))
	assert.Equal(t, int64(1), stock(t, pear.ID))
	assert.Equal(t, int64(100_000-o.TotalCents), balance(t, customer))
	eventually(t, 30*time.Second, func() bool {
		for _, n := range notificationsOf(t, customer) {
			if n.OrderID == o.ID && n.Status == "confirmed" {
				return true
			}
		}
		return false
	}, "no notification of the confirmed order")
	listed := ordersOf(t, customer)
	require.Len(t, listed, 1)
	assert.Equal(t, o.ID, listed[0].ID)
}

func TestOrderOutOfStock(t *testing.T) {
	p := newProduct(t, 500, 1)
	customer := newCustomer(t, 10_000)

	o := settled(t, place(t, customer, orderLine{ProductID: p.ID, Quantity: 2}).ID)
	assert.Equal(t, "cancelled", o.Status)
	assert.Equal(t, "out_of_stock", o.Reason)
	assert.Equal(t, int64(1), stock(t, p.ID), "no stock changed")
	assert.Equal(t, int64(10_000), balance(t, customer), "no balance changed")
	eventually(t, 30*time.Second, func() bool {
		for _, n := range notificationsOf(t, customer) {
			if n.OrderID == o.ID && n.Status == "cancelled" && n.Reason == "out_of_stock" {
				return true
			}
		}
		return false
	}, "no notification of the cancelled order")
}

func TestOrderPaymentDeclined(t *testing.T) {
	p := newProduct(t, 5_000, 4)
	customer := newCustomer(t, 100)

	o := settled(t, place(t, customer, orderLine{ProductID: p.ID, Quantity: 3}).ID)
	assert.Equal(t, "cancelled", o.Status)
	assert.Equal(t, "payment_declined", o.Reason)
	assert.Equal(t, int64(100), balance(t, customer))
	// The reservation is released by compensation, after the order is cancelled.
	eventually(t, 30*time.Second, func() bool { return stock(t, p.ID) == 4 },
		"stock is %d, not back to 4", stock(t, p.ID))
}

func TestOrderRaceForLastUnits(t *testing.T) {
	p := newProduct(t, 100, 5)
	const n = 20
	customers := make([]string, n)
	for i := range customers {
		customers[i] = newCustomer(t, 10_000)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ids[i] = place(t, customers[i], orderLine{ProductID: p.ID, Quantity: 1}).ID
		}(i)
	}
	wg.Wait()
	confirmed, outOfStock := 0, 0
	for _, id := range ids {
		o := settled(t, id)
		switch {
		case o.Status == "confirmed":
			confirmed++
		case o.Status == "cancelled" && o.Reason == "out_of_stock":
			outOfStock++
		default:
			t.Errorf("order %s ended %s/%s", id, o.Status, o.Reason)
		}
	}
	assert.Equal(t, 5, confirmed)
	assert.Equal(t, 15, outOfStock)
	assert.Equal(t, int64(0), stock(t, p.ID))
}

func TestIdempotentPlacement(t *testing.T) {
	p := newProduct(t, 300, 100)
	customer := newCustomer(t, 100_000)
	key := uniq("key")
	item := orderLine{ProductID: p.ID, Quantity: 1}

	const n = 20
	ids := make([]string, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := placeWithKey(t, key, customer, item)
			statuses[i] = r.status
			var o order
			if json.Unmarshal(r.body, &o) == nil {
				ids[i] = o.ID
			}
		}(i)
	}
	wg.Wait()
	for i := range ids {
		assert.Equal(t, http.StatusAccepted, statuses[i])
		assert.Equal(t, ids[0], ids[i], "every retry answers with the one order")
	}
	require.NotEmpty(t, ids[0])
	assert.Len(t, ordersOf(t, customer), 1)

	r := placeWithKey(t, key, customer, orderLine{ProductID: p.ID, Quantity: 2})
	requireProblem(t, r, http.StatusUnprocessableEntity)

	o := settled(t, ids[0])
	assert.Equal(t, "confirmed", o.Status)
	assert.Equal(t, int64(99), stock(t, p.ID), "one order, one unit")
	assert.Equal(t, int64(100_000-300), balance(t, customer), "one order, one charge")
}

// publish sends a whole CloudEvent through a sidecar's publish API, so its id
// is the one given.
// TestDeadEventThatCanSucceedIsProcessed publishes an order placement straight
// to the inventory's dead-letter topic, as the sidecar moves an event there
// whose deliveries kept failing (the store down for longer than the retry
// policy lasts): the inventory reserves its stock all the same, and the saga
// goes on from there, payments charging the customer. (The order id names no
// order in orders, which drops the outcomes about it as poison.)
func TestDeadEventThatCanSucceedIsProcessed(t *testing.T) {
	p := newProduct(t, 100, 5)
	customer := newCustomer(t, 1_000)
	orderID := httpx.NewID()
	placed := events.Order{OrderID: orderID, CustomerID: customer, Status: "pending",
		Lines: []events.Line{{ProductID: p.ID, Quantity: 2, PriceCents: 100}}, TotalCents: 200, Currency: "EUR"}
	publish(t, events.DeadLetterTopic("inventory"), cloudEvent(events.EventID(orderID, events.OrderPlaced), events.OrderPlaced, placed))

	eventually(t, 60*time.Second, func() bool { return stock(t, p.ID) == 3 },
		"the dead placement was never reserved\n%s", logsOnFailure())
	eventually(t, 60*time.Second, func() bool { return balance(t, customer) == 800 },
		"the saga did not go on from the dead placement\n%s", logsOnFailure())
	r := call(t, http.MethodGet, "/api/inventory/deadletters", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	var report struct {
		Recent []struct {
			ID        string `json:"id"`
			Processed bool   `json:"processed"`
		} `json:"recent"`
	}
	r.json(t, &report)
	require.NotEmpty(t, report.Recent)
	assert.Equal(t, events.EventID(orderID, events.OrderPlaced), report.Recent[0].ID)
	assert.True(t, report.Recent[0].Processed, "counted as dead, and processed")
}

// TestChargeOfACancelledOrderIsGivenBack has payments charge an order and then
// hear that the order was cancelled, as orders announces a cancellation that
// comes after a charge (a poison outcome about the order): the customer gets
// the charge back, once. The events are published by hand, about an order id
// that orders does not know, so orders drops what it hears of it as poison.
func TestChargeOfACancelledOrderIsGivenBack(t *testing.T) {
	customer := newCustomer(t, 1_000)
	orderID := httpx.NewID()
	reserved := events.Stock{OrderID: orderID, CustomerID: customer, TotalCents: 300, Currency: "EUR"}
	publish(t, events.TopicInventory, cloudEvent(events.EventID(orderID, events.StockReserved), events.StockReserved, reserved))
	eventually(t, 60*time.Second, func() bool { return balance(t, customer) == 700 },
		"payments never charged the reservation\n%s", logsOnFailure())

	cancelled := events.Order{OrderID: orderID, CustomerID: customer, Status: "cancelled", Reason: "processing_failed",
		Lines: []events.Line{{ProductID: "p", Quantity: 1, PriceCents: 300}}, TotalCents: 300, Currency: "EUR"}
	for range 2 {
		publish(t, events.TopicOrderCancelled, cloudEvent(events.EventID(orderID, events.OrderCancelled), events.OrderCancelled, cancelled))
	}
	eventually(t, 60*time.Second, func() bool { return balance(t, customer) == 1_000 },
		"the charge of the cancelled order was never given back\n%s", logsOnFailure())
	time.Sleep(time.Second)
	assert.Equal(t, int64(1_000), balance(t, customer), "given back once")
}

func publish(t *testing.T, topic string, ce map[string]any) {
	t.Helper()
	body, err := json.Marshal(ce)
	require.NoError(t, err)
	url := sys.App("orders").DaprURL() + "/v1.0/publish/" + events.PubSub + "/" + topic
	res, err := httpClient.Post(url, "application/cloudevents+json", bytes.NewReader(body))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
}

func cloudEvent(id, typ string, data any) map[string]any {
	return map[string]any{
		"specversion": "1.0", "id": id, "type": typ, "source": "e2e",
		"datacontenttype": "application/json", "data": data,
	}
}

func TestDuplicateDeliveryChangesNothing(t *testing.T) {
	p := newProduct(t, 700, 10)
	customer := newCustomer(t, 50_000)
	o := settled(t, place(t, customer, orderLine{ProductID: p.ID, Quantity: 2}).ID)
	require.Equal(t, "confirmed", o.Status)
	require.Equal(t, int64(8), stock(t, p.ID))
	require.Equal(t, int64(50_000-1400), balance(t, customer))

	// The events of the order, delivered a second time with the ids they had.
	placed := events.Order{OrderID: o.ID, CustomerID: customer, Status: "pending",
		Lines: []events.Line{{ProductID: p.ID, Quantity: 2, PriceCents: 700}}, TotalCents: 1400, Currency: "EUR"}
	reserved := events.Stock{OrderID: o.ID, CustomerID: customer, TotalCents: 1400, Currency: "EUR"}
	paid := events.Payment{OrderID: o.ID, CustomerID: customer, AmountCents: 1400, Currency: "EUR"}
	cancelled := placed
	cancelled.Status, cancelled.Reason = "cancelled", "out_of_stock"
	publish(t, events.TopicOrderPlaced, cloudEvent(events.EventID(o.ID, events.OrderPlaced), events.OrderPlaced, placed))
	publish(t, events.TopicInventory, cloudEvent(events.EventID(o.ID, events.StockReserved), events.StockReserved, reserved))
	publish(t, events.TopicPayments, cloudEvent(events.EventID(o.ID, events.PaymentSucceeded), events.PaymentSucceeded, paid))
	// A late contrary outcome must not undo a confirmed order either.
	publish(t, events.TopicInventory, cloudEvent(events.EventID(o.ID, events.StockRejected), events.StockRejected,
		events.Stock{OrderID: o.ID, CustomerID: customer, Reason: "out_of_stock"}))

	// A second order through the same topics afterwards: once it has settled, the
	// duplicates ahead of it have been delivered too.
	o2 := settled(t, place(t, customer, orderLine{ProductID: p.ID, Quantity: 1}).ID)
	require.Equal(t, "confirmed", o2.Status)
	time.Sleep(time.Second)

	assert.Equal(t, int64(7), stock(t, p.ID), "reserved once per order")
	assert.Equal(t, int64(50_000-1400-700), balance(t, customer), "charged once per order")
	again := getOrder(t, o.ID)
	assert.Equal(t, "confirmed", again.Status)
	assert.Len(t, again.History, len(o.History), "no status change")
	n := 0
	for _, x := range notificationsOf(t, customer) {
		if x.OrderID == o.ID {
			n++
		}
	}
	assert.Equal(t, 1, n, "one notification for the order")
}

func TestPoisonMessageIsDeadLettered(t *testing.T) {
	tests := []struct{ app, topic, typ string }{
		{"inventory", events.TopicOrderPlaced, events.OrderPlaced},
		// notifications takes its events in batches (a bulk subscription): a
		// poison entry is dead-lettered alone.
		{"notifications", events.TopicOrderConfirmed, events.OrderConfirmed},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			before := deadLetters(t, tt.app)
			// An order event whose data can never be read as an order: the
			// consumer drops it, and the sidecar moves it to the dead-letter topic.
			publish(t, tt.topic, cloudEvent(uniq("poison"), tt.typ, map[string]any{"orderId": 42, "lines": "none"}))
			eventually(t, 60*time.Second, func() bool { return deadLetters(t, tt.app) > before },
				"the poison event never reached %s's dead-letter topic\n%s", tt.app, logsOnFailure())

			// The subscription keeps delivering.
			p := newProduct(t, 100, 5)
			customer := newCustomer(t, 1_000)
			o := settled(t, place(t, customer, orderLine{ProductID: p.ID, Quantity: 1}).ID)
			assert.Equal(t, "confirmed", o.Status)
			eventually(t, 30*time.Second, func() bool { return len(notificationsOf(t, customer)) == 1 },
				"the customer was never notified of order %s\n%s", o.ID, logsOnFailure())
		})
	}
}
