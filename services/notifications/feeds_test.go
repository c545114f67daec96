package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/keylock"
	"github.com/daprshop/daprshop/internal/lookuptest"
	"github.com/daprshop/daprshop/internal/statestore"
)

var _ sidecar = (*daprfake.Client)(nil)

const testStore = "notifications-test"

var at = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFeeds(fake sidecar) *feeds {
	return &feeds{dapr: fake, store: testStore, locks: keylock.New(16), now: func() time.Time { return at }}
}

func setup() (http.Handler, *daprfake.Client) {
	fake := &daprfake.Client{}
	return newServer(quiet(), "notifications-1", "notifications", newFeeds(fake)), fake
}

func do(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// cloudEvent returns the body the sidecar delivers for an order event of type typ
// about orderID carrying data (a value, or a json.RawMessage as it is).
func cloudEvent(t *testing.T, typ, orderID string, data any) string {
	t.Helper()
	return daprfake.CloudEvent(t, events.OrderTopic(typ), typ, orderID, data)
}

func confirmed(orderID, customerID string) events.Order {
	return events.Order{OrderID: orderID, CustomerID: customerID, Status: events.StatusConfirmed,
		Lines: []events.Line{{ProductID: "apple", Quantity: 3, PriceCents: 50}}, TotalCents: 150, Currency: "EUR"}
}

func cancelled(orderID, customerID, reason string) events.Order {
	o := confirmed(orderID, customerID)
	o.Status, o.Reason = events.StatusCancelled, reason
	return o
}

func feedOf(t *testing.T, srv http.Handler, customerID string) feed {
	t.Helper()
	rec := do(t, srv, "GET", "/?customerId="+customerID)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var fd feed
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fd))
	return fd
}

func TestOrderEvents(t *testing.T) {
	confirmedNote := notification{ID: "o1/" + events.OrderConfirmed, OrderID: "o1", Type: events.OrderConfirmed,
		Status: events.StatusConfirmed, Message: "Your order o1 is confirmed; 1.50 EUR was charged.", At: at}
	cancelledNote := func(reason, text string) notification {
		return notification{ID: "o1/" + events.OrderCancelled, OrderID: "o1", Type: events.OrderCancelled,
			Status: events.StatusCancelled, Reason: reason, Message: "Your order o1 was cancelled: " + text + ".", At: at}
	}
	tests := []struct {
		name   string
		setup  func(*daprfake.Client)
		path   string
		typ    string
		data   any
		status string
		want   []notification
	}{
		{name: "confirmed", path: pathOrderConfirmed, typ: events.OrderConfirmed, data: confirmed("o1", "c1"),
			status: events.StatusSuccess, want: []notification{confirmedNote}},
		{name: "cancelled out of stock", path: pathOrderCancelled, typ: events.OrderCancelled, data: cancelled("o1", "c1", events.ReasonOutOfStock),
			status: events.StatusSuccess, want: []notification{cancelledNote(events.ReasonOutOfStock, "an item is out of stock")}},
		{name: "cancelled payment declined", path: pathOrderCancelled, typ: events.OrderCancelled, data: cancelled("o1", "c1", events.ReasonPaymentDeclined),
			status: events.StatusSuccess, want: []notification{cancelledNote(events.ReasonPaymentDeclined, "the payment was declined")}},
		{name: "cancelled for a reason not known here", path: pathOrderCancelled, typ: events.OrderCancelled, data: cancelled("o1", "c1", "customer_request"),
			status: events.StatusSuccess, want: []notification{cancelledNote("customer_request", "customer_request")}},
		{name: "outbox delivers data as a JSON string", path: pathOrderConfirmed, typ: events.OrderConfirmed,
			data:   json.RawMessage(`"{\"orderId\":\"o1\",\"customerId\":\"c1\",\"status\":\"confirmed\",\"lines\":[],\"totalCents\":150,\"currency\":\"EUR\"}"`),
			status: events.StatusSuccess, want: []notification{confirmedNote}},

		{name: "poison: no order id", path: pathOrderConfirmed, typ: events.OrderConfirmed, data: confirmed("", "c1"), status: events.StatusDrop},
		{name: "poison: bad customer id", path: pathOrderConfirmed, typ: events.OrderConfirmed, data: confirmed("o1", "c/1"), status: events.StatusDrop},
		{name: "poison: no customer", path: pathOrderCancelled, typ: events.OrderCancelled, data: cancelled("o1", "", ""), status: events.StatusDrop},
		{name: "poison: negative total", path: pathOrderConfirmed, typ: events.OrderConfirmed,
			data: func() events.Order { o := confirmed("o1", "c1"); o.TotalCents = -1; return o }(), status: events.StatusDrop},
		{name: "poison: unknown field", path: pathOrderConfirmed, typ: events.OrderConfirmed,
			data: json.RawMessage(`{"orderId":"o1","customerId":"c1","vip":true}`), status: events.StatusDrop},
		{name: "poison: not a CloudEvent", path: pathOrderConfirmed, status: events.StatusDrop},

		{name: "store down: retried", setup: daprfake.FailOn("GetBulkState"), path: pathOrderConfirmed, typ: events.OrderConfirmed,
			data: confirmed("o1", "c1"), status: events.StatusRetry},
		{name: "writes down: retried", setup: daprfake.FailOn("SaveState"), path: pathOrderConfirmed, typ: events.OrderConfirmed,
			data: confirmed("o1", "c1"), status: events.StatusRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup()
			if tt.setup != nil {
				tt.setup(fake)
			}
			body := "{not json"
			if tt.typ != "" {
				body = cloudEvent(t, tt.typ, "o1", tt.data)
			}
			assert.Equal(t, tt.status, daprfake.DeliverInBatch(t, srv, tt.path, body))
			fake.Hook = nil
			want := tt.want
			if want == nil {
				want = []notification{}
			}
			assert.Equal(t, feed{CustomerID: "c1", Notifications: want}, feedOf(t, srv, "c1"))
		})
	}
}

