package httpx

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// NewLogger returns the JSON logger a service passes around, at the level named by
// LOG_LEVEL (debug, info, warn, error; info when unset).
func NewLogger(getenv func(string) string, app string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(getenv("LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})).With("app", app)
}

// ListenHostVar names the environment variable that holds the host a service
// listens on. dapr.yaml sets it to 127.0.0.1: locally only the service's own
// sidecar calls it, and nothing else on the network should reach past the
// gateway's sidecar. The pods leave it unset, since the kubelet's probes come
// from the node.
const ListenHostVar = "APP_LISTEN_HOST"

// ListenAddr returns the address a service serves port on: host, or every
// address when host is empty.
func ListenAddr(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Port reads a TCP port from the environment variable name, or returns def when it
// is unset.
func Port(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port", name, v)
	}
	return p, nil
}

// Duration reads a duration such as 5s from the environment variable name, or
// returns def when it is unset.
func Duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration", name, v)
	}
	return d, nil
}

// Int64 reads a positive integer from the environment variable name, or returns def
// when it is unset.
func Int64(getenv func(string) string, name string, def int64) (int64, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive integer", name, v)
	}
	return n, nil
}
