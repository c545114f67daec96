package httpx

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestServeProfiles(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, ServeProfiles(ctx, quiet, addr))

	res, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "httpx.test", "the cmdline of this process")

	res, err = http.Get("http://" + addr + "/debug/pprof/profile?seconds=1")
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, []byte{0x1f, 0x8b}, body[:2], "a CPU profile, gzipped protobuf")

	cancel()
	assert.Eventually(t, func() bool {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		return err != nil
	}, 5*time.Second, 50*time.Millisecond, "the profiles stop being served with the context")
}

func TestServeProfilesOff(t *testing.T) {
	assert.NoError(t, ServeProfiles(context.Background(), quiet, ""))
}

func TestServeProfilesRefuses(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	tests := []struct{ addr, want string }{
		{"6060", "not host:port"},
		{":6060", "loopback address only"},
		{"0.0.0.0:6060", "loopback address only"},
		{"10.1.2.3:6060", "loopback address only"},
		{"example.com:6060", "loopback address only"},
		{taken.Addr().String(), "listen on"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := ServeProfiles(context.Background(), quiet, tt.addr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
