package main

import (
	"log/slog"
	"net/http"
	"time"

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
	r.HandleFunc("/notified", handleListNotified(log, f)).Methods(http.MethodGet)

	r.HandleFunc("/dapr/subscribe", handleSubscribe(appID)).Methods(http.MethodGet)
	confirmed, cancelled := onOrderEvent(f, events.OrderConfirmed), onOrderEvent(f, events.OrderCancelled)
	r.HandleFunc(pathOrderConfirmed, pubsub.BulkHandler(log, confirmed)).Methods(http.MethodPost)
	r.HandleFunc(pathOrderCancelled, pubsub.BulkHandler(log, cancelled)).Methods(http.MethodPost)
	r.HandleFunc(pathOtherEvent, pubsub.BulkHandler(log, pubsub.Ignore)).Methods(http.MethodPost)
	r.HandleFunc(pathDeadLetter, dead.Receive(log, pubsub.ByType(map[string]pubsub.Process{
		events.OrderConfirmed: confirmed,
		events.OrderCancelled: cancelled,
	}))).Methods(http.MethodPost)
	r.HandleFunc("/deadletters", dead.Summary()).Methods(http.MethodGet)
}

// feedWait is how long the sidecar gathers the order events for notifications,
// which nothing waits for.
const feedWait = 100 * time.Millisecond

// handleSubscribe answers the sidecar's GET /dapr/subscribe: confirmed and
// cancelled orders, each on its own topic, go to their own paths, an event of any
// other type on those topics is acknowledged, and what cannot be processed ends
// on the notifications dead-letter topic.
func handleSubscribe(appID string) http.HandlerFunc {
	confirmed := pubsub.OrderTopic(events.OrderConfirmed, pathOrderConfirmed, pathOtherEvent)
	cancelled := pubsub.OrderTopic(events.OrderCancelled, pathOrderCancelled, pathOtherEvent)
	confirmed.Bulk, cancelled.Bulk = pubsub.Bulk(feedWait), pubsub.Bulk(feedWait)
	subs := pubsub.Subscriptions(appID, pathDeadLetter, confirmed, cancelled)
	return func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, subs)
	}
}
