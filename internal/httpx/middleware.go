package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// Header names every service uses.
const (
	HeaderRequestID = "X-Request-Id"
	HeaderInstance  = "X-Instance-Id"
)

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request id that the RequestIDs middleware gave r.
func RequestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// NewID returns 16 random bytes in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestIDs keeps the client's X-Request-Id (when it is sane) or makes one, puts
// it in the request's context and header, and echoes it in the answer.
func RequestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if id == "" || len(id) > 128 {
			id = NewID()
			r.Header.Set(HeaderRequestID, id)
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// HeaderForwardedPrefix is the path prefix under which the gateway exposes an app,
// such as /api/orders.
const HeaderForwardedPrefix = "X-Forwarded-Prefix"

// ForwardedPrefix returns the prefix the gateway exposes this app under, so that
// a Location header points where the client can follow it; "" when called
// directly.
func ForwardedPrefix(r *http.Request) string {
	p := r.Header.Get(HeaderForwardedPrefix)
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#\r\n") {
		return ""
	}
	return strings.TrimSuffix(p, "/")
}

// InstanceHeader names the answering instance in every answer, so that a client
// can see which instance of an app served it.
func InstanceHeader(instance string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderInstance, instance)
			next.ServeHTTP(w, r)
		})
	}
}

// InstanceID names this process: INSTANCE_ID when set, else host and pid.
func InstanceID(getenv func(string) string) string {
	if id := getenv("INSTANCE_ID"); id != "" {
		return id
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// Recoverer turns a panic in a handler into a 500 problem and a log line, so that
// one bad request can never take the whole service down.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "handler panicked", "method", r.Method,
						"path", r.URL.Path, "requestId", RequestID(r), "panic", fmt.Sprint(v))
					WriteProblem(w, r, EInternal, "internal error")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// AccessLog logs one line per request at debug level, and at warn level for 5xx
// but a refusal with Retry-After: a service past its capacity refuses hundreds
// a second and says so itself, once a second.
func AccessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r)
			level := slog.LevelDebug
			if sw.status >= 500 && w.Header().Get("Retry-After") == "" {
				level = slog.LevelWarn
			}
			log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "duration", time.Since(start), "requestId", RequestID(r))
		})
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes streaming answers through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
