package daprfake

import (
	"context"
	"errors"
	"testing"

	"github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sidecar lists the go-sdk methods the fake stands in for, so that a change of
// signature in the SDK breaks this build rather than the services' tests.
type sidecar interface {
	GetState(ctx context.Context, storeName, key string, meta map[string]string) (*client.StateItem, error)
	GetBulkState(ctx context.Context, storeName string, keys []string, meta map[string]string, parallelism int32) ([]*client.BulkStateItem, error)
	SaveState(ctx context.Context, storeName, key string, data []byte, meta map[string]string, so ...client.StateOption) error
	SaveStateWithETag(ctx context.Context, storeName, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error
	ExecuteStateTransaction(ctx context.Context, storeName string, meta map[string]string, ops []*client.StateOperation) error
	PublishEvent(ctx context.Context, pubsubName, topicName string, data interface{}, opts ...client.PublishEventOption) error
}

var (
	_ sidecar = (*Client)(nil)
	_ sidecar = (*client.GRPCClient)(nil)
)

var firstWrite = client.WithConcurrency(client.StateConcurrencyFirstWrite)

func TestSingleWrites(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   func(c *Client)
		etag    string
		opts    []client.StateOption
		wantErr error // nil: the write succeeds
		generic bool  // the write fails, but not as an ETag mismatch
	}{
		{name: "create absent key", opts: []client.StateOption{firstWrite}},
		{name: "create-if-absent refused on a first-write key", setup: func(c *Client) {
			require.NoError(t, c.SaveState(ctx, "s", "k", []byte("a"), nil, firstWrite))
		}, opts: []client.StateOption{firstWrite}, generic: true},
		{name: "no-etag first write overwrites a key written last-write", setup: func(c *Client) {
			require.NoError(t, c.SaveState(ctx, "s", "k", []byte("a"), nil))
		}, opts: []client.StateOption{firstWrite}},
		{name: "matching etag", setup: func(c *Client) {
			require.NoError(t, c.SaveState(ctx, "s", "k", []byte("a"), nil, firstWrite))
		}, etag: "1", opts: []client.StateOption{firstWrite}},
		{name: "stale etag", setup: func(c *Client) {
			require.NoError(t, c.SaveState(ctx, "s", "k", []byte("a"), nil, firstWrite))
			require.NoError(t, c.SaveStateWithETag(ctx, "s", "k", []byte("b"), "1", nil, firstWrite))
		}, etag: "1", opts: []client.StateOption{firstWrite}, wantErr: ErrETagMismatch},
		{name: "last-write ignores the etag", setup: func(c *Client) {
			c.Put("s", "k", "a")
			c.Put("s", "k", "b")
		}, etag: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{}
			if tt.setup != nil {
				tt.setup(c)
			}
			err := c.SaveStateWithETag(ctx, "s", "k", []byte("new"), tt.etag, nil, tt.opts...)
			switch {
			case tt.wantErr != nil:
				assert.ErrorIs(t, err, tt.wantErr)
			case tt.generic:
				require.Error(t, err)
				assert.NotErrorIs(t, err, ErrETagMismatch)
			default:
				require.NoError(t, err)
				v, ok := c.Value("s", "k")
				assert.True(t, ok)
				assert.Equal(t, "new", string(v))
			}
		})
	}
}

func TestReads(t *testing.T) {
	ctx := context.Background()
	c := &Client{}
	c.Put("s", "a", []byte("1"))
	item, err := c.GetState(ctx, "s", "a", nil)
	require.NoError(t, err)
	assert.Equal(t, "1", string(item.Value))
	assert.Equal(t, "1", item.Etag)
	item, err = c.GetState(ctx, "s", "absent", nil)
	require.NoError(t, err)
	assert.Empty(t, item.Value)
	assert.Empty(t, item.Etag)
	items, err := c.GetBulkState(ctx, "s", []string{"absent", "a"}, nil, 2)
	require.NoError(t, err)
	require.Len(t, items, 2)
	assert.Empty(t, items[0].Etag)
	assert.Equal(t, "1", string(items[1].Value))
	_, err = c.GetBulkState(ctx, "s", nil, nil, 2)
	assert.Error(t, err)
	assert.Equal(t, []string{"a"}, c.Keys("s"))
}

// TestTransactionIsNotAtomic shows the Redis behaviour the services design
// around: the operation with a stale ETag fails, the other stays applied.
func TestTransactionIsNotAtomic(t *testing.T) {
	ctx := context.Background()
	c := &Client{}
	c.Put("s", "stock", "5")
	c.Put("s", "stock", "4") // now at version 2
	fw := &client.StateOptions{Concurrency: client.StateConcurrencyFirstWrite}
	err := c.ExecuteStateTransaction(ctx, "s", nil, []*client.StateOperation{
		{Type: client.StateOperationTypeUpsert, Item: &client.SetStateItem{Key: "stock", Value: []byte("3"), Etag: &client.ETag{Value: "1"}, Options: fw}},
		{Type: client.StateOperationTypeUpsert, Item: &client.SetStateItem{Key: "record", Value: []byte("reserved"), Options: fw}},
	})
	assert.ErrorIs(t, err, ErrETagMismatch)
	v, _ := c.Value("s", "stock")
	assert.Equal(t, `"4"`, string(v))
	v, ok := c.Value("s", "record")
	assert.True(t, ok, "the other operation stays applied")
	assert.Equal(t, "reserved", string(v))

	// Without FirstWrite options the ETag is ignored, as it is by the store.
	require.NoError(t, c.ExecuteStateTransaction(ctx, "s", nil, []*client.StateOperation{
		{Type: client.StateOperationTypeUpsert, Item: &client.SetStateItem{Key: "stock", Value: []byte("3"), Etag: &client.ETag{Value: "1"}}},
		{Type: client.StateOperationTypeDelete, Item: &client.SetStateItem{Key: "record"}},
	}))
	_, ok = c.Value("s", "record")
	assert.False(t, ok)
}

func TestHookAndPublish(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	c := &Client{Hook: func(method, key string) error {
		if method == "PublishEvent" && key == "bad" {
			return boom
		}
		return nil
	}}
	require.NoError(t, c.PublishEvent(ctx, "pubsub", "good", []byte(`{"a":1}`),
		client.PublishEventWithContentType("application/json"),
		client.PublishEventWithMetadata(map[string]string{"cloudevent.id": "o1/t", "cloudevent.type": "t"})))
	assert.ErrorIs(t, c.PublishEvent(ctx, "pubsub", "bad", []byte(`{}`)), boom)
	got := c.Published()
	require.Len(t, got, 1)
	assert.Equal(t, "good", got[0].Topic)
	assert.Equal(t, "o1/t", got[0].ID())
	assert.Equal(t, "t", got[0].Type())
	assert.Equal(t, "application/json", got[0].ContentType)
	assert.JSONEq(t, `{"a":1}`, string(got[0].Data))
}
