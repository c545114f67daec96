package main

import (
	"errors"
	"net/http"
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

func TestDeadLetters(t *testing.T) {
	tests := []struct {
		name       string
		start      string // status of the seeded order
		body       func(t *testing.T, orderID string) []byte
		wantStatus string // of the order afterwards
		wantAction string
		wantError  bool
	}{
		{"pending order is cancelled", events.StatusPending, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, stock(id, ""))
		}, events.StatusCancelled, actionCancelled, false},
		{"reserved order is cancelled", events.StatusReserved, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.PaymentSucceeded, payment(id, ""))
		}, events.StatusCancelled, actionCancelled, false},
		{"outbox-style data", events.StatusPending, func(t *testing.T, id string) []byte {
			return outboxEvent(t, events.StockRejected, stock(id, events.ReasonOutOfStock))
		}, events.StatusCancelled, actionCancelled, false},
		{"data that broke the contract still names its order", events.StatusPending, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]any{"orderId": id, "warehouse": 7})
		}, events.StatusCancelled, actionCancelled, false},
		{"confirmed order stays confirmed", events.StatusConfirmed, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.StockReserved, stock(id, ""))
		}, events.StatusConfirmed, actionNone, false},
		{"cancelled order stays as it was", events.StatusCancelled, func(t *testing.T, id string) []byte {
			return cloudEvent(t, events.PaymentFailed, payment(id, ""))
		}, events.StatusCancelled, actionNone, false},
		{"unknown order", events.StatusPending, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockReserved, stock("ffffffffffffffffffffffffffffffff", ""))
		}, events.StatusPending, actionNone, false},
		{"no order id", events.StatusPending, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]string{"sku": "x"})
		}, events.StatusPending, actionNone, false},
		{"malformed order id", events.StatusPending, func(t *testing.T, _ string) []byte {
			return cloudEvent(t, events.StockReserved, map[string]any{"orderId": 42})
		}, events.StatusPending, actionNone, false},
		{"not a cloud event", events.StatusPending, func(*testing.T, string) []byte {
			return []byte("garbage")
		}, events.StatusPending, actionNone, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			o := e.seed(tt.start)
			assert.Equal(t, events.StatusSuccess, e.deliver(pathDeadLetter, tt.body(t, o.ID)))

			got := e.stored(o.ID)
			assert.Equal(t, tt.wantStatus, got.Status)
			pubs := e.fake.published()
			if tt.wantAction == actionCancelled {
				assert.Equal(t, events.ReasonProcessing, got.Reason)
				assert.Equal(t, 2, e.fake.version(orderKey(o.ID)), "one compare-and-swap")
				require.Len(t, pubs, 1, "the cancellation is announced, which releases the stock")
				assertAnnounced(t, pubs[0], got, events.OrderCancelled)
			} else {
				assert.Equal(t, o, got)
				assert.Empty(t, pubs)
			}

			report := e.deadLetters()
			assert.Equal(t, int64(1), report.Count)
			require.Len(t, report.Recent, 1)
			assert.Equal(t, tt.wantAction, report.Recent[0].Action)
			assert.Equal(t, tt.wantError, report.Recent[0].Error != "")
			if tt.wantAction == actionCancelled {
				assert.Equal(t, o.ID, report.Recent[0].OrderID)
				assert.NotEmpty(t, report.Recent[0].Type)
			}
		})
	}
}

func TestDeadLetterRetriesWhenTheCancellationCannotBeSaved(t *testing.T) {
	for _, method := range []string{"GetState", "SaveState", "PublishEvent"} {
		t.Run(method, func(t *testing.T) {
			e := newTestEnv(t)
			o := e.seed(events.StatusPending)
			e.fake.fail = func(m, _ string) error {
				if m == method {
					return errors.New("redis down")
				}
				return nil
			}
			body := cloudEvent(t, events.StockReserved, stock(o.ID, ""))
			assert.Equal(t, events.StatusRetry, e.deliver(pathDeadLetter, body))
			assert.Equal(t, int64(0), e.deadLetters().Count, "counted once it is handled, not per attempt")

			e.fake.fail = nil
			assert.Equal(t, events.StatusSuccess, e.deliver(pathDeadLetter, body))
			got := e.stored(o.ID)
			assert.Equal(t, events.StatusCancelled, got.Status)
			assert.Equal(t, 2, e.fake.version(orderKey(o.ID)), "cancelled once")
			pubs := e.fake.published()
			require.Len(t, pubs, 1)
			assertAnnounced(t, pubs[0], got, events.OrderCancelled)
			report := e.deadLetters()
			assert.Equal(t, int64(1), report.Count)
			assert.Equal(t, actionCancelled, report.Recent[0].Action)
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
