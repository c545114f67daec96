package main

import (
	"log/slog"
	"net/http"

	"github.com/daprshop/daprshop/internal/httpx"
)

func newServer(log *slog.Logger, instance string, fwd *forwarder) http.Handler {
	r := httpx.NewRouter()
	addRoutes(r, fwd)
	return httpx.Wrap(log, instance, r)
}
