package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/keylock"
)

// sidecar is the part of the Dapr client the orders service uses. The method
// signatures are the go-sdk's own, so the real client satisfies it and the tests
// use a hand-written fake.
type sidecar interface {
	GetState(ctx context.Context, storeName, key string, meta map[string]string) (*client.StateItem, error)
	GetBulkState(ctx context.Context, storeName string, keys []string, meta map[string]string, parallelism int32) ([]*client.BulkStateItem, error)
	SaveState(ctx context.Context, storeName, key string, data []byte, meta map[string]string, so ...client.StateOption) error
	SaveStateWithETag(ctx context.Context, storeName, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error
	SaveBulkState(ctx context.Context, storeName string, items ...*client.SetStateItem) error
	ExecuteStateTransaction(ctx context.Context, storeName string, meta map[string]string, ops []*client.StateOperation) error
	DeleteBulkStateItems(ctx context.Context, storeName string, items []*client.DeleteStateItem) error
	InvokeMethod(ctx context.Context, appID, methodName, verb string) ([]byte, error)
	PublishEvent(ctx context.Context, pubsubName, topicName string, data interface{}, opts ...client.PublishEventOption) error
}

var _ sidecar = (*client.GRPCClient)(nil)

// newOrders returns the orders service's state: what the handlers and the
// reconciler share.
func newOrders(log *slog.Logger, instance string, cfg config, dapr sidecar, locks *keylock.Locks, now func() time.Time) *orders {
	return &orders{
		log:       log,
		instance:  instance,
		dapr:      dapr,
		locks:     locks,
		customers: keylock.New(256),
		buckets:   keylock.New(64),
		prices:    newPrices(cfg.priceTTL, now),
		now:       now,
		cfg:       cfg,
		admit:     newAdmission(log, cfg.placementTarget, int(cfg.placementMin), int(cfg.placementMax), time.Now),
	}
}

func newServer(log *slog.Logger, instance string, svc *orders) http.Handler {
	r := httpx.NewRouter()
	addRoutes(r, log, svc.cfg, svc, newDeadLetters(deadLetterRecent))
	return httpx.Wrap(log, instance, r)
}
