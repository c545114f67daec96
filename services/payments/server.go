package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/pubsub"
)

// sidecar is the part of the Dapr client the payments service uses. The
// signatures are the go-sdk's own, so the real client satisfies it and the tests
// use a fake.
type sidecar interface {
	GetState(ctx context.Context, storeName, key string, meta map[string]string) (*client.StateItem, error)
	GetBulkState(ctx context.Context, storeName string, keys []string, meta map[string]string, parallelism int32) ([]*client.BulkStateItem, error)
	SaveStateWithETag(ctx context.Context, storeName, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error
	PublishEvent(ctx context.Context, pubsubName, topicName string, data interface{}, opts ...client.PublishEventOption) error
}

var _ sidecar = (*client.GRPCClient)(nil)

func newServer(log *slog.Logger, instance, appID string, b *bank) http.Handler {
	r := httpx.NewRouter()
	addRoutes(r, log, appID, b, &pubsub.DeadLetters{})
	return httpx.Wrap(log, instance, r)
}
