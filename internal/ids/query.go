package ids

import (
	"strings"

	"github.com/daprshop/daprshop/internal/httpx"
)

// ParseList reads the ids of the query parameter param, given as its values:
// ids separated by commas, the parameter given once or several times. It
// returns each id once, in the order first named. Each id is checked by Check
// as what (for example "product id"). No value at all, an empty or bad id, or
// more than limit distinct ids is the client's mistake: the error is an
// httpx.EInvalid that names param. The error about the count names the
// things counted after what, less a final " id": "names 101 products".
//
// Every id is read before the count is checked, so that the error says how
// many the client named; the server's limit on the size of a request's
// header (the query is in its first line) bounds that work.
func ParseList(param, what string, values []string, limit int) ([]string, error) {
	if len(values) == 0 {
		return nil, httpx.Errorf(httpx.EInvalid, "query parameter %s is required", param)
	}
	var out []string
	seen := map[string]bool{}
	for _, v := range values {
		for _, id := range strings.Split(v, ",") {
			if err := Check(what, id); err != nil {
				return nil, httpx.Errorf(httpx.EInvalid, "query parameter %s: %v", param, err)
			}
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	if len(out) > limit {
		return nil, httpx.Errorf(httpx.EInvalid, "query parameter %s names %d %ss; the limit is %d",
			param, len(out), strings.TrimSuffix(what, " id"), limit)
	}
	return out, nil
}
