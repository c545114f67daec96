package main

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/httpx"
)

func addRoutes(r *mux.Router) {
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet)
	r.HandleFunc("/service", handleService()).Methods(http.MethodGet)
}

// handleService is the seed's ServiceHandler.get.
func handleService() http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Hello from Service!"))
	}
}
