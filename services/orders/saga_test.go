package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
)

// cloudEvent is a CloudEvent as the sidecar delivers it, with data as a JSON
// object.
func cloudEvent(t testing.TB, typ string, data any) []byte {
	t.Helper()
	d, err := json.Marshal(data)
	require.NoError(t, err)
	return envelopeWith(t, typ, d)
}

// outboxEvent is a CloudEvent whose data is the JSON object encoded as a JSON
// string, as events published through the outbox arrive over gRPC.
func outboxEvent(t *testing.T, typ string, data any) []byte {
	t.Helper()
	d, err := json.Marshal(data)
	require.NoError(t, err)
	s, err := json.Marshal(string(d))
	require.NoError(t, err)
	return envelopeWith(t, typ, s)
}

func envelopeWith(t testing.TB, typ string, data json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id": httpx.NewID(), "specversion": "1.0", "type": typ, "source": "test",
		"topic": "t", "pubsubname": events.PubSub, "datacontenttype": "application/json", "data": data,
	})
	require.NoError(t, err)
	return b
}

// deliver posts an event to path as the sidecar does and returns the delivery
// status the service answered.
func (e *testEnv) deliver(path string, body []byte) string {
	e.t.Helper()
	// The saga's subscriptions are bulk ones; the dead-letter topic's is not.
	if path == pathDeadLetter {
		return daprfake.Deliver(e.t, e.h, path, string(body))
	}
	return daprfake.DeliverInBatch(e.t, e.h, path, string(body))
}

// seed stores an order of customer c1 that has reached status, as the saga
// would have left it, and returns it. Its ETag is "1".
func (e *testEnv) seed(status string) order {
	e.t.Helper()
	t0 := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	o := order{
		ID: httpx.NewID(), CustomerID: "c1", Status: status,
		Lines:      []events.Line{{ProductID: "apple", Quantity: 2, PriceCents: 120}},
		TotalCents: 240, Currency: "EUR", CreatedAt: t0,
		History: []change{{Status: events.StatusPending, At: t0}},
	}
	step := func(s, reason string) {
		o.History = append(o.History, change{Status: s, At: t0.Add(time.Duration(len(o.History)) * time.Minute), Reason: reason})
	}
	switch status {
	case events.StatusReserved:
		step(events.StatusReserved, "")
	case events.StatusConfirmed:
		step(events.StatusReserved, "")
		step(events.StatusPaid, "")
		step(events.StatusConfirmed, "")
	case events.StatusCancelled:
		o.Reason = events.ReasonOutOfStock
		step(events.StatusCancelled, events.ReasonOutOfStock)
	}
	e.fake.set(e.t, orderKey(o.ID), o)
	return o
}

// stored reads an order straight from the fake store.
func (e *testEnv) stored(orderID string) order {
	e.t.Helper()
	v, ok := e.fake.value(orderKey(orderID))
	require.True(e.t, ok, "order %s is stored", orderID)
	var o order
	require.NoError(e.t, json.Unmarshal(v, &o))
	return o
}

func statuses(o order) []string {
	out := make([]string, len(o.History))
	for i, c := range o.History {
		out[i] = c.Status
	}
	return out
}

func stock(orderID, reason string) events.Stock {
	return events.Stock{OrderID: orderID, CustomerID: "c1", TotalCents: 240, Currency: "EUR", Reason: reason}
}

func payment(orderID, reason string) events.Payment {
	return events.Payment{OrderID: orderID, CustomerID: "c1", AmountCents: 240, Currency: "EUR", Reason: reason}
}

// outcomeEvent is the event of type typ about orderID, with reason, delivered to
// the path its subscription routes it to.
func outcomeEvent(t testing.TB, typ, orderID, reason string) (string, []byte) {
	t.Helper()
	switch typ {
	case events.StockReserved:
		return pathStockReserved, cloudEvent(t, typ, stock(orderID, reason))
	case events.StockRejected:
		return pathStockRejected, cloudEvent(t, typ, stock(orderID, reason))
	case events.PaymentSucceeded:
		return pathPaymentSucceeded, cloudEvent(t, typ, payment(orderID, reason))
	case events.PaymentFailed:
		return pathPaymentFailed, cloudEvent(t, typ, payment(orderID, reason))
	}
	t.Fatalf("no route for %s", typ)
	return "", nil
}

