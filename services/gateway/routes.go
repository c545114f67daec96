package main

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/httpx"
)

func addRoutes(r *mux.Router, fwd *forwarder) {
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet)
	r.PathPrefix("/api/{appID}").Handler(fwd)
}
