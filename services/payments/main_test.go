package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprapp"
)

// TestStart checks the payments service's defaults, and that run stops at a
// configuration it cannot use; package daprapp tests the rest of the start.
func TestStart(t *testing.T) {
	cfg, err := daprapp.LoadConfig(func(string) string { return "" }, defaults)
	require.NoError(t, err)
	assert.Equal(t, daprapp.Config{Port: 8084, AppID: "payments", Store: "payments-store", DaprGRPC: 50001, ConnectWait: time.Minute}, cfg)

	getenv := func(k string) string { return map[string]string{"APP_PORT": "-1"}[k] }
	assert.ErrorContains(t, run(context.Background(), nil, getenv, io.Discard, io.Discard), `APP_PORT="-1" is not a port`)
}