// assertAnnounced checks that ev is the announcement of o's change of type typ:
// on the type's topic, under the deterministic id, with o as its payload.
func assertAnnounced(t *testing.T, ev daprfake.Event, o order, typ string) {
	t.Helper()
	assert.Equal(t, events.PubSub, ev.PubSub)
	assert.Equal(t, events.OrderTopic(typ), ev.Topic)
	assert.Equal(t, typ, ev.Type())
	assert.Equal(t, events.EventID(o.ID, typ), ev.ID())
	var payload events.Order
	dec := json.NewDecoder(bytes.NewReader(ev.Data))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&payload))
	assert.Equal(t, o.event(), payload)
}

func TestSagaTransitions(t *testing.T) {
	const (
		pending   = events.StatusPending
		reserved  = events.StatusReserved
		paid      = events.StatusPaid
		confirmed = events.StatusConfirmed
		cancelled = events.StatusCancelled
	)
	tests := []struct {
		name        string
		start       string
		typ         string
		reason      string
		wantStatus  string
		wantReason  string
		wantHistory []string
		wantEvent   string // the type of the change; "" when nothing may change
		wantAgain   string // for an unchanged order: the event announced again, if any
	}{
		{"stock reserved", pending, events.StockReserved, "", reserved, "", []string{pending, reserved}, events.OrderReserved, ""},
		{"stock rejected keeps its reason", pending, events.StockRejected, events.ReasonUnknownProduct, cancelled, events.ReasonUnknownProduct, []string{pending, cancelled}, events.OrderCancelled, ""},
		{"stock rejected out of stock", pending, events.StockRejected, events.ReasonOutOfStock, cancelled, events.ReasonOutOfStock, []string{pending, cancelled}, events.OrderCancelled, ""},
		{"stock rejected without a reason", pending, events.StockRejected, "", cancelled, events.ReasonOutOfStock, []string{pending, cancelled}, events.OrderCancelled, ""},
		{"payment succeeded", reserved, events.PaymentSucceeded, "", confirmed, "", []string{pending, reserved, paid, confirmed}, events.OrderConfirmed, ""},
		{"payment before its reservation confirms, reserved", pending, events.PaymentSucceeded, "", confirmed, "", []string{pending, reserved, paid, confirmed}, events.OrderConfirmed, ""},
		{"payment failed", reserved, events.PaymentFailed, events.ReasonNoAccount, cancelled, events.ReasonPaymentDeclined, []string{pending, reserved, cancelled}, events.OrderCancelled, ""},
		{"payment failed before its reservation", pending, events.PaymentFailed, "", cancelled, events.ReasonPaymentDeclined, []string{pending, reserved, cancelled}, events.OrderCancelled, ""},

		{"duplicate reservation", reserved, events.StockReserved, "", reserved, "", []string{pending, reserved}, "", ""},
		{"rejection after a reservation", reserved, events.StockRejected, events.ReasonOutOfStock, reserved, "", []string{pending, reserved}, "", ""},
		{"late reservation of a confirmed order", confirmed, events.StockReserved, "", confirmed, "", []string{pending, reserved, paid, confirmed}, "", ""},
		{"duplicate payment", confirmed, events.PaymentSucceeded, "", confirmed, "", []string{pending, reserved, paid, confirmed}, "", events.OrderConfirmed},
		{"failed payment of a confirmed order", confirmed, events.PaymentFailed, "", confirmed, "", []string{pending, reserved, paid, confirmed}, "", ""},
		{"rejection of a confirmed order", confirmed, events.StockRejected, "", confirmed, "", []string{pending, reserved, paid, confirmed}, "", ""},
		{"late reservation of a cancelled order", cancelled, events.StockReserved, "", cancelled, events.ReasonOutOfStock, []string{pending, cancelled}, "", ""},
		{"payment of a cancelled order", cancelled, events.PaymentSucceeded, "", cancelled, events.ReasonOutOfStock, []string{pending, cancelled}, "", ""},
		{"duplicate rejection", cancelled, events.StockRejected, events.ReasonUnknownProduct, cancelled, events.ReasonOutOfStock, []string{pending, cancelled}, "", events.OrderCancelled},
		{"failed payment of a cancelled order", cancelled, events.PaymentFailed, "", cancelled, events.ReasonOutOfStock, []string{pending, cancelled}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			o := e.seed(tt.start)
			path, body := outcomeEvent(t, tt.typ, o.ID, tt.reason)
			assert.Equal(t, events.StatusSuccess, e.deliver(path, body))

			got := e.stored(o.ID)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, tt.wantReason, got.Reason)
			assert.Equal(t, tt.wantHistory, statuses(got))
			assert.Empty(t, e.fake.transactions(), "the saga's changes do not go through the outbox")
			pubs := e.fake.published()
			if tt.wantEvent == "" {
				assert.Equal(t, o, got)
				assert.Equal(t, 1, e.fake.version(orderKey(o.ID)), "nothing written")
				if tt.wantAgain == "" {
					assert.Empty(t, pubs, "nothing published")
				} else if assert.Len(t, pubs, 1, "the outcome that settled the order announces it again") {
					assertAnnounced(t, pubs[0], o, tt.wantAgain)
				}
				return
			}
			assert.Equal(t, []string{orderKey(o.ID)}, e.fake.plainSaves(), "one compare-and-swap of the order")
			assert.Equal(t, 2, e.fake.version(orderKey(o.ID)))
			if events.OrderTopic(tt.wantEvent) == "" {
				assert.Empty(t, pubs, "a change no service consumes is not published")
			} else if assert.Len(t, pubs, 1) {
				assertAnnounced(t, pubs[0], got, tt.wantEvent)
			}
			assert.Equal(t, o.History, got.History[:len(o.History)], "history is only appended to")
			if tt.wantStatus == cancelled {
				assert.Equal(t, tt.wantReason, got.History[len(got.History)-1].Reason)
			}
		})
	}
}

