// Command inventory owns the stock of every product and the reservation of each
// order. It reserves every line of a placed order or none, publishes the outcome
// for payments and orders, and releases a reservation when its order is
// cancelled.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/daprshop/daprshop/internal/daprapp"
	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/keylock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "inventory: %v\n", err)
		os.Exit(1)
	}
}

// defaults are the inventory's own values for what the environment leaves unset.
var defaults = daprapp.Defaults{AppID: "inventory", Store: events.StoreInventory, Port: 8083}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	app, err := daprapp.Start(ctx, getenv, defaults)
	if err != nil {
		return err
	}
	defer app.Close()

	led := newLedger(app.Log, app.Dapr, app.Store, keylock.New(256))
	return app.Serve(ctx, newServer(app.Log, app.Instance, app.AppID, led))
}
