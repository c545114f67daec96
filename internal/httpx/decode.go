package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultMaxBody is the largest request body a service reads, in bytes.
const DefaultMaxBody = 64 << 10

// DecodeJSON reads one JSON object from r's body into dst. It rejects a body that
// is not declared as JSON, is larger than maxBytes, has unknown fields, or has
// anything after the object, each with an *Error saying so.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return Errorf(EUnsupported, "Content-Type must be application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return Errorf(EUnsupported, "Content-Type must be application/json, not %q", ct)
	}
	if r.ContentLength > maxBytes {
		return Errorf(ETooLarge, "request body is %d bytes; the limit is %d", r.ContentLength, maxBytes)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBytes)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return decodeError(err, maxBytes)
		}
		return Errorf(EInvalid, "request body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error, maxBytes int64) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		unknownFn = "json: unknown field "
	)
	switch {
	case errors.As(err, &tooLarge):
		return Errorf(ETooLarge, "request body is over the limit of %d bytes", maxBytes)
	case errors.As(err, &syntax):
		return Errorf(EInvalid, "malformed JSON at byte %d", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(EInvalid, "malformed JSON: the body ends early")
	case errors.Is(err, io.EOF):
		return Errorf(EInvalid, "request body is empty; a JSON object is required")
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return Errorf(EInvalid, "field %q must be a %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
		}
		return Errorf(EInvalid, "request body must be a JSON object")
	case strings.HasPrefix(err.Error(), unknownFn):
		return Errorf(EInvalid, "unknown field %s", strings.TrimPrefix(err.Error(), unknownFn))
	default:
		return Errorf(EInvalid, "malformed JSON: %v", err)
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	default:
		return fmt.Sprintf("JSON %s", strings.ReplaceAll(goKind, "struct", "object"))
	}
}

// QueryInt reads the query parameter name of q as a whole number from lo to
// hi, or def when it is absent; anything else is an EInvalid error that says
// what is allowed.
func QueryInt(q url.Values, name string, def, lo, hi int) (int, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < lo || n > hi {
		if hi == math.MaxInt {
			return 0, Errorf(EInvalid, "%s must be a whole number of at least %d, not %q", name, lo, v[0])
		}
		return 0, Errorf(EInvalid, "%s must be a whole number from %d to %d, not %q", name, lo, hi, v[0])
	}
	return n, nil
}
