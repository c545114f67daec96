package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type item struct {
	Name     string `json:"name"`
	Quantity int64  `json:"quantity"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		code, detail            string
	}{
		{"valid", "application/json", `{"name":"a","quantity":2}`, "", ""},
		{"valid with charset", "application/json; charset=utf-8", `{"name":"a"}`, "", ""},
		{"no content type", "", `{"name":"a"}`, EUnsupported, "must be application/json"},
		{"wrong content type", "text/plain", `{"name":"a"}`, EUnsupported, `not "text/plain"`},
		{"malformed", "application/json", `{"name":`, EInvalid, "ends early"},
		{"syntax error", "application/json", `{"name" "a"}`, EInvalid, "malformed JSON at byte"},
		{"empty", "application/json", ``, EInvalid, "empty"},
		{"wrong type", "application/json", `{"quantity":"two"}`, EInvalid, `"quantity" must be a number`},
		{"not an object", "application/json", `[1]`, EInvalid, "must be a JSON object"},
		{"unknown field", "application/json", `{"name":"a","color":"red"}`, EInvalid, `unknown field "color"`},
		{"two objects", "application/json", `{"name":"a"}{"name":"b"}`, EInvalid, "single JSON object"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, ETooLarge, "limit of 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			r.ContentLength = -1 // as a chunked body: the limit is found while reading
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var v item
			err := DecodeJSON(httptest.NewRecorder(), r, &v, 64)
			if tt.code == "" {
				require.NoError(t, err)
				assert.Equal(t, "a", v.Name)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.code, ErrorCode(err))
			assert.Contains(t, err.Error(), tt.detail)
		})
	}
}

func TestDecodeJSONRejectsDeclaredLengthOverLimit(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat(" ", 100)))
	r.Header.Set("Content-Type", "application/json")
	err := DecodeJSON(httptest.NewRecorder(), r, &item{}, 64)
	assert.Equal(t, ETooLarge, ErrorCode(err))
	assert.Contains(t, err.Error(), "100 bytes")
}

func TestStatusOfEveryCode(t *testing.T) {
	want := map[string]int{
		EInvalid: 400, ENotFound: 404, EMethod: 405, EConflict: 409, ETooLarge: 413, EUnsupported: 415,
		EUnprocessable: 422, EPreconditionReq: 428, EInternal: 500, EBadGateway: 502, EUnavailable: 503,
		EOverloaded: 503, ETimeout: 504, "anything else": 500,
	}
	for code, status := range want {
		assert.Equal(t, status, Status(code), code)
	}
}

func TestWriteErrorHidesInternalDetails(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	h := RequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, errors.New("redis: connection refused at 10.0.0.7"))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/things/1", nil))

	assert.Equal(t, 500, rec.Code)
	assert.Equal(t, ProblemContentType, rec.Header().Get("Content-Type"))
	var p Problem
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&p))
	assert.Equal(t, "internal error", p.Detail)
	assert.Equal(t, "/things/1", p.Instance)
	assert.Equal(t, rec.Header().Get(HeaderRequestID), p.RequestID)
	assert.Contains(t, logged.String(), "connection refused", "the operator sees the cause")
}

// TestProblemNamesTheClientsPath checks that a problem's instance is the path
// the client asked for, behind the gateway too.
func TestProblemNamesTheClientsPath(t *testing.T) {
	for _, tt := range []struct{ prefix, path, want string }{
		{"", "/things/1", "/things/1"},
		{"/api/inventory", "/stock/a%2Fb", "/api/inventory/stock/a%2Fb"},
		{"/api/orders", "/", "/api/orders"},
		{"/api/orders/", "/o1", "/api/orders/o1"},
		{"not-a-path", "/stock/x", "/stock/x"},
	} {
		t.Run(tt.prefix+tt.path, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path+"?q=1", nil)
			if tt.prefix != "" {
				req.Header.Set(HeaderForwardedPrefix, tt.prefix)
			}
			rec := httptest.NewRecorder()
			WriteProblem(rec, req, EInvalid, "bad")
			var p Problem
			require.NoError(t, json.NewDecoder(rec.Body).Decode(&p))
			assert.Equal(t, tt.want, p.Instance)
		})
	}
}

func TestWriteErrorShowsClientErrors(t *testing.T) {
	rec := httptest.NewRecorder()
	err := Errorf(ENotFound, "product %q not found", "tea")
	WriteError(rec, httptest.NewRequest(http.MethodGet, "/", nil), slog.New(slog.NewTextHandler(io.Discard, nil)), err)
	assert.Equal(t, 404, rec.Code)
	var p Problem
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&p))
	assert.Equal(t, `product "tea" not found`, p.Detail)
	assert.Equal(t, ENotFound, p.Code)
}

func TestOverloadedAsksToRetryAndIsNotLoggedPerRequest(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	r := NewRouter()
	r.HandleFunc("/full", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, Errorf(EOverloaded, "at capacity"))
	})
	r.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, Errorf(EUnavailable, "the store is down"))
	})
	h := Wrap(log, "svc-1", r)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/full", nil))
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Empty(t, logged.String(), "a refusal at capacity is the service's to log, once a second")

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/down", nil))
	assert.Equal(t, 503, rec.Code)
	assert.Empty(t, rec.Header().Get("Retry-After"), "no promise when the service cannot tell")
	assert.Contains(t, logged.String(), "the store is down")
}

func TestMiddleware(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := NewRouter()
	r.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(RequestID(r))) }).Methods(http.MethodGet)
	r.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("bug") }).Methods(http.MethodGet)
	h := Wrap(log, "svc-1", r)

	tests := []struct {
		name, method, path, requestID string
		status                        int
	}{
		{"keeps the client's request id", http.MethodGet, "/ok", "abc", 200},
		{"makes a request id", http.MethodGet, "/ok", "", 200},
		{"replaces an absurd request id", http.MethodGet, "/ok", strings.Repeat("x", 200), 200},
		{"panic becomes a 500", http.MethodGet, "/boom", "", 500},
		{"unknown path", http.MethodGet, "/nope", "", 404},
		{"wrong method", http.MethodPost, "/ok", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.requestID != "" {
				req.Header.Set(HeaderRequestID, tt.requestID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, "svc-1", rec.Header().Get(HeaderInstance))
			id := rec.Header().Get(HeaderRequestID)
			require.NotEmpty(t, id)
			if tt.requestID != "" && len(tt.requestID) <= 128 {
				assert.Equal(t, tt.requestID, id)
			} else {
				assert.Len(t, id, 32)
			}
			if tt.status != 200 {
				assert.Equal(t, ProblemContentType, rec.Header().Get("Content-Type"))
			} else {
				assert.Equal(t, id, rec.Body.String(), "the handler sees the same id")
			}
		})
	}
}

func TestForwardedPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"/api/orders": "/api/orders", "/api/orders/": "/api/orders", "": "", "api": "", "/a?b": "",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(HeaderForwardedPrefix, in)
		assert.Equal(t, want, ForwardedPrefix(r), in)
	}
}

func TestConfigReaders(t *testing.T) {
	env := func(k string) string {
		return map[string]string{"P": "8081", "BADP": "99999", "D": "250ms", "BADD": "-1s", "N": "42", "BADN": "x"}[k]
	}
	p, err := Port(env, "P", 1)
	assert.NoError(t, err)
	assert.Equal(t, 8081, p)
	p, err = Port(env, "UNSET", 7)
	assert.NoError(t, err)
	assert.Equal(t, 7, p)
	_, err = Port(env, "BADP", 1)
	assert.Error(t, err)
	d, err := Duration(env, "D", 0)
	assert.NoError(t, err)
	assert.Equal(t, "250ms", d.String())
	_, err = Duration(env, "BADD", 0)
	assert.Error(t, err)
	n, err := Int64(env, "N", 0)
	assert.NoError(t, err)
	assert.Equal(t, int64(42), n)
	_, err = Int64(env, "BADN", 0)
	assert.Error(t, err)
}
