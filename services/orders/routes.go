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
	pathStockReserved    = "/events/stock-reserved"
	pathStockRejected    = "/events/stock-rejected"
	pathPaymentSucceeded = "/events/payment-succeeded"
	pathPaymentFailed    = "/events/payment-failed"
	pathOtherEvent       = "/events/other"
	pathDeadLetter       = "/events/deadletter"
)

func addRoutes(r *mux.Router, log *slog.Logger, cfg config, svc *orders, dead *deadLetters) {
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet)

	// The orders resource is the app's root: the gateway exposes it as /api/orders.
	// Fixed paths come before /{id}, which would take them otherwise.
	r.HandleFunc("/deadletters", handleDeadLetters(dead)).Methods(http.MethodGet)
	r.HandleFunc("/", handlePlaceOrder(log, svc)).Methods(http.MethodPost)
	r.HandleFunc("/", handleListOrders(log, svc)).Methods(http.MethodGet)
	r.HandleFunc("/{id}", handleGetOrder(log, svc)).Methods(http.MethodGet)

	r.HandleFunc("/dapr/subscribe", handleSubscribe(cfg.AppID)).Methods(http.MethodGet)
	r.HandleFunc(pathStockReserved, handleOutcome(log, svc, events.StockReserved)).Methods(http.MethodPost)
	r.HandleFunc(pathStockRejected, handleOutcome(log, svc, events.StockRejected)).Methods(http.MethodPost)
	r.HandleFunc(pathPaymentSucceeded, handleOutcome(log, svc, events.PaymentSucceeded)).Methods(http.MethodPost)
	r.HandleFunc(pathPaymentFailed, handleOutcome(log, svc, events.PaymentFailed)).Methods(http.MethodPost)
	r.HandleFunc(pathOtherEvent, pubsub.BulkHandler(log, pubsub.Ignore)).Methods(http.MethodPost)
	r.HandleFunc(pathDeadLetter, handleDeadLetter(log, svc, dead)).Methods(http.MethodPost)
}
