package main

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/httpx"
)

// addRoutes lists the catalog's whole API. It consumes no events, so it has no
// /dapr/subscribe: the sidecar takes the 404 as "no subscriptions".
func addRoutes(r *mux.Router, log *slog.Logger, cat *catalog) {
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet)
	r.HandleFunc("/products", handleListProducts(log, cat)).Methods(http.MethodGet)
	r.HandleFunc("/products", handleCreateProduct(log, cat)).Methods(http.MethodPost)
	r.HandleFunc("/products/{id}", handleGetProduct(log, cat)).Methods(http.MethodGet)
	r.HandleFunc("/products/{id}", handlePutProduct(log, cat)).Methods(http.MethodPut)
}
