package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/httpx"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newGateway returns the gateway in front of a fake sidecar served by h.
func newGateway(t *testing.T, h http.HandlerFunc, timeout time.Duration, maxBody int64) http.Handler {
	t.Helper()
	sidecar := httptest.NewServer(h)
	t.Cleanup(sidecar.Close)
	fwd := newForwarder(quiet, sidecar.URL, map[string]bool{"hello": true, "orders": true}, timeout, maxBody)
	return newServer(quiet, "gateway-1", fwd)
}

func TestForwardRewritesToServiceInvocation(t *testing.T) {
	var seen *http.Request
	var seenBody []byte
	gw := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r
		seenBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(httpx.HeaderInstance, "orders-2")
		w.Header().Set("Location", "/orders/o1")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"o1"}`))
	}, time.Second, 1<<20)

	req := httptest.NewRequest(http.MethodPost, "/api/orders/orders/a%2Fb?x=1&y=two", strings.NewReader(`{"q":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k-1")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set(httpx.HeaderRequestID, "rid-7")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)

	require.NotNil(t, seen)
	assert.Equal(t, http.MethodPost, seen.Method)
	assert.Equal(t, "/v1.0/invoke/orders/method/orders/a%2Fb", seen.URL.EscapedPath())
	assert.Equal(t, "x=1&y=two", seen.URL.RawQuery)
	assert.Equal(t, "k-1", seen.Header.Get("Idempotency-Key"))
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", seen.Header.Get("Traceparent"))
	assert.Equal(t, "rid-7", seen.Header.Get(httpx.HeaderRequestID))
	assert.Equal(t, "/api/orders", seen.Header.Get(httpx.HeaderForwardedPrefix))
	assert.Equal(t, `{"q":1}`, string(seenBody))

	res := rec.Result()
	assert.Equal(t, http.StatusAccepted, res.StatusCode)
	assert.Equal(t, "/orders/o1", res.Header.Get("Location"))
	assert.Equal(t, []string{"orders-2"}, res.Header.Values(httpx.HeaderInstance), "the target names itself, alone")
	assert.Equal(t, []string{"rid-7"}, res.Header.Values(httpx.HeaderRequestID))
	assert.Equal(t, `{"id":"o1"}`, rec.Body.String())
}

func TestForwardFailures(t *testing.T) {
	daprErr := func(status int, code, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"errorCode": code, "message": msg})
		}
	}
	tests := []struct {
		name    string
		sidecar http.HandlerFunc
		method  string
		path    string
		body    io.Reader
		length  int64 // -1: chunked
		status  int
		detail  string
	}{
		{
			name: "unknown app", sidecar: daprErr(500, "X", "never called"),
			method: http.MethodGet, path: "/api/nope/x", status: http.StatusNotFound, detail: `no app "nope"`,
		},
		{
			name: "declared body over the limit", sidecar: daprErr(500, "X", "never called"),
			method: http.MethodPost, path: "/api/hello/x", body: bytes.NewReader(make([]byte, 2048)), length: 2048,
			status: http.StatusRequestEntityTooLarge, detail: "limit is 1024",
		},
		{
			name: "streamed body over the limit",
			sidecar: func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				if err != nil {
					return
				}
				w.Write([]byte("read it all"))
			},
			method: http.MethodPost, path: "/api/hello/x", body: io.MultiReader(bytes.NewReader(make([]byte, 4096))), length: -1,
			status: http.StatusRequestEntityTooLarge, detail: "limit of 1024",
		},
		{
			name:    "no instance resolvable",
			sidecar: daprErr(500, "ERR_DIRECT_INVOKE", "failed to resolve address for 'hello-dapr.default.svc'"),
			method:  http.MethodGet, path: "/api/hello/x", status: http.StatusServiceUnavailable, detail: "no instance of hello",
		},
		{
			name:    "instance refuses connections",
			sidecar: daprErr(500, "ERR_DIRECT_INVOKE", "rpc error: code = Unavailable desc = connection refused"),
			method:  http.MethodGet, path: "/api/hello/x", status: http.StatusServiceUnavailable, detail: "no instance of hello",
		},
		{
			name:    "invocation failed otherwise",
			sidecar: daprErr(500, "ERR_DIRECT_INVOKE", "rpc error: code = Internal desc = boom"),
			method:  http.MethodGet, path: "/api/hello/x", status: http.StatusBadGateway, detail: "could not be invoked",
		},
		{
			name:    "an escaped path is named as it was asked for",
			sidecar: daprErr(500, "ERR_DIRECT_INVOKE", "rpc error: code = Internal desc = boom"),
			method:  http.MethodGet, path: "/api/hello/a%2Fb%20c", status: http.StatusBadGateway, detail: "could not be invoked",
		},
		{
			name: "slower than the timeout",
			sidecar: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(time.Second):
				case <-r.Context().Done():
				}
			},
			method: http.MethodGet, path: "/api/hello/x", status: http.StatusGatewayTimeout, detail: "within 50ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway(t, tt.sidecar, 50*time.Millisecond, 1024)
			req := httptest.NewRequest(tt.method, tt.path, tt.body)
			if tt.body != nil {
				req.ContentLength = tt.length
			}
			rec := httptest.NewRecorder()
			gw.ServeHTTP(rec, req)
			res := rec.Result()
			assert.Equal(t, tt.status, res.StatusCode, rec.Body.String())
			assert.Equal(t, httpx.ProblemContentType, res.Header.Get("Content-Type"))
			assert.NotEmpty(t, res.Header.Get(httpx.HeaderRequestID))
			var p httpx.Problem
			require.NoError(t, json.NewDecoder(res.Body).Decode(&p))
			assert.Contains(t, p.Detail, tt.detail)
			assert.Equal(t, tt.path, p.Instance, "the problem names the client's path")
		})
	}
}

func TestForwardSidecarDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	gw := newServer(quiet, "gateway-1", newForwarder(quiet, "http://"+addr, map[string]bool{"hello": true}, time.Second, 1024))
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/hello/service", nil))
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.Equal(t, httpx.ProblemContentType, rec.Header().Get("Content-Type"))
}

func TestForwardPassesAppErrorsThrough(t *testing.T) {
	gw := newGateway(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"errorCode":"MY_OWN","message":"the app's own error"}`))
	}, time.Second, 1024)
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/hello/x", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.JSONEq(t, `{"errorCode":"MY_OWN","message":"the app's own error"}`, rec.Body.String())
}

func TestForwardPassesARefusalAtCapacityThrough(t *testing.T) {
	gw := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteProblem(w, r, httpx.EOverloaded, "at capacity")
	}, time.Second, 1024)
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/orders/", strings.NewReader(`{}`)))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"), "the client learns when to retry")
	assert.Equal(t, httpx.ProblemContentType, rec.Header().Get("Content-Type"))
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, httpx.EOverloaded, p.Code)
}

func TestLoadConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		env  map[string]string
		err  string
	}{
		{"defaults", map[string]string{"GATEWAY_APPS": "hello, orders"}, ""},
		{"no apps", map[string]string{}, "GATEWAY_APPS is required"},
		{"bad port", map[string]string{"GATEWAY_APPS": "a", "APP_PORT": "http"}, "not a port"},
		{"bad timeout", map[string]string{"GATEWAY_APPS": "a", "GATEWAY_TIMEOUT": "soon"}, "not a positive duration"},
		{"bad body limit", map[string]string{"GATEWAY_APPS": "a", "GATEWAY_MAX_BODY": "-1"}, "not a positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(env(tt.env))
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 8080, c.port)
			assert.Equal(t, 3500, c.daprHTTP)
			assert.Equal(t, map[string]bool{"hello": true, "orders": true}, c.apps)
			assert.Equal(t, 10*time.Second, c.timeout)
		})
	}
}

// BenchmarkForward sends hello's GET /service through the gateway's handler to
// a fake sidecar on loopback: the gateway's cost per request, with the fake
// sidecar's (an answer of 19 bytes, as hello's).
func BenchmarkForward(b *testing.B) {
	sidecar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("Hello from Service!"))
	}))
	defer sidecar.Close()
	fwd := newForwarder(quiet, sidecar.URL, map[string]bool{"hello": true}, 10*time.Second, 1<<20)
	h := newServer(quiet, "gateway-1", fwd)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/hello/service", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
