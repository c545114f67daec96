package daprapp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var shop = Defaults{AppID: "shop", Store: "shop-store", Port: 8089}

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig(func(string) string { return "" }, shop)
	require.NoError(t, err)
	assert.Equal(t, Config{Port: 8089, AppID: "shop", Store: "shop-store", DaprGRPC: 50001, ConnectWait: time.Minute}, cfg)

	env := map[string]string{"APP_PORT": "9000", "APP_ID": "other-shop", "STATE_STORE": "other", "DAPR_GRPC_PORT": "50003",
		"DAPR_CONNECT_TIMEOUT": "3s", "PPROF_ADDR": "127.0.0.1:6060"}
	cfg, err = LoadConfig(func(k string) string { return env[k] }, shop)
	require.NoError(t, err)
	assert.Equal(t, Config{Port: 9000, AppID: "other-shop", Store: "other", DaprGRPC: 50003, ConnectWait: 3 * time.Second,
		Profiles: "127.0.0.1:6060"}, cfg)
}

// closedPort returns a local port that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return strconv.Itoa(port)
}

func TestStartFails(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		err  string
	}{
		{"bad app port", map[string]string{"APP_PORT": "eighty"}, `APP_PORT="eighty" is not a port`},
		{"negative app port", map[string]string{"APP_PORT": "-1"}, `APP_PORT="-1" is not a port`},
		{"bad sidecar port", map[string]string{"DAPR_GRPC_PORT": "70000"}, `DAPR_GRPC_PORT="70000" is not a port`},
		{"sidecar port not a number", map[string]string{"DAPR_GRPC_PORT": "x"}, `DAPR_GRPC_PORT="x" is not a port`},
		{"bad connect timeout", map[string]string{"DAPR_CONNECT_TIMEOUT": "soon"}, "DAPR_CONNECT_TIMEOUT"},
		{"no sidecar", map[string]string{"DAPR_GRPC_PORT": closedPort(t), "LOG_LEVEL": "error"}, "connect to the sidecar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			app, err := Start(ctx, func(k string) string { return tt.env[k] }, shop)
			assert.ErrorContains(t, err, tt.err)
			assert.Nil(t, app)
		})
	}
}

func TestServeStopsWithTheContext(t *testing.T) {
	app := &App{Config: Config{Port: 0}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, http.NotFoundHandler()) }()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context was done")
	}
}

func TestServeRefusesProfilesOffLoopback(t *testing.T) {
	app := &App{Config: Config{Port: 0, Profiles: "0.0.0.0:6060"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := app.Serve(context.Background(), http.NotFoundHandler())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "loopback")
}
