package ids

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
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

func TestParseList(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("o%d", i)
	}
	tests := []struct {
		name    string
		values  []string
		want    []string
		wantErr string
	}{
		{name: "one", values: []string{"o1"}, want: []string{"o1"}},
		{name: "comma-separated, in the order asked", values: []string{"o3,o1,o2"}, want: []string{"o3", "o1", "o2"}},
		{name: "given several times", values: []string{"o2", "o1,o3"}, want: []string{"o2", "o1", "o3"}},
		{name: "duplicates once, where first named", values: []string{"o2,o1,o2", "o1"}, want: []string{"o2", "o1"}},
		{name: "the limit", values: many[:100], want: many[:100]},
		{name: "duplicates do not count against the limit", values: append(slices.Clone(many[:100]), many[:100]...), want: many[:100]},
		{name: "missing", values: nil, wantErr: "query parameter orderIds is required"},
		{name: "empty", values: []string{""}, wantErr: "query parameter orderIds: order id is empty"},
		{name: "empty element", values: []string{"o1,,o2"}, wantErr: "query parameter orderIds: order id is empty"},
		{name: "trailing comma", values: []string{"o1,"}, wantErr: "order id is empty"},
		{name: "one of several empty", values: []string{"o1", ""}, wantErr: "order id is empty"},
		{name: "bad id", values: []string{"o1,a/b"}, wantErr: `query parameter orderIds: order id "a/b" may only hold`},
		{name: "too long", values: []string{strings.Repeat("o", MaxLen+1)}, wantErr: "order id is 65 characters long"},
		{name: "too many", values: []string{strings.Join(many, ",")}, wantErr: "query parameter orderIds names 101 orders; the limit is 100"},
		{name: "too many over several values", values: many, wantErr: "names 101 orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseList("orderIds", "order id", tt.values, 100)
			if tt.wantErr != "" {
				assert.Equal(t, httpx.EInvalid, httpx.ErrorCode(err))
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