func TestMarkWrittenAfterTheFeed(t *testing.T) {
	srv, fake := setup()
	fake.Hook = func(method, key string) error {
		if method == "SaveState" && key == markKey("o1/"+events.OrderConfirmed) {
			return errors.New("connection refused")
		}
		return nil
	}
	body := cloudEvent(t, events.OrderConfirmed, "o1", confirmed("o1", "c1"))
	assert.Equal(t, events.StatusRetry, daprfake.DeliverInBatch(t, srv, pathOrderConfirmed, body), "no mark, so it is retried")
	assert.Len(t, feedOf(t, srv, "c1").Notifications, 1, "the feed was written before the mark")

	fake.Hook = nil
	assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderConfirmed, body))
	assert.Len(t, feedOf(t, srv, "c1").Notifications, 1, "the redelivery finds it in the feed and only writes the mark")
	m, found, err := statestore.GetJSON[mark](context.Background(), fake, testStore, markKey("o1/"+events.OrderConfirmed))
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, mark{CustomerID: "c1", At: at}, m)
}

// TestFeedKeepsTheLatest orders more than a feed holds: the feed keeps the
// latest, oldest first, and a duplicate of a notification that has left it is
// still recognised by its mark.
func TestFeedKeepsTheLatest(t *testing.T) {
	srv, _ := setup()
	body := func(i int) string {
		id := fmt.Sprintf("o%d", i)
		return cloudEvent(t, events.OrderConfirmed, id, confirmed(id, "c1"))
	}
	for i := 0; i < feedLength+5; i++ {
		require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderConfirmed, body(i)))
	}
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderConfirmed, body(0)), "a late duplicate")

	fd := feedOf(t, srv, "c1")
	require.Len(t, fd.Notifications, feedLength)
	for i, n := range fd.Notifications {
		assert.Equal(t, fmt.Sprintf("o%d", i+5), n.OrderID)
	}
}

// TestDuplicatesAreDropped delivers each event several times, from two
// instances at once: the feed holds each notification once, in order of arrival.
func TestDuplicatesAreDropped(t *testing.T) {
	fake := &daprfake.Client{}
	srvs := []http.Handler{
		newServer(quiet(), "a", "notifications", newFeeds(fake)),
		newServer(quiet(), "b", "notifications", newFeeds(fake)),
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			orderID := fmt.Sprintf("o%d", i%5)
			body := cloudEvent(t, events.OrderConfirmed, orderID, confirmed(orderID, "c1"))
			for attempt := 0; attempt < 10; attempt++ {
				if daprfake.DeliverInBatch(t, srvs[(i+attempt)%2], pathOrderConfirmed, body) == events.StatusSuccess {
					return
				}
			}
			t.Errorf("order %s never processed", orderID)
		}()
	}
	wg.Wait()
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srvs[0], pathOrderCancelled,
		cloudEvent(t, events.OrderCancelled, "o1", cancelled("o1", "c1", events.ReasonProcessing))))

	fd := feedOf(t, srvs[0], "c1")
	var got []string
	for _, n := range fd.Notifications {
		got = append(got, n.ID)
	}
	assert.ElementsMatch(t, []string{
		"o0/" + events.OrderConfirmed, "o1/" + events.OrderConfirmed, "o2/" + events.OrderConfirmed,
		"o3/" + events.OrderConfirmed, "o4/" + events.OrderConfirmed, "o1/" + events.OrderCancelled,
	}, got)
	assert.Equal(t, "o1/"+events.OrderCancelled, got[len(got)-1], "the latest comes last")
	assert.Empty(t, feedOf(t, srvs[0], "c2").Notifications, "other customers see nothing")
}

