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
	// APP_LISTEN_HOST: the host the service serves its API on (empty: every
	// address; httpx.ListenHostVar).
	ListenHost string
	Port       int    // APP_PORT: where the service serves its API
	AppID      string // APP_ID: its Dapr app-id, which also names its dead-letter topic
	Store      string // STATE_STORE: the state store component it keeps its state in
	DaprGRPC   int    // DAPR_GRPC_PORT: the sidecar's gRPC API
	// DAPR_CONNECT_TIMEOUT: how long the service keeps trying to reach its
	// sidecar at start-up, which may come up after it.
	ConnectWait time.Duration
	// PPROF_ADDR: where the service serves Go's profiles, when set
	// (httpx.ServeProfiles).
	Profiles string
}

// Defaults are a service's own values for what the environment leaves unset.
type Defaults struct {
	AppID string
	Store string
	Port  int
}

// LoadConfig reads the configuration from getenv, with def for what is unset. A
// port that is not one, or a timeout that is not a positive duration, is an
// error.
func LoadConfig(getenv func(string) string, def Defaults) (Config, error) {
	c := Config{AppID: getenv("APP_ID"), Store: getenv("STATE_STORE"), Profiles: getenv(httpx.ProfilesAddrVar),
		ListenHost: getenv(httpx.ListenHostVar)}
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
	if c.ConnectWait, err = httpx.Duration(getenv, "DAPR_CONNECT_TIMEOUT", defaultConnectWait); err != nil {
		return c, err
	}
	return c, nil
}

// defaultConnectWait is how long a service waits for its sidecar by default.
const defaultConnectWait = time.Minute

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
	return Connect(ctx, getenv, cfg, nil)
}

// Connect is Start for a service that reads configuration of its own beside
// cfg: it logs cfg with extra (key-value pairs, as slog takes them) and
// connects to the sidecar.
func Connect(ctx context.Context, getenv func(string) string, cfg Config, extra []any) (*App, error) {
	log := httpx.NewLogger(getenv, cfg.AppID)
	instance := httpx.InstanceID(getenv)
	log.Info("config", append([]any{"host", cfg.ListenHost, "port", cfg.Port, "appId", cfg.AppID, "store", cfg.Store,
		"daprGrpcPort", cfg.DaprGRPC, "instance", instance}, extra...)...)

	// The SDK logs its own start-up line in plain text; route it through the JSON
	// logger so that every line the service prints is JSON.
	client.SetLogger(slog.NewLogLogger(log.Handler(), slog.LevelInfo))
	dapr, err := connect(ctx, log, fmt.Sprintf("127.0.0.1:%d", cfg.DaprGRPC), cfg.ConnectWait)
	if err != nil {
		return nil, err
	}
	return &App{Config: cfg, Log: log, Instance: instance, Dapr: dapr}, nil
}

// connect dials the sidecar, trying again until wait has passed: the runner,
// like `dapr run`, starts the sidecar and the app together, and the sidecar's
// gRPC API may not listen yet when the app starts.
func connect(ctx context.Context, log *slog.Logger, addr string, wait time.Duration) (client.Client, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := client.NewClientWithAddressContext(ctx, addr)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("connect to the sidecar at %s: %w", addr, err)
		}
		log.Warn("dapr sidecar not reachable yet; retrying", "addr", addr, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to the sidecar at %s: %w", addr, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// Close closes the connection to the sidecar.
func (a *App) Close() { a.Dapr.Close() }

// Serve serves h on the configured port until ctx is done, then shuts down
// gracefully; and the profiles, when PPROF_ADDR asks for them.
func (a *App) Serve(ctx context.Context, h http.Handler) error {
	if err := httpx.ServeProfiles(ctx, a.Log, a.Profiles); err != nil {
		return err
	}
	return httpx.Serve(ctx, a.Log, httpx.ListenAddr(a.ListenHost, a.Port), h, shutdownGrace, nil)
}
