// Package lookuptest runs the table tests of the consumers' batch lookups
// (inventory's GET /reservations, payments' /charges, notifications'
// /notified, each with orderIds): the same rules hold for all three.
package lookuptest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/httpx"
)

// Case is one request to a lookup and what it answers.
type Case struct {
	Name string
	// Setup changes the store after Lookup.Seed, when set.
	Setup func(*daprfake.Client)
	// Method is GET when empty.
	Method, Path string
	Status       int
	// Detail is in the problem's detail, for a refusal.
	Detail string
	// Want is the JSON answer, for a success.
	Want string
	// Keys is, when set, how many keys the bulk read of a success asks.
	Keys int
}

// Lookup is one app's lookup.
type Lookup struct {
	// Store is the state store it reads, and KeyPrefix a prefix of its keys
	// there, which no answer may name.
	Store, KeyPrefix string
	// Seed writes the records every case starts from.
	Seed func(*daprfake.Client)
	// Server is the app's handler on the fake.
	Server func(*daprfake.Client) http.Handler
}

// Run runs each case on a store of its own and checks what every lookup must
// do besides: change nothing, read no single key, refuse with problem+json
// that names neither the store's error nor its keys, read nothing for a bad
// request, and answer a good one with JSON from one bulk read that asks each
// key once.
func (l Lookup) Run(t *testing.T, cases []Case) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			fake := &daprfake.Client{}
			l.Seed(fake)
			if tt.Setup != nil {
				tt.Setup(fake)
			}
			before := fake.Dump(l.Store)
			method := tt.Method
			if method == "" {
				method = http.MethodGet
			}
			rec := httptest.NewRecorder()
			l.Server(fake).ServeHTTP(rec, httptest.NewRequest(method, tt.Path, nil))

			assert.Equal(t, tt.Status, rec.Code, rec.Body.String())
			assert.Equal(t, before, fake.Dump(l.Store), "a lookup changes nothing")
			assert.Zero(t, fake.Reads().Single, "no single-key reads")
			if tt.Status >= 400 {
				assert.Equal(t, httpx.ProblemContentType, rec.Header().Get("Content-Type"))
				var p httpx.Problem
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				assert.Contains(t, p.Detail, tt.Detail)
				assert.NotContains(t, rec.Body.String(), "connection refused", "the store's error stays in the log")
				assert.NotContains(t, rec.Body.String(), l.KeyPrefix, "the store's keys stay in the log")
				if tt.Status < 500 {
					assert.Zero(t, fake.Reads().Bulk, "a refused request reads nothing")
				}
				return
			}
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.JSONEq(t, tt.Want, rec.Body.String())
			assert.Equal(t, 1, fake.Reads().Bulk, "one bulk read")
			keys := fake.Reads().BulkKeys
			distinct := slices.Clone(keys)
			slices.Sort(distinct)
			assert.Len(t, slices.Compact(distinct), len(keys), "each key asked once")
			if tt.Keys > 0 {
				assert.Len(t, keys, tt.Keys, "keys asked")
			}
		})
	}
}

// Refusals returns the cases that every lookup at path (such as
// /reservations) with a limit of limit ids refuses alike: orderIds missing,
// empty or malformed, more ids than the limit, a POST, and the store down.
func Refusals(path string, limit int) []Case {
	many := make([]string, limit+1)
	for i := range many {
		many[i] = fmt.Sprintf("x%d", i)
	}
	return []Case{
		{Name: "missing", Path: path, Status: 400, Detail: "query parameter orderIds is required"},
		{Name: "other parameter only", Path: path + "?ids=o1", Status: 400, Detail: "query parameter orderIds is required"},
		{Name: "empty", Path: path + "?orderIds=", Status: 400, Detail: "query parameter orderIds: order id is empty"},
		{Name: "empty element", Path: path + "?orderIds=o1,,o2", Status: 400, Detail: "query parameter orderIds: order id is empty"},
		{Name: "bad id", Path: path + "?orderIds=o1,a%2Fb", Status: 400, Detail: `query parameter orderIds: order id "a/b" may only hold`},
		{Name: "long id", Path: path + "?orderIds=" + strings.Repeat("o", 65), Status: 400, Detail: "order id is 65 characters long; the limit is 64"},
		{Name: "too many", Path: path + "?orderIds=" + strings.Join(many, ","), Status: 400,
			Detail: fmt.Sprintf("query parameter orderIds names %d orders; the limit is %d", limit+1, limit)},
		{Name: "post not allowed", Method: http.MethodPost, Path: path + "?orderIds=o1", Status: 405, Detail: "not allowed"},
		{Name: "store down", Setup: daprfake.FailOn("GetBulkState"), Path: path + "?orderIds=o1,o2", Status: 500, Detail: "internal error"},
	}
}