func TestListNotifications(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*daprfake.Client)
		method string // GET unless set
		path   string
		status int
		want   string
		detail string
	}{
		{name: "never notified", path: "/?customerId=c1", status: 200, want: `{"customerId":"c1","notifications":[]}`},
		{name: "at the root, as the gateway forwards it", path: "/?customerId=c1", status: 200, want: `{"customerId":"c1","notifications":[]}`},
		{name: "at the root without a customer", path: "/", status: 400, detail: "query parameter customerId is required"},
		{name: "missing", path: "/", status: 400, detail: "query parameter customerId is required"},
		{name: "empty", path: "/?customerId=", status: 400, detail: "query parameter customerId is required"},
		{name: "invalid", path: "/?customerId=a%2Fb", status: 400, detail: `query parameter customerId "a/b" may only hold`},
		{name: "too long", path: "/?customerId=" + strings.Repeat("c", 65), status: 400, detail: "the limit is 64"},
		{name: "store down", setup: daprfake.FailOn("GetState"), path: "/?customerId=c1", status: 500, detail: "internal error"},
		{name: "corrupt feed", setup: func(f *daprfake.Client) { f.Put(testStore, feedKey("c1"), []byte("[")) },
			path: "/?customerId=c1", status: 500, detail: "internal error"},
		{name: "post not allowed", method: "POST", path: "/?customerId=c1", status: 405, detail: "not allowed"},
		{name: "health", path: "/healthz", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, fake := setup()
			if tt.setup != nil {
				tt.setup(fake)
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			rec := do(t, srv, method, tt.path)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status >= 400 {
				assert.Equal(t, httpx.ProblemContentType, rec.Header().Get("Content-Type"))
				var p httpx.Problem
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				assert.Contains(t, p.Detail, tt.detail)
				return
			}
			if tt.want != "" {
				assert.JSONEq(t, tt.want, rec.Body.String())
			}
		})
	}
}

func TestFeedJSON(t *testing.T) {
	srv, _ := setup()
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderConfirmed, cloudEvent(t, events.OrderConfirmed, "o1", confirmed("o1", "c1"))))
	assert.JSONEq(t, `{"customerId":"c1","notifications":[{"id":"o1/daprshop.order.confirmed.v1","orderId":"o1",
		"type":"daprshop.order.confirmed.v1","status":"confirmed","reason":"",
		"message":"Your order o1 is confirmed; 1.50 EUR was charged.","at":"2026-11-26T12:00:00Z"}]}`,
		do(t, srv, "GET", "/?customerId=c1").Body.String())
}

func TestSubscriptionsAndDeadLetters(t *testing.T) {
	srv, _ := setup()
	rec := do(t, srv, "GET", "/dapr/subscribe")
	require.Equal(t, 200, rec.Code)
	assert.JSONEq(t, `[
		{"pubsubname":"pubsub","topic":"order-confirmed","deadLetterTopic":"notifications-deadletter","routes":{
			"rules":[{"match":"event.type == \"daprshop.order.confirmed.v1\"","path":"/events/order-confirmed"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":100}},
		{"pubsubname":"pubsub","topic":"order-cancelled","deadLetterTopic":"notifications-deadletter","routes":{
			"rules":[{"match":"event.type == \"daprshop.order.cancelled.v1\"","path":"/events/order-cancelled"}],
			"default":"/events/other"},
			"bulkSubscribe":{"enabled":true,"maxMessagesCount":100,"maxAwaitDurationMs":100}},
		{"pubsubname":"pubsub","topic":"notifications-deadletter","routes":{"default":"/events/deadletter"}}]`, rec.Body.String())

	assert.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOtherEvent, cloudEvent(t, events.OrderPlaced, "o1", confirmed("o1", "c1"))))
	assert.Empty(t, feedOf(t, srv, "c1").Notifications, "an ignored event notifies nobody")
	assert.Equal(t, events.StatusSuccess, daprfake.Deliver(t, srv, pathDeadLetter, cloudEvent(t, events.OrderConfirmed, "o9", confirmed("o9", "c1"))))
	rec = do(t, srv, "GET", "/deadletters")
	assert.JSONEq(t, `{"count":1,"recent":[{"id":"o9/daprshop.order.confirmed.v1","type":"daprshop.order.confirmed.v1","topic":"order-confirmed","processed":true}]}`, rec.Body.String())
	require.Len(t, feedOf(t, srv, "c1").Notifications, 1, "a dead event that can be processed is, late")
	assert.Equal(t, "o9", feedOf(t, srv, "c1").Notifications[0].OrderID)
}

