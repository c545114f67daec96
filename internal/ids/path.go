package ids

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/httpx"
)

// FromPath returns the id in r's path under the route variable name, checked by
// Check. An id that breaks the rule is the client's mistake: the error is an
// httpx.EInvalid that starts with what (for example "product id").
func FromPath(r *http.Request, name, what string) (string, error) {
	id := mux.Vars(r)[name]
	if err := Check(what, id); err != nil {
		return "", httpx.Errorf(httpx.EInvalid, "%v", err)
	}
	return id, nil
}
