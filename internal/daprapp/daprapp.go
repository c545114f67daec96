// Package daprapp starts a daprshop service that keeps its state in one Dapr state
// store behind its own sidecar: it reads the configuration every such service
// shares, once, makes the logger, connects the Dapr client and serves the
// service's handler until the context is done. What is the service's own (its
// defaults, the handler, what it does before serving) stays in its run.
package daprapp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/httpx"
)

// defaultDaprGRPC is the port of the sidecar's gRPC API when DAPR_GRPC_PORT is
// unset: daprd's own default.
const defaultDaprGRPC = 50001

// shutdownGrace is how long requests in flight may take to finish once the
// service is asked to stop.
const shutdownGrace = 10 * time.Second

// Config is what a service reads from the environment.
type Config struct {
	Port     int    // APP_PORT: where the service serves its API
	AppID    string // APP_ID: its Dapr app-id, which also names its dead-letter topic
	Store    string // STATE_STORE: the state store component it keeps its state in
	DaprGRPC int    // DAPR_GRPC_PORT: the sidecar's gRPC API
}

// Defaults are a service's own values for what the environment leaves unset.
type Defaults struct {
	AppID string
	Store string
	Port  int
}

// LoadConfig reads the configuration from getenv, with def for what is unset. A
// port that is not one is an error.
func LoadConfig(getenv func(string) string, def Defaults) (Config, error) {
	c := Config{AppID: getenv("APP_ID"), Store: getenv("STATE_STORE")}
	if c.AppID == "" {
		c.AppID = def.AppID
	}
	if c.Store == "" {
		c.Store = def.Store
	}
	var err error
	if c.Port, err = httpx.Port(getenv, "APP_PORT", def.Port); err != nil {
		return c, err
	}
	if c.DaprGRPC, err = httpx.Port(getenv, "DAPR_GRPC_PORT", defaultDaprGRPC); err != nil {
		return c, err
	}
	return c, nil
}

// App is a started service: its configuration, its logger, the id of this
// instance and the client of its sidecar.
type App struct {
	Config
	Log      *slog.Logger
	Instance string
	Dapr     client.Client
}

// Start reads the configuration, logs it once and connects to the sidecar. The
// caller closes the App when it is done with it.
func Start(ctx context.Context, getenv func(string) string, def Defaults) (*App, error) {
	cfg, err := LoadConfig(getenv, def)
	if err != nil {
		return nil, err
	}
	log := httpx.NewLogger(getenv, cfg.AppID)
	instance := httpx.InstanceID(getenv)
	log.Info("config", "port", cfg.Port, "appId", cfg.AppID, "store", cfg.Store,
		"daprGrpcPort", cfg.DaprGRPC, "instance", instance)

	// The SDK logs its own start-up line in plain text; route it through the JSON
	// logger so that every line the service prints is JSON.
	client.SetLogger(slog.NewLogLogger(log.Handler(), slog.LevelInfo))
	dapr, err := client.NewClientWithAddressContext(ctx, fmt.Sprintf("127.0.0.1:%d", cfg.DaprGRPC))
	if err != nil {
		return nil, fmt.Errorf("connect to the sidecar: %w", err)
	}
	return &App{Config: cfg, Log: log, Instance: instance, Dapr: dapr}, nil
}

// Close closes the connection to the sidecar.
func (a *App) Close() { a.Dapr.Close() }

// Serve serves h on the configured port until ctx is done, then shuts down
// gracefully.
func (a *App) Serve(ctx context.Context, h http.Handler) error {
	return httpx.Serve(ctx, a.Log, fmt.Sprintf(":%d", a.Port), h, shutdownGrace, nil)
}
