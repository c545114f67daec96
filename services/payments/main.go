// Command payments owns the customers' accounts and the charge of each order. It
// charges the total of every order whose stock was reserved, once, and publishes
// whether the payment succeeded or failed.
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
		fmt.Fprintf(os.Stderr, "payments: %v\n", err)
		os.Exit(1)
	}
}

// defaults are the payments service's own values for what the environment leaves
// unset.
var defaults = daprapp.Defaults{AppID: "payments", Store: events.StorePayments, Port: 8084}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	app, err := daprapp.Start(ctx, getenv, defaults)
	if err != nil {
		return err
	}
	defer app.Close()

	b := newBank(app.Log, app.Dapr, app.Store, keylock.New(256))
	return app.Serve(ctx, newServer(app.Log, app.Instance, app.AppID, b))
}
