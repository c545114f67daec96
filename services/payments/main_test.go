package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closedPort returns a local port that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return strconv.Itoa(port)
}

func TestRunFailsAtStart(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		err  string
	}{
		{"bad app port", map[string]string{"APP_PORT": "-1"}, `APP_PORT="-1" is not a port`},
		{"bad sidecar port", map[string]string{"DAPR_GRPC_PORT": "x"}, `DAPR_GRPC_PORT="x" is not a port`},
		{"no sidecar", map[string]string{"DAPR_GRPC_PORT": closedPort(t), "LOG_LEVEL": "error"}, "connect to the sidecar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := run(ctx, nil, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
			assert.ErrorContains(t, err, tt.err)
		})
	}
}

func TestLoadConfig(t *testing.T) {
	cfg, err := loadConfig(func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, config{port: 8084, appID: "payments", store: "payments-store", daprGRPC: 50001}, cfg)
	env := map[string]string{"APP_PORT": "9000", "APP_ID": "pay", "STATE_STORE": "other", "DAPR_GRPC_PORT": "50006"}
	cfg, err = loadConfig(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, config{port: 9000, appID: "pay", store: "other", daprGRPC: 50006}, cfg)
}
