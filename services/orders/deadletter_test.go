package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/events"
)

func (e *testEnv) deadLetters() deadLetterReport {
	e.t.Helper()
	rec := e.do(http.MethodGet, "/deadletters", "", nil)
	require.Equal(e.t, http.StatusOK, rec.Code)
	return decodeBody[deadLetterReport](e.t, rec)
}

// TestDeadLetters delivers dead events to orders' dead-letter route. One that
// is not poison died of a failure that passed, and moves its order on as its
// own route would have; poison that names an order not final yet cancels it
// (processing_failed).
func TestDeadLetters(t *testing.T) {
	mismatch := stock("", "")
	mismatch.CustomerID = "c2"
	tests := []struct {
		name       string
		start      string // status of the seeded order
		body       func(t *testing.T, orderID string) []byte
		wantStatus string // of the order afterwards
		wantReason string
		wantEvent  string // announced, if any
		wantAction string
		wantError  bool
	}{
		{"late stock reserved moves a pending order on", events.StatusPending, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, stock(id, ""))
		}, events.StatusReserved, "", "", actionProcessed, false},
		{"late payment confirms a reserved order", events.StatusReserved, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.PaymentSucceeded, payment(id, ""))
		}, events.StatusConfirmed, "", events.OrderConfirmed, actionProcessed, false},
		{"late rejection in outbox-style data cancels for its own reason", events.StatusPending, func(t *testing.T, id string) []byte {
			return outboxEvent(t, events.StockRejected, stock(id, events.ReasonOutOfStock))
		}, events.StatusCancelled, events.ReasonOutOfStock, events.OrderCancelled, actionProcessed, false},
		{"late event for a confirmed order changes nothing", events.StatusConfirmed, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, stock(id, ""))
		}, events.StatusConfirmed, "", "", actionProcessed, false},
		{"poison data that still names its order cancels it", events.StatusPending, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]any{"orderId": id, "warehouse": 7})
		}, events.StatusCancelled, events.ReasonProcessing, events.OrderCancelled, actionCancelled, true},
		{"an event naming another customer cancels the order", events.StatusReserved, func(t *testing.T, id string) []byte {
			m := mismatch
			m.OrderID = id
			return cloudEvent(t, events.StockReserved, m)
		}, events.StatusCancelled, events.ReasonProcessing, events.OrderCancelled, actionCancelled, true},
		{"an event of a type orders does not follow cancels the order", events.StatusPending, func(t *testing.T, id string) []byte {
			return cloudEvent(t, "daprshop.order.shipped.v1", stock(id, ""))
		}, events.StatusCancelled, events.ReasonProcessing, events.OrderCancelled, actionCancelled, true},
		{"poison about a cancelled order leaves it as it was", events.StatusCancelled, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.PaymentFailed, map[string]any{"orderId": id, "amountCents": "lots"})
		}, events.StatusCancelled, events.ReasonOutOfStock, "", actionNone, true},
		{"unknown order", events.StatusPending, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockReserved, stock("ffffffffffffffffffffffffffffffff", ""))
		}, events.StatusPending, "", "", actionNone, true},
		{"no order id", events.StatusPending, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]string{"sku": "x"})
		}, events.StatusPending, "", "", actionNone, true},
		{"malformed order id", events.StatusPending, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]any{"orderId": 42})
		}, events.StatusPending, "", "", actionNone, true},
		{"not a cloud event", events.StatusPending, func(*testing.T, string) []byte {
			return []byte("garbage")
		}, events.StatusPending, "", "", actionNone, true},
		{"an event over the size limit is counted and changes nothing", events.StatusPending, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]string{"orderId": id, "note": strings.Repeat("x", maxEventBytes)})
		}, events.StatusPending, "", "", actionNone, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			o := e.seed(tt.start)
			assert.Equal(t, events.StatusSuccess, e.deliver(pathDeadLetter, tt.body(t, o.ID)))

			got := e.stored(o.ID)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, tt.wantReason, got.Reason)
			if tt.wantStatus == tt.start {
				assert.Equal(t, o, got, "unchanged")
			} else {
				assert.Equal(t, 2, e.fake.version(orderKey(o.ID)), "one compare-and-swap")
			}
			pubs := e.fake.published()
			if tt.wantEvent != "" {
				require.Len(t, pubs, 1)
				assertAnnounced(t, pubs[0], got, tt.wantEvent)
			} else {
				assert.Empty(t, pubs)
			}

			report := e.deadLetters()
			assert.Equal(t, int64(1), report.Count)
			require.Len(t, report.Recent, 1)
			assert.Equal(t, tt.wantAction, report.Recent[0].Action)
			assert.Equal(t, tt.wantError, report.Recent[0].Error != "", "error %q", report.Recent[0].Error)
			if tt.wantAction != actionNone {
				assert.Equal(t, o.ID, report.Recent[0].OrderID)
				assert.NotEmpty(t, report.Recent[0].Type)
			}
		})
	}
}

