package ids

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/assert"

	"github.com/daprshop/daprshop/internal/httpx"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, id, wantErr string
	}{
		{"letters and digits", "apple42", ""},
		{"punctuation allowed", "A.b_c-1", ""},
		{"longest", strings.Repeat("x", MaxLen), ""},
		{"empty", "", "order id is empty"},
		{"too long", strings.Repeat("x", MaxLen+1), "order id is 65 characters long; the limit is 64"},
		{"slash", "a/b", `order id "a/b" may only hold letters, digits, '.', '_' and '-'`},
		{"space", "a b", "may only hold"},
		{"non-ascii", "café", "may only hold"},
		{"dapr key separator", "a||b", "may only hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("order id", tt.id)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestFromPath(t *testing.T) {
	r := mux.SetURLVars(httptest.NewRequest(http.MethodGet, "/things/apple", nil), map[string]string{"thingID": "apple"})
	id, err := FromPath(r, "thingID", "thing id")
	assert.NoError(t, err)
	assert.Equal(t, "apple", id)

	r = mux.SetURLVars(httptest.NewRequest(http.MethodGet, "/things/a%20b", nil), map[string]string{"thingID": "a b"})
	_, err = FromPath(r, "thingID", "thing id")
	assert.Equal(t, httpx.EInvalid, httpx.ErrorCode(err))
	assert.ErrorContains(t, err, `thing id "a b" may only hold`)

	_, err = FromPath(r, "otherID", "other id")
	assert.ErrorContains(t, err, "other id is empty", "a route without the variable has no id")
}
