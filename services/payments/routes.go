package main

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/pubsub"
)

// Paths the sidecar delivers events to.
const (
	pathStockReserved  = "/events/stock-reserved"
	pathOrderCancelled = "/events/order-cancelled"
	pathOtherEvent     = "/events/other"
	pathDeadLetter     = "/events/deadletter"
)

// addRoutes lists the payments service's whole API, the events it consumes
// included.
func addRoutes(r *mux.Router, log *slog.Logger, appID string, b *bank, dead *pubsub.DeadLetters) {
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet)
	r.HandleFunc("/accounts/{customerID}", b.accounts.HandleGet(log)).Methods(http.MethodGet)
	r.HandleFunc("/accounts/{customerID}", b.accounts.HandlePut(log)).Methods(http.MethodPut)
	r.HandleFunc("/charges", handleListCharges(log, b)).Methods(http.MethodGet)

	r.HandleFunc("/dapr/subscribe", handleSubscribe(appID)).Methods(http.MethodGet)
	charge, cancelled := onStockReserved(b), onOrderCancelled(b)
	r.HandleFunc(pathStockReserved, pubsub.BulkHandler(log, charge)).Methods(http.MethodPost)
	r.HandleFunc(pathOrderCancelled, pubsub.BulkHandler(log, cancelled)).Methods(http.MethodPost)
	r.HandleFunc(pathOtherEvent, pubsub.BulkHandler(log, pubsub.Ignore)).Methods(http.MethodPost)
	r.HandleFunc(pathDeadLetter, dead.Receive(log, pubsub.ByType(map[string]pubsub.Process{
		events.StockReserved:  charge,
		events.OrderCancelled: cancelled,
	}))).Methods(http.MethodPost)
	r.HandleFunc("/deadletters", dead.Summary()).Methods(http.MethodGet)
}

// handleSubscribe answers the sidecar's GET /dapr/subscribe: reserved stock is
// charged, a cancelled order's charge given back, every other event of those
// topics acknowledged, and what cannot be processed ends on the payments
// dead-letter topic.
func handleSubscribe(appID string) http.HandlerFunc {
	cancelled := pubsub.OrderTopic(events.OrderCancelled, pathOrderCancelled, pathOtherEvent)
	cancelled.Bulk = pubsub.Bulk(pubsub.SagaWait)
	subs := pubsub.Subscriptions(appID, pathDeadLetter, pubsub.Topic{
		Name:  events.TopicInventory,
		Rules: []events.Rule{events.TypeRule(events.StockReserved, pathStockReserved)},
		Other: pathOtherEvent,
		Bulk:  pubsub.Bulk(pubsub.SagaWait),
	}, cancelled)
	return func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, subs)
	}
}
