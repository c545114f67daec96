package events

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeDataTakesObjectOrString(t *testing.T) {
	want := Stock{OrderID: "o1", CustomerID: "c1", TotalCents: 250, Currency: "EUR"}
	obj := `{"orderId":"o1","customerId":"c1","totalCents":250,"currency":"EUR"}`
	str, _ := json.Marshal(obj)
	for name, data := range map[string]string{"object": obj, "string, as the outbox sends it": string(str)} {
		t.Run(name, func(t *testing.T) {
			e, err := DecodeEnvelope([]byte(`{"id":"1","type":"` + StockReserved + `","data":` + data + `}`))
			require.NoError(t, err)
			var got Stock
			require.NoError(t, e.DecodeData(&got))
			assert.Equal(t, want, got)
		})
	}
}

func TestPoison(t *testing.T) {
	tests := map[string]string{
		"not JSON":      `{"id":`,
		"no id":         `{"type":"x","data":{}}`,
		"no type":       `{"id":"1","data":{}}`,
		"unknown field": `{"id":"1","type":"x","data":{"orderId":"o1","color":"red"}}`,
		"wrong type":    `{"id":"1","type":"x","data":{"orderId":42}}`,
		"bad string":    `{"id":"1","type":"x","data":"{not json"}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := DecodeEnvelope([]byte(body))
			if err == nil {
				err = e.DecodeData(&Stock{})
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrPoison))
		})
	}
}

func TestRespond(t *testing.T) {
	for err, want := range map[error]string{
		nil:                      StatusSuccess,
		ErrPoison:                StatusDrop,
		errors.New("store down"): StatusRetry,
	} {
		rec := httptest.NewRecorder()
		assert.Equal(t, want, Respond(rec, err))
		assert.Equal(t, 200, rec.Code, "the status is in the body, so the sidecar reads it")
		assert.JSONEq(t, `{"status":"`+want+`"}`, rec.Body.String())
	}
}

func TestTypeRuleAndIDs(t *testing.T) {
	assert.Equal(t, Rule{Match: `event.type == "daprshop.order.placed.v1"`, Path: "/e"}, TypeRule(OrderPlaced, "/e"))
	assert.Equal(t, "o1/"+PaymentFailed, EventID("o1", PaymentFailed))
	assert.Equal(t, "orders-deadletter", DeadLetterTopic("orders"))
}

func TestOrderTopics(t *testing.T) {
	assert.Equal(t, TopicOrderPlaced, OrderTopic(OrderPlaced))
	assert.Equal(t, TopicOrderConfirmed, OrderTopic(OrderConfirmed))
	assert.Equal(t, TopicOrderCancelled, OrderTopic(OrderCancelled))
	assert.Empty(t, OrderTopic(OrderReserved), "reserved is never published")
	assert.Empty(t, OrderTopic(StockReserved), "not an order event")
}
