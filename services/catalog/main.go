// Command catalog owns the products daprshop sells: their names and prices in
// cents. The orders service prices an order with one GET /products?ids=... call.
// A small demo catalog is loaded at start, without ever overwriting a product an
// operator has changed.
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
		fmt.Fprintf(os.Stderr, "catalog: %v\n", err)
		os.Exit(1)
	}
}

// config is what run reads from the environment, once.
type config struct {
	port     int
	appID    string
	store    string
	daprGRPC int
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{appID: getenv("APP_ID"), store: getenv("STATE_STORE")}
	if c.appID == "" {
		c.appID = "catalog"
	}
	if c.store == "" {
		c.store = events.StoreCatalog
	}
	var err error
	if c.port, err = httpx.Port(getenv, "APP_PORT", 8081); err != nil {
		return c, err
	}
	if c.daprGRPC, err = httpx.Port(getenv, "DAPR_GRPC_PORT", 50001); err != nil {
		return c, err
	}
	return c, nil
}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := httpx.NewLogger(getenv, cfg.appID)
	instance := httpx.InstanceID(getenv)
	log.Info("config", "port", cfg.port, "appId", cfg.appID, "store", cfg.store,
		"daprGrpcPort", cfg.daprGRPC, "instance", instance)

	// The SDK logs its own start-up line in plain text; route it through the JSON
	// logger so that every line the service prints is JSON.
	client.SetLogger(slog.NewLogLogger(log.Handler(), slog.LevelInfo))
	dapr, err := client.NewClientWithAddressContext(ctx, fmt.Sprintf("127.0.0.1:%d", cfg.daprGRPC))
	if err != nil {
		return fmt.Errorf("connect to the sidecar: %w", err)
	}
	defer dapr.Close()

	cat := &catalog{dapr: dapr, store: cfg.store, locks: keylock.New(256)}
	if err := seedWithRetry(ctx, log, cat); err != nil {
		return err
	}
	return httpx.Serve(ctx, log, fmt.Sprintf(":%d", cfg.port), newServer(log, instance, cat), 10*time.Second, nil)
}

// seedWithRetry loads the demo catalog, trying again for a while when the store is
// not reachable yet: the sidecar may still be connecting to it when the app starts.
func seedWithRetry(ctx context.Context, log *slog.Logger, cat *catalog) error {
	const attempts = 10
	for attempt := 1; ; attempt++ {
		created, err := cat.seed(ctx, demoProducts)
		if err == nil {
			log.Info("demo catalog loaded", "created", created, "products", len(demoProducts))
			return nil
		}
		if attempt == attempts {
			return fmt.Errorf("load the demo catalog: %w", err)
		}
		log.Warn("cannot load the demo catalog yet", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
