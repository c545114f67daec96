package daprfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	rec := post(t, h, path, "application/cloudevents+json", body)
	var got struct{ Status string }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("POST %s answered %q, not a delivery status: %v", path, rec.Body, err)
	}
	return got.Status
}

// post posts body to h at path as the sidecar does, and fails the test unless
// the app answered 200.
func post(t testing.TB, h http.Handler, path, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s answered %d, not 200: %s", path, rec.Code, rec.Body)
	}
	return rec
}

// DeliverBulk posts bodies to the app's handler h at path as one batch, the way
// the sidecar delivers to a bulk subscription (entry ids e0, e1, ...), and
// returns the status the app answered for each, in order. A body that is not
// JSON goes in as a JSON string, which is what a broken event looks like there.
// An answer other than 200 with a status for every entry fails the test.
func DeliverBulk(t testing.TB, h http.Handler, path string, bodies ...string) []string {
	t.Helper()
	type entry struct {
		EntryID     string          `json:"entryId"`
		Event       json.RawMessage `json:"event"`
		ContentType string          `json:"contentType"`
	}
	entries := make([]entry, len(bodies))
	for i, b := range bodies {
		event := json.RawMessage(b)
		if !json.Valid(event) {
			event, _ = json.Marshal(b)
		}
		entries[i] = entry{EntryID: fmt.Sprintf("e%d", i), Event: event, ContentType: "application/cloudevents+json"}
	}
	batch, err := json.Marshal(map[string]any{"id": "batch", "topic": "t", "pubsubname": "pubsub",
		"type": "com.dapr.event.sent.bulk", "entries": entries})
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, h, path, "application/json", string(batch))
	var got struct {
		Statuses []struct{ EntryID, Status string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("POST %s answered %q, not the statuses of a batch: %v", path, rec.Body, err)
	}
	byID := make(map[string]string, len(got.Statuses))
	for _, s := range got.Statuses {
		byID[s.EntryID] = s.Status
	}
	statuses := make([]string, len(entries))
	for i, e := range entries {
		s, ok := byID[e.EntryID]
		if !ok {
			t.Fatalf("POST %s answered no status for entry %s: %s", path, e.EntryID, rec.Body)
		}
		statuses[i] = s
	}
	return statuses
}

// DeliverInBatch delivers body alone in a batch, as DeliverBulk does, and
// returns its status.
func DeliverInBatch(t testing.TB, h http.Handler, path, body string) string {
	t.Helper()
	return DeliverBulk(t, h, path, body)[0]
}
