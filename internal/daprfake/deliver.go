package daprfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/events"
)

// FailOn returns a test setup that makes every call of method fail, as a store or
// broker that is down would.
func FailOn(method string) func(*Client) {
	return func(c *Client) {
		c.Hook = func(m, _ string) error {
			if m == method {
				return errors.New("connection refused")
			}
			return nil
		}
	}
}

// Interloper is a Client on which another instance gets in first: just before the
// first write to Key, Before runs (typically another instance's whole operation on
// the same Client), so that the write which follows meets a key that changed
// since it was read.
type Interloper struct {
	*Client
	Key    string
	Before func()
	once   sync.Once
}

// SaveStateWithETag runs Before once, ahead of the first write to Key, and then
// writes.
func (s *Interloper) SaveStateWithETag(ctx context.Context, store, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error {
	if key == s.Key {
		s.once.Do(s.Before)
	}
	return s.Client.SaveStateWithETag(ctx, store, key, data, etag, meta, so...)
}

// CloudEvent returns the body the sidecar delivers to a subscriber for an event of
// type typ about orderID on topic, with the topic as its source. data is
// encoded, unless it is a json.RawMessage, which is taken as it is.
func CloudEvent(t testing.TB, topic, typ, orderID string, data any) string {
	t.Helper()
	raw, ok := data.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(data); err != nil {
			t.Fatalf("encode the data of %s: %v", typ, err)
		}
	}
	body, err := json.Marshal(map[string]any{
		"id": events.EventID(orderID, typ), "type": typ, "source": topic, "topic": topic,
		"specversion": "1.0", "datacontenttype": "application/json", "data": raw,
	})
	if err != nil {
		t.Fatalf("encode the CloudEvent: %v", err)
	}
	return string(body)
}

// Deliver posts body to the app's handler h at path as the sidecar delivers an
// event, and returns the status the app answered: SUCCESS, RETRY or DROP. An
// answer other than 200 with a status fails the test, since the sidecar would
// not understand it.
func Deliver(t testing.TB, h http.Handler, path, body string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s answered %d, not 200: %s", path, rec.Code, rec.Body)
	}
	var got struct{ Status string }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("POST %s answered %q, not a delivery status: %v", path, rec.Body, err)
	}
	return got.Status
}