// TestDeadLetterRetriesWhileTheStoreFails checks that a dead event that fails
// again, to be followed or, when it is poison, to cancel its order, is
// answered RETRY and counted only once it is handled.
func TestDeadLetterRetriesWhileTheStoreFails(t *testing.T) {
	poison := func(t *testing.T, id string) []byte {
		return cloudEvent(t, events.StockReserved, map[string]any{"orderId": id, "warehouse": 7})
	}
	late := func(t *testing.T, id string) []byte { return cloudEvent(t, events.StockReserved, stock(id, "")) }
	for _, tt := range []struct {
		method     string
		body       func(t *testing.T, orderID string) []byte
		wantStatus string
		wantAction string
	}{
		{"GetState", late, events.StatusReserved, actionProcessed},
		{"SaveState", late, events.StatusReserved, actionProcessed},
		{"GetState", poison, events.StatusCancelled, actionCancelled},
		{"SaveState", poison, events.StatusCancelled, actionCancelled},
		{"PublishEvent", poison, events.StatusCancelled, actionCancelled},
	} {
		t.Run(tt.wantAction+" "+tt.method, func(t *testing.T) {
			e := newTestEnv(t)
			o := e.seed(events.StatusPending)
			e.fake.fail = func(m, _ string) error {
				if m == tt.method {
					return errors.New("redis down")
				}
				return nil
			}
			body := tt.body(t, o.ID)
			assert.Equal(t, events.StatusRetry, e.deliver(pathDeadLetter, body))
			assert.Equal(t, int64(0), e.deadLetters().Count, "counted once it is handled, not per attempt")

			e.fake.fail = nil
			assert.Equal(t, events.StatusSuccess, e.deliver(pathDeadLetter, body))
			got := e.stored(o.ID)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, 2, e.fake.version(orderKey(o.ID)), "changed once")
			report := e.deadLetters()
			assert.Equal(t, int64(1), report.Count)
			assert.Equal(t, tt.wantAction, report.Recent[0].Action)
		})
	}
}

func TestDeadLettersKeepTheMostRecent(t *testing.T) {
	e := newTestEnv(t)
	var last string
	for i := 0; i < deadLetterRecent+5; i++ {
		o := e.seed(events.StatusPending)
		last = o.ID
		require.Equal(t, events.StatusSuccess, e.deliver(pathDeadLetter, cloudEvent(t, events.StockReserved, stock(o.ID, ""))))
	}
	report := e.deadLetters()
	assert.Equal(t, int64(deadLetterRecent+5), report.Count)
	require.Len(t, report.Recent, deadLetterRecent)
	assert.Equal(t, last, report.Recent[0].OrderID, "newest first")
}

func TestDeadLettersStartEmpty(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodGet, "/deadletters", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"count":0,"recent":[]}`, rec.Body.String())
}
