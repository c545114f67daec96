package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/httpx"
)

func TestServer(t *testing.T) {
	srv := newServer(slog.New(slog.NewTextHandler(io.Discard, nil)), "hello-1")
	tests := []struct {
		name, method, path string
		status             int
		contentType, body  string
	}{
		{"seed answer", http.MethodGet, "/service", http.StatusOK, "text/plain; charset=utf-8", "Hello from Service!"},
		{"health", http.MethodGet, "/healthz", http.StatusOK, "text/plain; charset=utf-8", "ok\n"},
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound, httpx.ProblemContentType, ""},
		{"wrong method", http.MethodPost, "/service", http.StatusMethodNotAllowed, httpx.ProblemContentType, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			res := rec.Result()
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.status, res.StatusCode)
			assert.Equal(t, tt.contentType, res.Header.Get("Content-Type"))
			assert.Equal(t, "hello-1", res.Header.Get(httpx.HeaderInstance))
			assert.NotEmpty(t, res.Header.Get(httpx.HeaderRequestID))
			if tt.body != "" {
				assert.Equal(t, tt.body, string(body))
			}
		})
	}
}