func TestSagaSequences(t *testing.T) {
	tests := []struct {
		name        string
		deliveries  []string // event types, in delivery order
		wantStatus  string
		wantHistory []string
		wantEvents  []string // the placement's, through the outbox, then those published
	}{
		{
			"happy path",
			[]string{events.StockReserved, events.PaymentSucceeded},
			events.StatusConfirmed,
			[]string{"pending", "reserved", "paid", "confirmed"},
			[]string{events.OrderPlaced, events.OrderConfirmed},
		},
		{
			"payment overtakes the reservation",
			[]string{events.PaymentSucceeded, events.StockReserved},
			events.StatusConfirmed,
			[]string{"pending", "reserved", "paid", "confirmed"},
			[]string{events.OrderPlaced, events.OrderConfirmed},
		},
		{
			"every event twice",
			[]string{events.StockReserved, events.StockReserved, events.PaymentSucceeded, events.StockReserved, events.PaymentSucceeded},
			events.StatusConfirmed,
			[]string{"pending", "reserved", "paid", "confirmed"},
			[]string{events.OrderPlaced, events.OrderConfirmed, events.OrderConfirmed},
		},
		{
			"rejected, then contradicting events",
			[]string{events.StockRejected, events.StockReserved, events.PaymentSucceeded, events.StockRejected},
			events.StatusCancelled,
			[]string{"pending", "cancelled"},
			[]string{events.OrderPlaced, events.OrderCancelled, events.OrderCancelled},
		},
		{
			"payment fails, then a late reservation",
			[]string{events.StockReserved, events.PaymentFailed, events.StockReserved, events.PaymentFailed},
			events.StatusCancelled,
			[]string{"pending", "reserved", "cancelled"},
			[]string{events.OrderPlaced, events.OrderCancelled, events.OrderCancelled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			o := e.place("k", appleAndPear)
			for _, typ := range tt.deliveries {
				path, body := outcomeEvent(t, typ, o.ID, "")
				require.Equal(t, events.StatusSuccess, e.deliver(path, body), typ)
			}
			rec := e.do(http.MethodGet, "/"+o.ID, "", nil)
			require.Equal(t, http.StatusOK, rec.Code)
			got := decodeBody[order](t, rec)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, tt.wantHistory, statuses(got))

			var types []string
			txs := e.fake.transactions()
			require.Len(t, txs, 1, "the placement")
			types = append(types, txs[0][0].Item.Metadata["type"])
			for _, ev := range e.fake.published() {
				types = append(types, ev.Type())
				assertAnnounced(t, ev, got, ev.Type())
			}
			assert.Equal(t, tt.wantEvents, types)
		})
	}
}

