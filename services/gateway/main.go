// Command gateway is the seed's proxy: it routes /api/{appID}/{path} to an
// instance of that app through Dapr service invocation over HTTP, via its own
// sidecar, whose name resolution spreads calls over every instance of the app.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/daprshop/daprshop/internal/httpx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		os.Exit(1)
	}
}

// config is the gateway's configuration, read once from the environment.
type config struct {
	host     string
	port     int
	daprHTTP int
	apps     map[string]bool
	timeout  time.Duration
	maxBody  int64
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{host: getenv(httpx.ListenHostVar)}
	var err error
	if c.port, err = httpx.Port(getenv, "APP_PORT", 8080); err != nil {
		return c, err
	}
	if c.daprHTTP, err = httpx.Port(getenv, "DAPR_HTTP_PORT", 3500); err != nil {
		return c, err
	}
	if c.timeout, err = httpx.Duration(getenv, "GATEWAY_TIMEOUT", 10*time.Second); err != nil {
		return c, err
	}
	if c.maxBody, err = httpx.Int64(getenv, "GATEWAY_MAX_BODY", 1<<20); err != nil {
		return c, err
	}
	apps := getenv("GATEWAY_APPS")
	if apps == "" {
		return c, fmt.Errorf("GATEWAY_APPS is required: the comma-separated app-ids the gateway forwards to")
	}
	c.apps = map[string]bool{}
	for _, a := range strings.Split(apps, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.apps[a] = true
		}
	}
	return c, nil
}

func run(ctx context.Context, _ []string, getenv func(string) string, _, _ io.Writer) error {
	log := httpx.NewLogger(getenv, "gateway")
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	instance := httpx.InstanceID(getenv)
	log.Info("config", "host", cfg.host, "port", cfg.port, "daprHTTPPort", cfg.daprHTTP, "apps", getenv("GATEWAY_APPS"),
		"timeout", cfg.timeout, "maxBody", cfg.maxBody, "instance", instance)
	sidecar := fmt.Sprintf("http://127.0.0.1:%d", cfg.daprHTTP)
	h := newServer(log, instance, newForwarder(log, sidecar, cfg.apps, cfg.timeout, cfg.maxBody))
	if err := httpx.ServeProfiles(ctx, log, getenv(httpx.ProfilesAddrVar)); err != nil {
		return err
	}
	return httpx.Serve(ctx, log, httpx.ListenAddr(cfg.host, cfg.port), h, 15*time.Second, nil)
}
