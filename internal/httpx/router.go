package httpx

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
)

// NewRouter returns a router whose unknown paths and methods answer with
// problem+json like every other error.
func NewRouter() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, ENotFound, "no route for "+r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, EMethod, r.Method+" is not allowed on "+r.URL.Path)
	})
	return r
}

// Wrap puts the middleware every service shares around h: request ids, the
// instance header, panic recovery and the access log.
func Wrap(log *slog.Logger, instance string, h http.Handler) http.Handler {
	h = AccessLog(log)(h)
	h = Recoverer(log)(h)
	h = InstanceHeader(instance)(h)
	return RequestIDs(h)
}
