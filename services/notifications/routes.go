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
	pathOrderConfirmed = "/events/order-confirmed"
	pathOrderCancelled = "/events/order-cancelled"
	pathOtherEvent     = "/events/other"
	pathDeadLetter     = "/events/deadletter"
)

// addRoutes lists the notifications service's whole API, the events it consumes
// included.
func addRoutes(r *mux.Router, log *slog.Logger, appID string, f *feeds, dead *pubsub.DeadLetters) {
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet)
	// The gateway forwards /api/notifications?customerId=... to this app's root,
	// so the feed is served there: that is the address clients are given.
	r.HandleFunc("/", handleListNotifications(log, f)).Methods(http.MethodGet)

	r.HandleFunc("/dapr/subscribe", handleSubscribe(appID)).Methods(http.MethodGet)
	r.HandleFunc(pathOrderConfirmed, pubsub.Handler(log, onOrderEvent(f, events.OrderConfirmed))).Methods(http.MethodPost)
	r.HandleFunc(pathOrderCancelled, pubsub.Handler(log, onOrderEvent(f, events.OrderCancelled))).Methods(http.MethodPost)
	r.HandleFunc(pathOtherEvent, pubsub.Ack(log)).Methods(http.MethodPost)
	r.HandleFunc(pathDeadLetter, dead.Receive(log)).Methods(http.MethodPost)
	r.HandleFunc("/deadletters", dead.Summary()).Methods(http.MethodGet)
}

// handleSubscribe answers the sidecar's GET /dapr/subscribe: confirmed and
// cancelled orders, each on its own topic, go to their own paths, an event of any
// other type on those topics is acknowledged, and what cannot be processed ends
// on the notifications dead-letter topic.
func handleSubscribe(appID string) http.HandlerFunc {
	subs := pubsub.Subscriptions(appID, pathDeadLetter,
		pubsub.OrderTopic(events.OrderConfirmed, pathOrderConfirmed, pathOtherEvent),
		pubsub.OrderTopic(events.OrderCancelled, pathOrderCancelled, pathOtherEvent))
	return func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, subs)
	}
}
