package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/httpx"
)

// forwarder sends /api/{appID}/{path} to {path} of app appID through the
// sidecar's service invocation API, and the answer back unchanged.
type forwarder struct {
	log     *slog.Logger
	apps    map[string]bool
	timeout time.Duration
	maxBody int64
	proxy   *httputil.ReverseProxy
}

type ctxKey int

const (
	appIDKey ctxKey = iota
	pathKey
)

func newForwarder(log *slog.Logger, sidecar string, apps map[string]bool, timeout time.Duration, maxBody int64) *forwarder {
	base, _ := url.Parse(sidecar)
	f := &forwarder{log: log, apps: apps, timeout: timeout, maxBody: maxBody}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			appID := pr.In.Context().Value(appIDKey).(string)
			rest := strings.TrimPrefix(pr.In.URL.EscapedPath(), "/api/"+appID)
			rest = strings.TrimPrefix(rest, "/")
			pr.Out.URL.Scheme = base.Scheme
			pr.Out.URL.Host = base.Host
			pr.Out.URL.Path = "/v1.0/invoke/" + appID + "/method/" + unescape(rest)
			pr.Out.URL.RawPath = "/v1.0/invoke/" + appID + "/method/" + rest
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = base.Host
			pr.SetXForwarded()
			pr.Out.Header.Set(httpx.HeaderForwardedPrefix, "/api/"+appID)
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
		},
		ModifyResponse: sidecarFailure,
		ErrorHandler:   f.fail,
	}
	return f
}

func unescape(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	appID := mux.Vars(r)["appID"]
	if !f.apps[appID] {
		httpx.WriteProblem(w, r, httpx.ENotFound, fmt.Sprintf("no app %q behind this gateway", appID))
		return
	}
	if r.ContentLength > f.maxBody {
		httpx.WriteProblem(w, r, httpx.ETooLarge,
			fmt.Sprintf("request body is %d bytes; the limit is %d", r.ContentLength, f.maxBody))
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, f.maxBody)
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout)
	defer cancel()
	ctx = context.WithValue(ctx, appIDKey, appID)
	ctx = context.WithValue(ctx, pathKey, r.URL.EscapedPath())
	// The target names its own instance; the gateway's would otherwise stand
	// beside it, since the proxy adds the target's headers to those already set.
	w.Header().Del(httpx.HeaderInstance)
	w.Header().Del(httpx.HeaderRequestID)
	f.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// sidecarError is a failure the sidecar reported for the invocation itself, as
// opposed to an answer of the target app.
type sidecarError struct {
	code    string
	message string
}

func (e *sidecarError) Error() string { return e.code + ": " + e.message }

// daprError is the body of an error answer of the sidecar's own API.
type daprError struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// sidecarFailure tells an invocation that failed in Dapr (no such app, no
// instance reachable) from an error answer of the target app, which passes
// through unchanged.
func sidecarFailure(res *http.Response) error {
	res.Header.Set(httpx.HeaderRequestID, res.Request.Header.Get(httpx.HeaderRequestID))
	if res.StatusCode < 500 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if err != nil {
		return err
	}
	var de daprError
	if json.Unmarshal(body, &de) == nil && strings.HasPrefix(de.ErrorCode, "ERR_DIRECT_INVOKE") {
		return &sidecarError{code: de.ErrorCode, message: de.Message}
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// fail answers for a request that got no answer from its target. r is the
// outgoing request; the client's path is in its context.
func (f *forwarder) fail(w http.ResponseWriter, r *http.Request, err error) {
	appID, _ := r.Context().Value(appIDKey).(string)
	path, _ := r.Context().Value(pathKey).(string)
	var (
		tooLarge *http.MaxBytesError
		sideErr  *sidecarError
	)
	code, detail := httpx.EBadGateway, fmt.Sprintf("%s did not answer", appID)
	switch {
	case errors.As(err, &tooLarge):
		code, detail = httpx.ETooLarge, fmt.Sprintf("request body is over the limit of %d bytes", f.maxBody)
	case errors.Is(err, context.DeadlineExceeded):
		code, detail = httpx.ETimeout, fmt.Sprintf("%s did not answer within %s", appID, f.timeout)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return
	case errors.As(err, &sideErr) && unresolved(sideErr.message):
		code, detail = httpx.EUnavailable, fmt.Sprintf("no instance of %s is reachable", appID)
	case errors.As(err, &sideErr):
		code, detail = httpx.EBadGateway, fmt.Sprintf("%s could not be invoked", appID)
	}
	f.log.WarnContext(r.Context(), "forward failed", "app", appID, "path", path,
		"requestId", httpx.RequestID(r), "err", err)
	w.Header().Set(httpx.HeaderRequestID, httpx.RequestID(r))
	// The problem names the client's path, which the outgoing request no
	// longer holds, and no prefix: the prefix is what the gateway tells the app.
	r.URL.Path, r.URL.RawPath = unescape(path), path
	r.Header.Del(httpx.HeaderForwardedPrefix)
	httpx.WriteProblem(w, r, code, detail)
}

// unresolved reports whether the sidecar's message says that no instance of the
// app could be found or connected to, rather than that the call itself failed.
func unresolved(msg string) bool {
	for _, s := range []string{"resolve", "connection refused", "no such host", "Unavailable", "app channel"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