// TestSagaAnnouncesAgainWhatItSavedButCouldNotPublish is the delivered event
// acting as the outbox: the order is saved, the publish fails, the event is
// retried, and its redelivery publishes the announcement without a second write.
func TestSagaAnnouncesAgainWhatItSavedButCouldNotPublish(t *testing.T) {
	for _, typ := range []string{events.PaymentSucceeded, events.StockRejected, events.PaymentFailed} {
		t.Run(typ, func(t *testing.T) {
			e := newTestEnv(t)
			start := events.StatusReserved
			if typ == events.StockRejected {
				start = events.StatusPending
			}
			o := e.seed(start)
			e.fake.fail = func(method, _ string) error {
				if method == "PublishEvent" {
					return errors.New("pubsub: connection refused")
				}
				return nil
			}
			path, body := outcomeEvent(t, typ, o.ID, "")
			assert.Equal(t, events.StatusRetry, e.deliver(path, body))
			saved := e.stored(o.ID)
			assert.True(t, saved.terminal(), "the order was saved: %s", saved.Status)
			assert.Empty(t, e.fake.published())

			e.fake.fail = nil
			assert.Equal(t, events.StatusSuccess, e.deliver(path, body))
			assert.Equal(t, saved, e.stored(o.ID))
			assert.Equal(t, 2, e.fake.version(orderKey(o.ID)), "saved once")
			pubs := e.fake.published()
			require.Len(t, pubs, 1)
			want := events.OrderConfirmed
			if saved.Status == events.StatusCancelled {
				want = events.OrderCancelled
			}
			assertAnnounced(t, pubs[0], saved, want)
		})
	}
}

func TestSagaReadsOutboxStyleData(t *testing.T) {
	e := newTestEnv(t)
	o := e.seed(events.StatusPending)
	assert.Equal(t, events.StatusSuccess, e.deliver(pathStockReserved, outboxEvent(t, events.StockReserved, stock(o.ID, ""))))
	assert.Equal(t, events.StatusReserved, e.stored(o.ID).Status)
}

func TestSagaRejectsBadEvents(t *testing.T) {
	boom := errors.New("redis: i/o timeout")
	tests := []struct {
		name string
		path string
		// body builds the event for the seeded order's id.
		body   func(t *testing.T, orderID string) []byte
		fail   func(method, key string) error
		status string
	}{
		{"not json", pathStockReserved, func(*testing.T, string) []byte { return []byte("{nope") }, nil, events.StatusDrop},
		{"not a cloud event", pathStockReserved, func(*testing.T, string) []byte { return []byte(`{"orderId":"x"}`) }, nil, events.StatusDrop},
		{"empty body", pathPaymentSucceeded, func(*testing.T, string) []byte { return nil }, nil, events.StatusDrop},
		{"oversized", pathStockReserved, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]string{"orderId": id, "customerId": strings.Repeat("x", maxEventBytes)})
		}, nil, events.StatusDrop},
		{"unknown field in data", pathStockReserved, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]any{"orderId": id, "warehouse": "b"})
		}, nil, events.StatusDrop},
		{"data not an object", pathPaymentFailed, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.PaymentFailed, 42)
		}, nil, events.StatusDrop},
		{"no order id", pathStockRejected, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockRejected, stock("", events.ReasonOutOfStock))
		}, nil, events.StatusDrop},
		{"malformed order id", pathStockReserved, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockReserved, stock("../order", ""))
		}, nil, events.StatusDrop},
		{"unknown order", pathPaymentSucceeded, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.PaymentSucceeded, payment("ffffffffffffffffffffffffffffffff", ""))
		}, nil, events.StatusDrop},
		{"another customer's order", pathPaymentSucceeded, func(t *testing.T, id string) []byte {
			p := payment(id, "")
			p.CustomerID = "c2"
			return cloudEvent(t, events.PaymentSucceeded, p)
		}, nil, events.StatusDrop},
		{"type does not match the route", pathStockReserved, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.PaymentSucceeded, stock(id, ""))
		}, nil, events.StatusDrop},
		{"store unreadable", pathStockReserved, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, stock(id, ""))
		}, func(m, _ string) error {
			if m == "GetState" {
				return boom
			}
			return nil
		}, events.StatusRetry},
		{"save fails", pathPaymentSucceeded, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.PaymentSucceeded, payment(id, ""))
		}, func(m, _ string) error {
			if m == "SaveState" {
				return boom
			}
			return nil
		}, events.StatusRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			o := e.seed(events.StatusPending)
			e.fake.fail = tt.fail
			assert.Equal(t, tt.status, e.deliver(tt.path, tt.body(t, o.ID)))
			e.fake.fail = nil
			assert.Equal(t, o, e.stored(o.ID), "the order is unchanged")
			assert.Equal(t, 1, e.fake.version(orderKey(o.ID)))
			assert.Empty(t, e.fake.published(), "nothing published")
		})
	}
}

