package daprfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/events"
)

func TestFailOn(t *testing.T) {
	ctx := context.Background()
	c := &Client{}
	FailOn("SaveState")(c)
	_, err := c.GetState(ctx, "s", "k", nil)
	assert.NoError(t, err, "other methods still work")
	assert.ErrorContains(t, c.SaveState(ctx, "s", "k", []byte("a"), nil), "connection refused")
}

func TestInterloper(t *testing.T) {
	ctx := context.Background()
	c := &Client{}
	runs := 0
	s := &Interloper{Client: c, Key: "k", Before: func() {
		runs++
		c.Put("s", "k", "theirs")
	}}
	require.NoError(t, s.SaveStateWithETag(ctx, "s", "other", []byte("a"), "", nil))
	assert.Zero(t, runs, "a write to another key lets nobody in")
	require.NoError(t, s.SaveStateWithETag(ctx, "s", "k", []byte(`"mine"`), "", nil))
	require.NoError(t, s.SaveStateWithETag(ctx, "s", "k", []byte(`"again"`), "", nil))
	assert.Equal(t, 1, runs, "the other instance gets in once")
}

func TestDeliver(t *testing.T) {
	var got events.Envelope
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var err error
		got, err = events.DecodeEnvelope(body)
		if err == nil && got.Type == "bad" {
			err = errors.New("try again")
		}
		events.Respond(w, err)
	})

	body := CloudEvent(t, events.TopicOrderPlaced, events.OrderPlaced, "o1", map[string]string{"orderId": "o1"})
	assert.Equal(t, events.StatusSuccess, Deliver(t, app, "/events/x", body))
	assert.Equal(t, events.EventID("o1", events.OrderPlaced), got.ID)
	assert.Equal(t, events.TopicOrderPlaced, got.Topic)
	assert.Equal(t, events.TopicOrderPlaced, got.Source)
	assert.JSONEq(t, `{"orderId":"o1"}`, string(got.Data))

	raw := json.RawMessage(`"{\"orderId\":\"o1\"}"`)
	Deliver(t, app, "/events/x", CloudEvent(t, events.TopicOrderPlaced, events.OrderPlaced, "o1", raw))
	assert.Equal(t, string(raw), string(got.Data), "raw data is sent as it is")

	assert.Equal(t, events.StatusRetry, Deliver(t, app, "/events/x", CloudEvent(t, events.TopicOrderPlaced, "bad", "o1", nil)))
	assert.Equal(t, events.StatusDrop, Deliver(t, app, "/events/x", "{not json"))
}
