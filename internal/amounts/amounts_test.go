package amounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/keylock"
)

const testStore = "amounts-test"

// widget is a record with field names of its own, as a service's would be.
type widget struct {
	WidgetID string           `json:"widgetId"`
	Count    int64            `json:"count"`
	Marks    map[string]int64 `json:"marks,omitempty"`
}

type widgetBody struct {
	Count *int64 `json:"count"`
}

var errNoWidget = errors.New("no such widget")

var widgets = Kind[widget, widgetBody]{
	Key: func(id string) string { return "widget-" + id },
	Fields: func(w *widget) (*string, *int64, *map[string]int64) {
		return &w.WidgetID, &w.Count, &w.Marks
	},
	Requested: func(b widgetBody) *int64 { return b.Count },
	PathVar:   "widgetID",
	IDName:    "widget id",
	Field:     "count",
	Means:     "the number of widgets",
	Max:       100,
	NotFound:  "widget %q was never counted",
	Conflict:  "widget %q is busy",
	Missing:   errNoWidget,
}

func newStore(dapr *daprfake.Client) *Store[widget, widgetBody] {
	return New(widgets, dapr, testStore, keylock.New(4))
}

func stored(t *testing.T, fake *daprfake.Client, id string) widget {
	t.Helper()
	data, ok := fake.Value(testStore, "widget-"+id)
	require.True(t, ok, "no record for %s", id)
	var w widget
	require.NoError(t, json.Unmarshal(data, &w))
	return w
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	fake := &daprfake.Client{}
	fake.Put(testStore, "widget-a", widget{WidgetID: "a", Count: 3, Marks: map[string]int64{"op/1": -1}})
	fake.Put(testStore, "widget-bad", []byte("{"))
	s := newStore(fake)

	w, found, err := s.Get(ctx, "a")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, widget{WidgetID: "a", Count: 3}, w, "the answer leaves the marks out")

	_, found, err = s.Get(ctx, "b")
	require.NoError(t, err)
	assert.False(t, found)

	_, _, err = s.Get(ctx, "bad")
	assert.ErrorContains(t, err, "decode widget-bad")
}

func TestSet(t *testing.T) {
	ctx := context.Background()
	fake := &daprfake.Client{}
	s := newStore(fake)

	require.NoError(t, s.Set(ctx, "a", 5))
	assert.Equal(t, widget{WidgetID: "a", Count: 5}, stored(t, fake, "a"))

	fake.Put(testStore, "widget-a", widget{WidgetID: "a", Count: 3, Marks: map[string]int64{"op/1": -2}})
	require.NoError(t, s.Set(ctx, "a", 10))
	assert.Equal(t, widget{WidgetID: "a", Count: 10, Marks: map[string]int64{"op/1": -2}}, stored(t, fake, "a"),
		"the marks of operations in flight stay")
}

// rival is a store on which another instance writes every key just before each
// of this instance's writes, so that every compare-and-swap loses.
type rival struct{ *daprfake.Client }

