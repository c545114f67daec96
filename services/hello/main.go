// Command hello is the seed's own service, kept as it was: GET /service answers
// "Hello from Service!", now behind the gateway and a Dapr sidecar.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/daprshop/daprshop/internal/httpx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "hello: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	log := httpx.NewLogger(getenv, "hello")
	port, err := httpx.Port(getenv, "APP_PORT", 8888)
	if err != nil {
		return err
	}
	instance := httpx.InstanceID(getenv)
	host := getenv(httpx.ListenHostVar)
	log.Info("config", "host", host, "port", port, "instance", instance)
	if err := httpx.ServeProfiles(ctx, log, getenv(httpx.ProfilesAddrVar)); err != nil {
		return err
	}
	return httpx.Serve(ctx, log, httpx.ListenAddr(host, port), newServer(log, instance), 10*time.Second, nil)
}
