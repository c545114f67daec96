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

	"github.com/daprshop/daprshop/internal/daprapp"
	"github.com/daprshop/daprshop/internal/events"
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

// defaults are the catalog's own values for what the environment leaves unset.
var defaults = daprapp.Defaults{AppID: "catalog", Store: events.StoreCatalog, Port: 8081}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	app, err := daprapp.Start(ctx, getenv, defaults)
	if err != nil {
		return err
	}
	defer app.Close()

	cat := &catalog{dapr: app.Dapr, store: app.Store, locks: keylock.New(256)}
	if err := seedWithRetry(ctx, app.Log, cat); err != nil {
		return err
	}
	return app.Serve(ctx, newServer(app.Log, app.Instance, cat))
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
