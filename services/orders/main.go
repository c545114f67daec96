// Command orders places orders and follows them through the saga: it prices an
// order by invoking the catalog, saves it together with its OrderPlaced event
// through Dapr's transactional outbox, and moves it to reserved, confirmed or
// cancelled as the inventory's and payments' outcomes arrive, announcing the
// confirmation or cancellation once it is saved.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/daprshop/daprshop/internal/daprapp"
	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/keylock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "orders: %v\n", err)
		os.Exit(1)
	}
}

// defaults are the orders service's own values for what the environment leaves
// unset.
var defaults = daprapp.Defaults{AppID: "orders", Store: events.StoreOrders, Port: 8082}

// config is the orders service's configuration, read once from the environment:
// what every daprshop service reads, with Store the outbox-enabled state store
// that holds orders, the customer index and the idempotency claims, and its own.
type config struct {
	daprapp.Config
	// catalogAppID is the app-id the orders are priced by.
	catalogAppID string
	// catalogTimeout bounds one pricing call.
	catalogTimeout time.Duration
	// priceTTL is how long a product read from the catalog prices new orders
	// before the catalog is asked again (see prices); zero asks every time.
	priceTTL time.Duration
	// claimWait is how long a request that lost the race for an Idempotency-Key
	// waits for the winner's order before it finishes the order itself.
	claimWait time.Duration
	// pollInterval is how often such a request looks for the winner's order.
	pollInterval time.Duration
	// placementTarget is the placement latency that the bound on placements
	// in progress keeps to (see admission), between placementMin and
	// placementMax placements at once.
	placementTarget            time.Duration
	placementMin, placementMax int64
	// indexPage is how many order ids a page of a customer's index holds:
	// indexPageSize, smaller in tests.
	indexPage int
	// The reconciler (see reconcile.go): how often it runs (zero: never), how
	// old an order is before it looks at it, and how long an order may stay
	// pending or reserved before it is cancelled.
	reconcileInterval, redriveAfter, sagaTimeout time.Duration
	// The app-ids of the consumers the reconciler asks.
	inventoryAppID, paymentsAppID, notificationsAppID string
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{indexPage: indexPageSize}
	var err error
	if c.Config, err = daprapp.LoadConfig(getenv, defaults); err != nil {
		return c, err
	}
	for _, app := range []struct {
		id       *string
		env, def string
	}{
		{&c.catalogAppID, "CATALOG_APP_ID", "catalog"},
		{&c.inventoryAppID, "INVENTORY_APP_ID", "inventory"},
		{&c.paymentsAppID, "PAYMENTS_APP_ID", "payments"},
		{&c.notificationsAppID, "NOTIFICATIONS_APP_ID", "notifications"},
	} {
		if *app.id = getenv(app.env); *app.id == "" {
			*app.id = app.def
		}
	}
	if c.catalogTimeout, err = httpx.Duration(getenv, "CATALOG_TIMEOUT", 3*time.Second); err != nil {
		return c, err
	}
	if c.priceTTL, err = durationOrOff(getenv, "CATALOG_PRICE_TTL", time.Second); err != nil {
		return c, err
	}
	if c.reconcileInterval, err = durationOrOff(getenv, "RECONCILE_INTERVAL", 2*time.Second); err != nil {
		return c, err
	}
	if c.redriveAfter, err = httpx.Duration(getenv, "REDRIVE_AFTER", 10*time.Second); err != nil {
		return c, err
	}
	if c.sagaTimeout, err = httpx.Duration(getenv, "SAGA_TIMEOUT", 15*time.Minute); err != nil {
		return c, err
	}
	if c.claimWait, err = httpx.Duration(getenv, "IDEMPOTENCY_WAIT", 2*time.Second); err != nil {
		return c, err
	}
	if c.pollInterval, err = httpx.Duration(getenv, "IDEMPOTENCY_POLL", 50*time.Millisecond); err != nil {
		return c, err
	}
	if c.placementTarget, err = httpx.Duration(getenv, "PLACEMENT_LATENCY_TARGET", 50*time.Millisecond); err != nil {
		return c, err
	}
	if c.placementMin, err = httpx.Int64(getenv, "PLACEMENT_CONCURRENCY_MIN", 8); err != nil {
		return c, err
	}
	if c.placementMax, err = httpx.Int64(getenv, "PLACEMENT_CONCURRENCY_MAX", 256); err != nil {
		return c, err
	}
	if c.placementMin > c.placementMax {
		return c, fmt.Errorf("PLACEMENT_CONCURRENCY_MIN=%d is over PLACEMENT_CONCURRENCY_MAX=%d", c.placementMin, c.placementMax)
	}
	return c, nil
}

// durationOrOff reads the duration name as httpx.Duration does, and also
// accepts zero, which turns off what it times.
func durationOrOff(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	if d, err := time.ParseDuration(getenv(name)); err == nil && d == 0 {
		return 0, nil
	}
	return httpx.Duration(getenv, name, def)
}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	app, err := daprapp.Connect(ctx, getenv, cfg.Config, []any{"catalogAppId", cfg.catalogAppID,
		"catalogTimeout", cfg.catalogTimeout, "catalogPriceTTL", cfg.priceTTL, "idempotencyWait", cfg.claimWait, "idempotencyPoll", cfg.pollInterval,
		"placementLatencyTarget", cfg.placementTarget, "placementConcurrency", fmt.Sprintf("%d-%d", cfg.placementMin, cfg.placementMax),
		"reconcileInterval", cfg.reconcileInterval, "redriveAfter", cfg.redriveAfter, "sagaTimeout", cfg.sagaTimeout})
	if err != nil {
		return err
	}
	defer app.Close()

	// One set of locks for the whole process: every write to an order takes the
	// order's lock, so that no two writes in this instance race on its ETag.
	locks := keylock.New(1024)
	svc := newOrders(app.Log, app.Instance, cfg, app.Dapr, locks, time.Now)
	if cfg.reconcileInterval > 0 {
		ctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			svc.reconcileEvery(ctx, cfg.reconcileInterval)
		}()
		// The reconciler stops before the sidecar's client is closed.
		defer func() { stop(); <-done }()
	}
	return app.Serve(ctx, newServer(app.Log, app.Instance, svc))
}
