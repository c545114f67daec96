package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprapp"
	"github.com/daprshop/daprshop/internal/events"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg, err := loadConfig(envOf(nil))
		require.NoError(t, err)
		assert.Equal(t, config{
			Config: daprapp.Config{
				Port: 8082, DaprGRPC: 50001, ConnectWait: time.Minute, AppID: "orders", Store: events.StoreOrders,
			},
			catalogAppID: "catalog", catalogTimeout: 3 * time.Second, priceTTL: time.Second, claimWait: 2 * time.Second, pollInterval: 50 * time.Millisecond,
			placementTarget: 50 * time.Millisecond, placementMin: 8, placementMax: 256, indexPage: indexPageSize,
			reconcileInterval: 2 * time.Second, redriveAfter: 10 * time.Second, sagaTimeout: 15 * time.Minute,
			inventoryAppID: "inventory", paymentsAppID: "payments", notificationsAppID: "notifications",
		}, cfg)
	})
	t.Run("overrides", func(t *testing.T) {
		cfg, err := loadConfig(envOf(map[string]string{
			"APP_PORT": "9000", "DAPR_GRPC_PORT": "50099", "APP_ID": "orders-b", "STATE_STORE": "other-store",
			"CATALOG_APP_ID": "catalog-b", "CATALOG_TIMEOUT": "2s", "CATALOG_PRICE_TTL": "250ms", "IDEMPOTENCY_WAIT": "5s", "IDEMPOTENCY_POLL": "10ms",
			"DAPR_CONNECT_TIMEOUT": "3s", "PLACEMENT_LATENCY_TARGET": "80ms", "PLACEMENT_CONCURRENCY_MIN": "2",
			"PLACEMENT_CONCURRENCY_MAX": "20", "RECONCILE_INTERVAL": "500ms", "REDRIVE_AFTER": "3s", "SAGA_TIMEOUT": "1m",
			"INVENTORY_APP_ID": "inventory-b", "PAYMENTS_APP_ID": "payments-b", "NOTIFICATIONS_APP_ID": "notifications-b",
		}))
		require.NoError(t, err)
		assert.Equal(t, config{
			Config: daprapp.Config{
				Port: 9000, DaprGRPC: 50099, ConnectWait: 3 * time.Second, AppID: "orders-b", Store: "other-store",
			},
			catalogAppID: "catalog-b", catalogTimeout: 2 * time.Second, priceTTL: 250 * time.Millisecond, claimWait: 5 * time.Second, pollInterval: 10 * time.Millisecond,
			placementTarget: 80 * time.Millisecond, placementMin: 2, placementMax: 20, indexPage: indexPageSize,
			reconcileInterval: 500 * time.Millisecond, redriveAfter: 3 * time.Second, sagaTimeout: time.Minute,
			inventoryAppID: "inventory-b", paymentsAppID: "payments-b", notificationsAppID: "notifications-b",
		}, cfg)
	})
	t.Run("prices not remembered", func(t *testing.T) {
		cfg, err := loadConfig(envOf(map[string]string{"CATALOG_PRICE_TTL": "0"}))
		require.NoError(t, err)
		assert.Zero(t, cfg.priceTTL)
	})
	t.Run("no reconciler", func(t *testing.T) {
		cfg, err := loadConfig(envOf(map[string]string{"RECONCILE_INTERVAL": "0"}))
		require.NoError(t, err)
		assert.Zero(t, cfg.reconcileInterval)
	})

	bad := []struct{ name, key, value string }{
		{"app port", "APP_PORT", "http"},
		{"grpc port", "DAPR_GRPC_PORT", "70000"},
		{"connect timeout", "DAPR_CONNECT_TIMEOUT", "soon"},
		{"catalog timeout", "CATALOG_TIMEOUT", "-1s"},
		{"price ttl", "CATALOG_PRICE_TTL", "-1s"},
		{"reconcile interval", "RECONCILE_INTERVAL", "-2s"},
		{"redrive after", "REDRIVE_AFTER", "0s"},
		{"saga timeout", "SAGA_TIMEOUT", "later"},
		{"idempotency wait", "IDEMPOTENCY_WAIT", "0s"},
		{"idempotency poll", "IDEMPOTENCY_POLL", "fast"},
		{"placement target", "PLACEMENT_LATENCY_TARGET", "0ms"},
		{"placement floor", "PLACEMENT_CONCURRENCY_MIN", "0"},
		{"placement ceiling", "PLACEMENT_CONCURRENCY_MAX", "many"},
		{"placement floor over the ceiling", "PLACEMENT_CONCURRENCY_MIN", "300"},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.name, func(t *testing.T) {
			_, err := loadConfig(envOf(map[string]string{tt.key: tt.value}))
			assert.ErrorContains(t, err, tt.key)
		})
	}
}

func TestRunStopsOnBadConfig(t *testing.T) {
	err := run(context.Background(), nil, envOf(map[string]string{"APP_PORT": "nope", "LOG_LEVEL": "error"}), io.Discard, io.Discard)
	assert.ErrorContains(t, err, "APP_PORT")
}

func TestRunStopsWhenTheSidecarNeverAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the dial timeout")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// Port 1 on loopback is closed, so the dial can only end by the context.
	err := run(ctx, nil, envOf(map[string]string{"DAPR_GRPC_PORT": "1", "APP_PORT": "0", "LOG_LEVEL": "error"}), io.Discard, io.Discard)
	assert.ErrorContains(t, err, "connect to the sidecar")
}