func TestListNotified(t *testing.T) {
	others := make([]string, maxLookup-1)
	for i := range others {
		others[i] = fmt.Sprintf("x%d", i)
	}
	confirmedAt := func(orderID string, at string) string {
		return `{"orderId":"` + orderID + `","type":"daprshop.order.confirmed.v1","at":"` + at + `"}`
	}
	cancelledAt := func(orderID string, at string) string {
		return `{"orderId":"` + orderID + `","type":"daprshop.order.cancelled.v1","at":"` + at + `"}`
	}
	cases := []lookuptest.Case{
		{Name: "found and not, in the order asked, each once, confirmed first", Path: "/notified?orderIds=o3,nope,o1,o3&orderIds=o2,o1",
			Status: 200, Keys: 8, Want: `[` + cancelledAt("o3", "2026-11-26T12:03:00Z") + `,` + confirmedAt("o1", "2026-11-26T12:01:00Z") + `,` +
				confirmedAt("o2", "2026-11-26T12:02:00Z") + `,` + cancelledAt("o2", "2026-11-26T12:04:00Z") + `]`},
		{Name: "one", Path: "/notified?orderIds=o1", Status: 200, Keys: 2, Want: `[` + confirmedAt("o1", "2026-11-26T12:01:00Z") + `]`},
		{Name: "none found", Path: "/notified?orderIds=nope,o9", Status: 200, Keys: 4, Want: `[]`},
		{Name: "the limit", Path: "/notified?orderIds=" + strings.Join(others, ",") + ",o1", Status: 200, Keys: 2 * maxLookup,
			Want: `[` + confirmedAt("o1", "2026-11-26T12:01:00Z") + `]`},
		{Name: "duplicates count once", Path: "/notified?orderIds=" + strings.Repeat("o1,", maxLookup) + "o1", Status: 200, Keys: 2,
			Want: `[` + confirmedAt("o1", "2026-11-26T12:01:00Z") + `]`},
		{Name: "corrupt mark", Setup: func(f *daprfake.Client) { f.Put(testStore, markKey("o2/"+events.OrderCancelled), []byte("{")) },
			Path: "/notified?orderIds=o1,o2", Status: 500, Detail: "internal error"},
	}
	lookuptest.Lookup{
		Store:     testStore,
		KeyPrefix: "notified-",
		Seed: func(fake *daprfake.Client) {
			put := func(orderID, typ string, minute int) {
				fake.Put(testStore, markKey(events.EventID(orderID, typ)), mark{CustomerID: "c1", At: at.Add(time.Duration(minute) * time.Minute)})
			}
			put("o1", events.OrderConfirmed, 1)
			put("o2", events.OrderConfirmed, 2)
			put("o3", events.OrderCancelled, 3)
			put("o2", events.OrderCancelled, 4)
		},
		Server: func(fake *daprfake.Client) http.Handler {
			return newServer(quiet(), "notifications-1", "notifications", newFeeds(fake))
		},
	}.Run(t, append(cases, lookuptest.Refusals("/notified", maxLookup)...))
}

// TestNotifiedAfterDelivery checks that GET /notified reads the marks that
// processing an order event writes.
func TestNotifiedAfterDelivery(t *testing.T) {
	srv, _ := setup()
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderConfirmed, cloudEvent(t, events.OrderConfirmed, "o1", confirmed("o1", "c1"))))
	require.Equal(t, events.StatusSuccess, daprfake.DeliverInBatch(t, srv, pathOrderCancelled,
		cloudEvent(t, events.OrderCancelled, "o2", cancelled("o2", "c2", events.ReasonOutOfStock))))
	rec := do(t, srv, "GET", "/notified?orderIds=o2,o1,o3")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.JSONEq(t, `[{"orderId":"o2","type":"daprshop.order.cancelled.v1","at":"2026-11-26T12:00:00Z"},
		{"orderId":"o1","type":"daprshop.order.confirmed.v1","at":"2026-11-26T12:00:00Z"}]`, rec.Body.String())
}
