// Command notifications keeps a feed per customer of what became of their orders:
// one notification when an order is confirmed or cancelled, however often the
// event is delivered.
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
		fmt.Fprintf(os.Stderr, "notifications: %v\n", err)
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
		c.appID = "notifications"
	}
	if c.store == "" {
		c.store = events.StoreNotifications
	}
	var err error
	if c.port, err = httpx.Port(getenv, "APP_PORT", 8085); err != nil {
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

	f := &feeds{dapr: dapr, store: cfg.store, locks: keylock.New(256), now: time.Now}
	return httpx.Serve(ctx, log, fmt.Sprintf(":%d", cfg.port), newServer(log, instance, cfg.appID, f), 10*time.Second, nil)
}