func (r rival) SaveStateWithETag(ctx context.Context, store, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error {
	cur, err := r.GetState(ctx, store, key, nil)
	if err != nil {
		return err
	}
	if err := r.Client.SaveStateWithETag(ctx, store, key, []byte(`{"widgetId":"a","count":1}`), cur.Etag, nil,
		client.WithConcurrency(client.StateConcurrencyFirstWrite)); err != nil {
		return err
	}
	return r.Client.SaveStateWithETag(ctx, store, key, data, etag, meta, so...)
}

func TestSetGivesUpOnConstantConflicts(t *testing.T) {
	fake := &daprfake.Client{}
	s := New(widgets, rival{fake}, testStore, keylock.New(4))
	err := s.Set(context.Background(), "a", 5)
	assert.Equal(t, httpx.EConflict, httpx.ErrorCode(err))
	assert.ErrorContains(t, err, `widget "a" is busy`)
}

func TestChange(t *testing.T) {
	ctx := context.Background()
	fake := &daprfake.Client{}
	s := newStore(fake)

	err := s.Change(ctx, "a", func(*widget) (bool, error) { return true, nil })
	assert.ErrorIs(t, err, errNoWidget, "an id never set is the kind's missing error")

	fake.Put(testStore, "widget-a", widget{WidgetID: "a", Count: 3})
	take := func(w *widget) (bool, error) {
		if _, done := w.Marks["take/1"]; done {
			return false, nil
		}
		w.Count -= 2
		w.Marks["take/1"] = -2 // the marks are there to write to
		return true, nil
	}
	require.NoError(t, s.Change(ctx, "a", take))
	require.NoError(t, s.Change(ctx, "a", take), "a retry finds its mark")
	assert.Equal(t, widget{WidgetID: "a", Count: 1, Marks: map[string]int64{"take/1": -2}}, stored(t, fake, "a"))

	refuse := errors.New("refused")
	assert.ErrorIs(t, s.Change(ctx, "a", func(*widget) (bool, error) { return false, refuse }), refuse)
}

// counting counts the calls the store makes, by method.
func counting(fake *daprfake.Client) map[string]int {
	calls := map[string]int{}
	fake.Hook = func(method, _ string) error {
		calls[method]++
		return nil
	}
	return calls
}

func TestForgottenMarksGoWithTheNextChange(t *testing.T) {
	ctx := context.Background()
	fake := &daprfake.Client{}
	s := newStore(fake)
	fake.Put(testStore, "widget-a", widget{WidgetID: "a", Count: 10})
	take := func(op string, n int64) func(w *widget) (bool, error) {
		return func(w *widget) (bool, error) {
			if _, done := w.Marks[op]; done {
				return false, nil
			}
			w.Count -= n
			w.Marks[op] = -n
			return true, nil
		}
	}
	require.NoError(t, s.Change(ctx, "a", take("take/1", 2)))

	calls := counting(fake)
	require.NoError(t, s.Forget(ctx, "a", "take/1"))
	assert.Empty(t, calls, "forgetting reads and writes nothing")
	assert.Equal(t, map[string]int64{"take/1": -2}, stored(t, fake, "a").Marks, "the mark waits")

	require.NoError(t, s.Change(ctx, "a", take("take/1", 2)), "a change that writes nothing")
	assert.Equal(t, map[string]int64{"take/1": -2}, stored(t, fake, "a").Marks, "keeps the mark waiting")

	calls = counting(fake)
	require.NoError(t, s.Change(ctx, "a", take("take/2", 3)))
	assert.Equal(t, map[string]int{"GetState": 1, "SaveState": 1}, calls, "one read, one write")
	assert.Equal(t, widget{WidgetID: "a", Count: 5, Marks: map[string]int64{"take/2": -3}}, stored(t, fake, "a"),
		"the next change took the forgotten mark with it")

	fake.Hook = nil
	require.NoError(t, s.Forget(ctx, "a", "take/2"))
	require.NoError(t, s.Change(ctx, "a", take("take/3", 1)))
	require.NoError(t, s.Forget(ctx, "a", "take/3"))
	require.NoError(t, s.Change(ctx, "a", take("take/4", 1)))
	assert.Equal(t, map[string]int64{"take/4": -1}, stored(t, fake, "a").Marks, "each change takes the marks forgotten before it")
}

func TestForgetRemovesAtOncePastTheBound(t *testing.T) {
	ctx := context.Background()
	fake := &daprfake.Client{}
	s := newStore(fake)
	for i := 0; i < MaxForgotten; i++ {
		require.NoError(t, s.Forget(ctx, fmt.Sprint("w", i), "take/x"))
	}
	fake.Put(testStore, "widget-a", widget{WidgetID: "a", Count: 3, Marks: map[string]int64{"take/1": -2, "take/2": -1}})
	calls := counting(fake)
	require.NoError(t, s.Forget(ctx, "a", "take/1"))
	assert.Equal(t, map[string]int{"GetState": 1, "SaveState": 1}, calls)
	assert.Equal(t, widget{WidgetID: "a", Count: 3, Marks: map[string]int64{"take/2": -1}}, stored(t, fake, "a"))

	fake.Hook = nil
	require.NoError(t, s.Forget(ctx, "b", "take/1"), "an id never set has no marks to remove")
	require.NoError(t, s.Forget(ctx, "w7", "take/y"), "an id already waiting still waits")
	_, found := fake.Value(testStore, "widget-w7")
	assert.False(t, found)
}

func TestHandlers(t *testing.T) {
	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		want         string // the JSON answer, for a success
		detail       string // part of the problem's detail, for an error
	}{
		{name: "get", method: "GET", path: "/widgets/a", status: 200, want: `{"widgetId":"a","count":3}`},
		{name: "get never set", method: "GET", path: "/widgets/b", status: 404, detail: `widget "b" was never counted`},
		{name: "get bad id", method: "GET", path: "/widgets/a%20b", status: 400, detail: `widget id "a b" may only hold`},
		{name: "put creates", method: "PUT", path: "/widgets/b", body: `{"count":7}`, status: 200, want: `{"widgetId":"b","count":7}`},
		{name: "put replaces", method: "PUT", path: "/widgets/a", body: `{"count":0}`, status: 200, want: `{"widgetId":"a","count":0}`},
		{name: "put the limit", method: "PUT", path: "/widgets/a", body: `{"count":100}`, status: 200, want: `{"widgetId":"a","count":100}`},
		{name: "put missing", method: "PUT", path: "/widgets/a", body: `{}`, status: 400, detail: "count is required: the number of widgets"},
		{name: "put null", method: "PUT", path: "/widgets/a", body: `{"count":null}`, status: 400, detail: "count is required"},
		{name: "put negative", method: "PUT", path: "/widgets/a", body: `{"count":-1}`, status: 400, detail: "count must be zero or more, not -1"},
		{name: "put over the limit", method: "PUT", path: "/widgets/a", body: `{"count":101}`, status: 400, detail: "count 101 is over the limit of 100"},
		{name: "put unknown field", method: "PUT", path: "/widgets/a", body: `{"count":1,"marks":{}}`, status: 400, detail: `unknown field "marks"`},
		{name: "put bad id", method: "PUT", path: "/widgets/a%21", body: `{"count":1}`, status: 400, detail: "may only hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &daprfake.Client{}
			fake.Put(testStore, "widget-a", widget{WidgetID: "a", Count: 3, Marks: map[string]int64{"op/1": -1}})
			s := newStore(fake)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			r := httpx.NewRouter()
			r.HandleFunc("/widgets/{widgetID}", s.HandleGet(log)).Methods(http.MethodGet)
			r.HandleFunc("/widgets/{widgetID}", s.HandlePut(log)).Methods(http.MethodPut)
			before := fake.Dump(testStore)

			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)

			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status >= 400 {
				var p httpx.Problem
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				assert.Contains(t, p.Detail, tt.detail)
				assert.Equal(t, before, fake.Dump(testStore), "a refused request changes nothing")
				return
			}
			assert.JSONEq(t, tt.want, rec.Body.String())
		})
	}
}
