package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
)

// ProblemContentType is the media type of every error answer.
const ProblemContentType = "application/problem+json"

// RetryAfter is how long, in seconds, a client refused with EOverloaded is
// asked to wait (the Retry-After header) before it tries again.
const RetryAfter = 1

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Code      string `json:"code"`
	RequestID string `json:"requestId,omitempty"`
}

// WriteError answers with the problem that err stands for. An error that is not an
// *Error is a bug or a failing dependency: it is logged in full and the client sees
// a generic message. A refusal past capacity is not logged here: the service that
// refuses says so once a second, not once a request.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"requestId", RequestID(r), "err", err)
		e = &Error{Code: EInternal, Message: "internal error"}
	} else if Status(e.Code) >= 500 && e.Code != EOverloaded {
		log.WarnContext(r.Context(), "upstream failed", "method", r.Method, "path", r.URL.Path,
			"requestId", RequestID(r), "err", err)
	}
	WriteProblem(w, r, e.Code, e.Message)
}

// WriteProblem answers with a problem+json document for code and detail.
func WriteProblem(w http.ResponseWriter, r *http.Request, code, detail string) {
	status := Status(code)
	p := Problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Instance:  instance(r),
		Code:      code,
		RequestID: RequestID(r),
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if code == EOverloaded {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// instance is the path the client asked for, which a problem names: the
// app's own path, under the prefix the gateway forwarded the request from.
func instance(r *http.Request) string {
	prefix, path := ForwardedPrefix(r), r.URL.EscapedPath()
	if prefix != "" && path == "/" {
		return prefix
	}
	return prefix + path
}

// WriteJSON answers with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