func TestSagaRetriesAfterAConcurrentChange(t *testing.T) {
	e := newTestEnv(t)
	o := e.seed(events.StatusPending)
	// Another instance applies the reservation between this instance's read and
	// its compare-and-swap, so the ETag no longer matches.
	var once sync.Once
	e.fake.fail = func(method, key string) error {
		if method == "SaveState" && key == orderKey(o.ID) {
			once.Do(func() {
				other := o
				other.Status = events.StatusReserved
				other.History = append(append([]change{}, o.History...), change{Status: events.StatusReserved, At: o.CreatedAt.Add(time.Second)})
				b, _ := json.Marshal(other)
				e.fake.setBytes(orderKey(o.ID), b)
			})
		}
		return nil
	}
	path, body := outcomeEvent(t, events.PaymentSucceeded, o.ID, "")
	assert.Equal(t, events.StatusSuccess, e.deliver(path, body))

	got := e.stored(o.ID)
	assert.Equal(t, events.StatusConfirmed, got.Status)
	assert.Equal(t, []string{"pending", "reserved", "paid", "confirmed"}, statuses(got), "applied on top of the other change")
	assert.Equal(t, []string{orderKey(o.ID)}, e.fake.plainSaves(), "the first attempt lost, the second won")
	assert.Equal(t, 3, e.fake.version(orderKey(o.ID)))
	pubs := e.fake.published()
	require.Len(t, pubs, 1, "only the write that won is announced")
	assertAnnounced(t, pubs[0], got, events.OrderConfirmed)
}

func TestSagaSerialisesEventsOfOneOrder(t *testing.T) {
	e := newTestEnv(t)
	o := e.place("k", appleAndPear)
	type delivery struct{ path, body string }
	var deliveries []delivery
	for i := 0; i < 20; i++ {
		for _, typ := range []string{events.StockReserved, events.PaymentSucceeded} {
			path, body := outcomeEvent(t, typ, o.ID, "")
			deliveries = append(deliveries, delivery{path, string(body)})
		}
	}
	answers := make([]string, len(deliveries))
	var wg sync.WaitGroup
	for i, d := range deliveries {
		wg.Add(1)
		go func(i int, d delivery) {
			defer wg.Done()
			answers[i] = daprfake.DeliverInBatch(e.t, e.h, d.path, d.body)
		}(i, d)
	}
	wg.Wait()
	for _, a := range answers {
		assert.Equal(t, events.StatusSuccess, a)
	}
	assert.Equal(t, events.StatusConfirmed, e.stored(o.ID).Status)
	// Every write won its ETag: none was tried and lost.
	assert.Equal(t, len(e.fake.transactions())+len(e.fake.plainSaves(orderKey(o.ID))), e.fake.version(orderKey(o.ID)))
	pubs := e.fake.published()
	require.NotEmpty(t, pubs)
	for _, ev := range pubs {
		assertAnnounced(t, ev, e.stored(o.ID), events.OrderConfirmed)
	}
}

