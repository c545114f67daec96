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
	pathOrderPlaced    = "/events/order-placed"
	pathOrderCancelled = "/events/order-cancelled"
	pathOtherEvent     = "/events/other"
	pathDeadLetter     = "/events/deadletter"
)

// addRoutes lists the inventory's whole API, the events it consumes included.
func addRoutes(r *mux.Router, log *slog.Logger, appID string, led *ledger, dead *pubsub.DeadLetters) {
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet)
	r.HandleFunc("/stock/{productID}", led.stock.HandleGet(log)).Methods(http.MethodGet)
	r.HandleFunc("/stock/{productID}", led.stock.HandlePut(log)).Methods(http.MethodPut)
	r.HandleFunc("/reservations", handleListReservations(log, led)).Methods(http.MethodGet)

	r.HandleFunc("/dapr/subscribe", handleSubscribe(appID)).Methods(http.MethodGet)
	placed, cancelled := onOrderPlaced(led), onOrderCancelled(led)
	r.HandleFunc(pathOrderPlaced, pubsub.BulkHandler(log, placed)).Methods(http.MethodPost)
	r.HandleFunc(pathOrderCancelled, pubsub.BulkHandler(log, cancelled)).Methods(http.MethodPost)
	r.HandleFunc(pathOtherEvent, pubsub.BulkHandler(log, pubsub.Ignore)).Methods(http.MethodPost)
	r.HandleFunc(pathDeadLetter, dead.Receive(log, pubsub.ByType(map[string]pubsub.Process{
		events.OrderPlaced:    placed,
		events.OrderCancelled: cancelled,
	}))).Methods(http.MethodPost)
	r.HandleFunc("/deadletters", dead.Summary()).Methods(http.MethodGet)
}

// handleSubscribe answers the sidecar's GET /dapr/subscribe: placed and cancelled
// orders, each on its own topic, go to their own paths, an event of any other
// type on those topics is acknowledged, and what cannot be processed ends on the
// inventory's dead-letter topic.
func handleSubscribe(appID string) http.HandlerFunc {
	placed := pubsub.OrderTopic(events.OrderPlaced, pathOrderPlaced, pathOtherEvent)
	cancelled := pubsub.OrderTopic(events.OrderCancelled, pathOrderCancelled, pathOtherEvent)
	placed.Bulk, cancelled.Bulk = pubsub.Bulk(pubsub.SagaWait), pubsub.Bulk(pubsub.SagaWait)
	subs := pubsub.Subscriptions(appID, pathDeadLetter, placed, cancelled)
	return func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, subs)
	}
}
