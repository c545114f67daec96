// Command notifications keeps a feed per customer of what became of their orders:
// one notification when an order is confirmed or cancelled, however often the
// event is delivered.
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

// defaults are the notifications service's own values for what the environment
// leaves unset.
var defaults = daprapp.Defaults{AppID: "notifications", Store: events.StoreNotifications, Port: 8085}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	app, err := daprapp.Start(ctx, getenv, defaults)
	if err != nil {
		return err
	}
	defer app.Close()

	f := &feeds{dapr: app.Dapr, store: app.Store, locks: keylock.New(256), now: time.Now}
	return app.Serve(ctx, newServer(app.Log, app.Instance, app.AppID, f))
}