func TestSagaReservationLosesToAConcurrentChange(t *testing.T) {
	e := newTestEnv(t)
	o := e.seed(events.StatusPending)
	// Another instance confirms the order between this instance's read and its
	// compare-and-swap of the reservation, which must then lose and, reread,
	// change nothing: a reservation never moves a confirmed order back.
	var once sync.Once
	e.fake.fail = func(method, key string) error {
		if method == "SaveState" && key == orderKey(o.ID) {
			once.Do(func() {
				other := o
				other.Status = events.StatusConfirmed
				other.History = append(append([]change{}, o.History...),
					change{Status: events.StatusPaid, At: o.CreatedAt.Add(time.Second)},
					change{Status: events.StatusConfirmed, At: o.CreatedAt.Add(time.Second)})
				b, _ := json.Marshal(other)
				e.fake.setBytes(orderKey(o.ID), b)
			})
		}
		return nil
	}
	path, body := outcomeEvent(t, events.StockReserved, o.ID, "")
	assert.Equal(t, events.StatusSuccess, e.deliver(path, body))

	got := e.stored(o.ID)
	assert.Equal(t, events.StatusConfirmed, got.Status)
	assert.Equal(t, []string{"pending", "paid", "confirmed"}, statuses(got), "the lost write left nothing behind")
	assert.Empty(t, e.fake.published(), "nothing published")
	assert.Equal(t, 2, e.fake.version(orderKey(o.ID)), "only the other instance's write landed")
}

func TestOtherEventsAreAcknowledged(t *testing.T) {
	e := newTestEnv(t)
	o := e.seed(events.StatusReserved)
	assert.Equal(t, events.StatusSuccess, e.deliver(pathOtherEvent, cloudEvent(t, events.StockReleased, stock(o.ID, ""))))
	// What is not a CloudEvent is poison on this route too: the operator sees
	// it in the dead-letter topic.
	assert.Equal(t, events.StatusDrop, e.deliver(pathOtherEvent, []byte("not even json")))
	assert.Empty(t, e.fake.published())
	assert.Equal(t, o, e.stored(o.ID))
}

func TestSubscriptions(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodGet, "/dapr/subscribe", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `[
		{"pubsubname":"pubsub","topic":"inventory","deadLetterTopic":"orders-deadletter","routes":{
			"rules":[
				{"match":"event.type == \"daprshop.stock.reserved.v1\"","path":"/events/stock-reserved"},
				{"match":"event.type == \"daprshop.stock.rejected.v1\"","path":"/events/stock-rejected"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":20}},
		{"pubsubname":"pubsub","topic":"payments","deadLetterTopic":"orders-deadletter","routes":{
			"rules":[
				{"match":"event.type == \"daprshop.payment.succeeded.v1\"","path":"/events/payment-succeeded"},
				{"match":"event.type == \"daprshop.payment.failed.v1\"","path":"/events/payment-failed"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":20}},
		{"pubsubname":"pubsub","topic":"orders-deadletter","routes":{"default":"/events/deadletter"}}
	]`, rec.Body.String())

	// Every routed path is served.
	for _, s := range subscriptions("orders") {
		paths := []string{s.Routes.Default}
		for _, r := range s.Routes.Rules {
			paths = append(paths, r.Path)
		}
		for _, p := range paths {
			rec := e.do(http.MethodPost, p, "{}", nil)
			assert.Equal(t, http.StatusOK, rec.Code, p)
		}
	}
}

func TestCorruptOrderRecord(t *testing.T) {
	e := newTestEnv(t)
	o := e.seed(events.StatusPending)
	e.fake.setBytes(orderKey(o.ID), []byte("{not json"))

	path, body := outcomeEvent(t, events.StockReserved, o.ID, "")
	assert.Equal(t, events.StatusDrop, e.deliver(path, body), "rereading cannot mend it")
	assert.Equal(t, events.StatusSuccess, e.deliver(pathDeadLetter, body), "a dead event has nowhere further to go")
	assert.Equal(t, int64(1), e.deadLetters().Count)
	assertProblem(t, e.do(http.MethodGet, "/"+o.ID, "", nil), http.StatusInternalServerError, "internal error")
	assert.Empty(t, e.fake.published())
}
