package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/pubsub"
)

// sidecar is the part of the Dapr client the notifications service uses. The
// signatures are the go-sdk's own, so the real client satisfies it and the tests
// use a fake.
type sidecar interface {
	GetBulkState(ctx context.Context, storeName string, keys []string, meta map[string]string, parallelism int32) ([]*client.BulkStateItem, error)
	GetState(ctx context.Context, storeName, key string, meta map[string]string) (*client.StateItem, error)
	SaveStateWithETag(ctx context.Context, storeName, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error
}

var _ sidecar = (*client.GRPCClient)(nil)

func newServer(log *slog.Logger, instance, appID string, f *feeds) http.Handler {
	r := httpx.NewRouter()
	addRoutes(r, log, appID, f, &pubsub.DeadLetters{})
	return httpx.Wrap(log, instance, r)
}
