// Command orders places orders and follows them through the saga: it prices an
// order by invoking the catalog, saves it together with its OrderPlaced event
// through Dapr's transactional outbox, and moves it to reserved, confirmed or
// cancelled as the inventory's and payments' outcomes arrive.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dapr/go-sdk/client"

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

// config is the orders service's configuration, read once from the environment.
type config struct {
	port        int
	daprGRPC    int
	connectWait time.Duration

	// appID names this app; its dead-letter topic is derived from it.
	appID string
	// store is the outbox-enabled state store that holds orders, the customer
	// index and the idempotency claims.
	store string
	// catalogAppID is the app-id the orders are priced by.
	catalogAppID string
	// catalogTimeout bounds one pricing call.
	catalogTimeout time.Duration
	// claimWait is how long a request that lost the race for an Idempotency-Key
	// waits for the winner's order before it finishes the order itself.
	claimWait time.Duration
	// pollInterval is how often such a request looks for the winner's order.
	pollInterval time.Duration
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		appID:        getenv("APP_ID"),
		store:        getenv("STATE_STORE"),
		catalogAppID: getenv("CATALOG_APP_ID"),
	}
	if c.appID == "" {
		c.appID = "orders"
	}
	if c.store == "" {
		c.store = events.StoreOrders
	}
	if c.catalogAppID == "" {
		c.catalogAppID = "catalog"
	}
	var err error
	if c.port, err = httpx.Port(getenv, "APP_PORT", 8082); err != nil {
		return c, err
	}
	if c.daprGRPC, err = httpx.Port(getenv, "DAPR_GRPC_PORT", 50001); err != nil {
		return c, err
	}
	if c.connectWait, err = httpx.Duration(getenv, "DAPR_CONNECT_TIMEOUT", time.Minute); err != nil {
		return c, err
	}
	if c.catalogTimeout, err = httpx.Duration(getenv, "CATALOG_TIMEOUT", 3*time.Second); err != nil {
		return c, err
	}
	if c.claimWait, err = httpx.Duration(getenv, "IDEMPOTENCY_WAIT", 2*time.Second); err != nil {
		return c, err
	}
	if c.pollInterval, err = httpx.Duration(getenv, "IDEMPOTENCY_POLL", 50*time.Millisecond); err != nil {
		return c, err
	}
	return c, nil
}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	log := httpx.NewLogger(getenv, "orders")
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	instance := httpx.InstanceID(getenv)
	log.Info("config", "port", cfg.port, "daprGRPCPort", cfg.daprGRPC, "appID", cfg.appID,
		"store", cfg.store, "catalogAppID", cfg.catalogAppID, "catalogTimeout", cfg.catalogTimeout,
		"idempotencyWait", cfg.claimWait, "idempotencyPoll", cfg.pollInterval, "instance", instance)

	dapr, err := connect(ctx, log, fmt.Sprintf("127.0.0.1:%d", cfg.daprGRPC), cfg.connectWait)
	if err != nil {
		return err
	}
	defer dapr.Close()

	// One set of locks for the whole process: every write to an order takes the
	// order's lock, so that no two writes in this instance race on its ETag.
	locks := keylock.New(1024)
	h := newServer(log, instance, cfg, dapr, locks, time.Now)
	return httpx.Serve(ctx, log, fmt.Sprintf(":%d", cfg.port), h, 10*time.Second, nil)
}

// connect dials the sidecar, trying again until wait has passed, because the
// runner starts the sidecar and the app together and the sidecar's gRPC API may
// not be listening yet when the app starts.
func connect(ctx context.Context, log *slog.Logger, addr string, wait time.Duration) (client.Client, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := client.NewClientWithAddressContext(ctx, addr)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("connect to the dapr sidecar at %s: %w", addr, err)
		}
		log.Warn("dapr sidecar not reachable yet; retrying", "addr", addr, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to the dapr sidecar at %s: %w", addr, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
