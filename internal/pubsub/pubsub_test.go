package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/events"
)

var _ Publisher = (*daprfake.Client)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPublish(t *testing.T) {
	c := &daprfake.Client{}
	err := Publish(context.Background(), c, events.TopicInventory, events.StockReserved, "o1",
		events.Stock{OrderID: "o1", CustomerID: "c1", TotalCents: 250, Currency: "EUR"})
	require.NoError(t, err)
	got := c.Published()
	require.Len(t, got, 1)
	assert.Equal(t, events.PubSub, got[0].PubSub)
	assert.Equal(t, events.TopicInventory, got[0].Topic)
	assert.Equal(t, events.EventID("o1", events.StockReserved), got[0].ID())
	assert.Equal(t, events.StockReserved, got[0].Type())
	assert.Equal(t, "application/json", got[0].ContentType)
	assert.JSONEq(t, `{"orderId":"o1","customerId":"c1","totalCents":250,"currency":"EUR"}`, string(got[0].Data))

	c.Hook = func(string, string) error { return errors.New("broker down") }
	err = Publish(context.Background(), c, events.TopicInventory, events.StockReserved, "o1", events.Stock{})
	assert.ErrorContains(t, err, "broker down")
}

func deliver(t *testing.T, h http.Handler, body string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/events/x", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, "the sidecar reads the status from the body, never from the code")
	var got struct{ Status string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	return got.Status
}

func TestBulkHandler(t *testing.T) {
	event := func(id string) string { return `{"id":"` + id + `","type":"t","topic":"orders","data":{}}` }
	outcomes := map[string]error{
		"ok":     nil,
		"down":   errors.New("store down"),
		"poison": Poison("quantity %d is not positive", 0),
	}
	var mu sync.Mutex
	var processed []string
	h := BulkHandler(quiet(), func(_ context.Context, e events.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		processed = append(processed, e.ID)
		return outcomes[e.ID]
	})

	t.Run("each entry answered on its own", func(t *testing.T) {
		oversized := `{"id":"big","type":"t","data":"` + strings.Repeat("a", MaxEventBytes) + `"}`
		got := daprfake.DeliverBulk(t, h, "/events/x", event("ok"), event("down"), event("poison"), `{"id":`, `{"id":"x"}`, oversized)
		assert.Equal(t, []string{events.StatusSuccess, events.StatusRetry, events.StatusDrop, events.StatusDrop, events.StatusDrop, events.StatusDrop}, got)
		assert.ElementsMatch(t, []string{"ok", "down", "poison"}, processed, "only CloudEvents reach process")
	})

	t.Run("a batch larger than the workers", func(t *testing.T) {
		bodies := make([]string, 3*bulkWorkers)
		for i := range bodies {
			bodies[i] = event("ok")
		}
		for _, status := range daprfake.DeliverBulk(t, h, "/events/x", bodies...) {
			assert.Equal(t, events.StatusSuccess, status)
		}
	})

	t.Run("batches one after another run on the same workers", func(t *testing.T) {
		var mu sync.Mutex
		goroutines := make(map[string]bool)
		h := BulkHandler(quiet(), func(context.Context, events.Envelope) error {
			mu.Lock()
			defer mu.Unlock()
			goroutines[goroutineID()] = true
			return nil
		})
		// Without workers, each of the 100 events would have a goroutine of
		// its own.
		for range 100 {
			assert.Equal(t, []string{events.StatusSuccess}, daprfake.DeliverBulk(t, h, "/events/x", event("ok")))
		}
		assert.LessOrEqual(t, len(goroutines), bulkWorkers, "goroutines that processed 100 events")
	})

	t.Run("Ignore acknowledges an event of another type", func(t *testing.T) {
		got := daprfake.DeliverBulk(t, BulkHandler(quiet(), Ignore), "/events/other", event("other"), `not json`)
		assert.Equal(t, []string{events.StatusSuccess, events.StatusDrop}, got, "what is not a CloudEvent is still poison")
	})

	t.Run("an empty batch", func(t *testing.T) {
		assert.Empty(t, daprfake.DeliverBulk(t, h, "/events/x"))
	})

	for name, body := range map[string]string{
		"not a batch":    `[1,2]`,
		"not JSON":       `{"entries":`,
		"over the limit": `{"entries":[{"entryId":"a","event":"` + strings.Repeat("a", MaxBulkBytes) + `"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/events/x", strings.NewReader(body)))
			assert.Equal(t, http.StatusBadRequest, rec.Code, "the sidecar retries the batch")
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		})
	}
}

// goroutineID returns the id the runtime gives the calling goroutine in its
// stack traces.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(id)
}

func TestDeadLetters(t *testing.T) {
	var d DeadLetters
	var processed []string
	h := d.Receive(quiet(), ByType(map[string]Process{
		"placed": func(_ context.Context, e events.Envelope) error {
			switch e.ID {
			case "poison":
				return Poison("never")
			case "store-down":
				return errors.New("redis: connection refused")
			}
			processed = append(processed, e.ID)
			return nil
		},
	}))
	event := func(id, typ string) string {
		return `{"id":"` + id + `","type":"` + typ + `","topic":"orders","data":{}}`
	}

	assert.Equal(t, events.StatusRetry, deliver(t, h, event("store-down", "placed")),
		"an event that fails again is delivered again")
	assert.Equal(t, events.StatusSuccess, deliver(t, h, event("late", "placed")))
	assert.Equal(t, []string{"late"}, processed, "a dead event that can succeed is processed")
	assert.Equal(t, events.StatusSuccess, deliver(t, h, event("poison", "placed")), "poison is never retried")
	assert.Equal(t, events.StatusSuccess, deliver(t, h, event("other", "shipped")), "nor a type nobody handles")
	assert.Equal(t, events.StatusSuccess, deliver(t, h, "garbage"), "nor an unreadable one")
	assert.Equal(t, Report{Count: 4, Recent: []DeadLetter{
		{},
		{ID: "other", Type: "shipped", Topic: "orders", Processed: true},
		{ID: "poison", Type: "placed", Topic: "orders"},
		{ID: "late", Type: "placed", Topic: "orders", Processed: true},
	}}, d.Report(), "newest first; the one that failed again is not counted yet")

	for i := 0; i < RecentDeadLetters; i++ {
		deliver(t, h, event(fmt.Sprintf("o%d", i), "placed"))
	}
	rec := httptest.NewRecorder()
	d.Summary().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/deadletters", nil))
	var got Report
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, int64(RecentDeadLetters+4), got.Count)
	require.Len(t, got.Recent, RecentDeadLetters, "the most recent ones")
	assert.Equal(t, fmt.Sprintf("o%d", RecentDeadLetters-1), got.Recent[0].ID)
}

func TestSubscriptions(t *testing.T) {
	placed := []events.Rule{events.TypeRule(events.OrderPlaced, "/events/order-placed")}
	cancelled := []events.Rule{events.TypeRule(events.OrderCancelled, "/events/order-cancelled")}
	bulk := Bulk(SagaWait)
	assert.Equal(t, &events.BulkSubscribe{Enabled: true, MaxMessagesCount: 100, MaxAwaitDurationMs: 20}, bulk)
	subs := Subscriptions("inventory", "/events/deadletter",
		OrderTopic(events.OrderPlaced, "/events/order-placed", "/events/other"),
		Topic{Name: events.TopicOrderCancelled, Rules: cancelled, Other: "/events/other", Bulk: bulk})
	assert.Equal(t, []events.Subscription{
		{
			PubSubName:      events.PubSub,
			Topic:           events.TopicOrderPlaced,
			Routes:          events.Routes{Rules: placed, Default: "/events/other"},
			DeadLetterTopic: "inventory-deadletter",
		},
		{
			PubSubName:      events.PubSub,
			Topic:           events.TopicOrderCancelled,
			Routes:          events.Routes{Rules: cancelled, Default: "/events/other"},
			DeadLetterTopic: "inventory-deadletter",
			BulkSubscribe:   bulk,
		},
		{
			PubSubName: events.PubSub,
			Topic:      "inventory-deadletter",
			Routes:     events.Routes{Default: "/events/deadletter"},
		},
	}, subs)
}
