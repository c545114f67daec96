// Package httpx holds what every daprshop service needs to speak HTTP the same way:
// one error type with codes, problem+json answers (RFC 9457), strict JSON decoding,
// request ids, instance headers and a server that shuts down gracefully.
package httpx

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Each maps to one HTTP status in Status.
const (
	EInvalid         = "invalid"          // 400: the request is malformed or breaks a rule
	ENotFound        = "not_found"        // 404: the resource does not exist
	EMethod          = "method"           // 405: the resource does not take this method
	EConflict        = "conflict"         // 409: the resource changed underneath the request
	ETooLarge        = "too_large"        // 413: the body is over the limit
	EUnsupported     = "unsupported"      // 415: the body is not JSON
	EUnprocessable   = "unprocessable"    // 422: well-formed but cannot be carried out
	EPreconditionReq = "precondition_req" // 428: a required header is missing
	EInternal        = "internal"         // 500: a bug or a failing dependency; details go to the log
	EBadGateway      = "bad_gateway"      // 502: the upstream answered wrongly or not at all
	EUnavailable     = "unavailable"      // 503: the upstream cannot be reached now
	EOverloaded      = "overloaded"       // 503: the service refuses work past its capacity; retry after RetryAfter
	ETimeout         = "timeout"          // 504: the upstream did not answer in time
)

// Error is an error whose message is safe to show to the client.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Status maps an error code to its HTTP status.
func Status(code string) int {
	switch code {
	case EInvalid:
		return http.StatusBadRequest
	case ENotFound:
		return http.StatusNotFound
	case EMethod:
		return http.StatusMethodNotAllowed
	case EConflict:
		return http.StatusConflict
	case ETooLarge:
		return http.StatusRequestEntityTooLarge
	case EUnsupported:
		return http.StatusUnsupportedMediaType
	case EUnprocessable:
		return http.StatusUnprocessableEntity
	case EPreconditionReq:
		return http.StatusPreconditionRequired
	case EBadGateway:
		return http.StatusBadGateway
	case EUnavailable, EOverloaded:
		return http.StatusServiceUnavailable
	case ETimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}
