package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// ProfilesAddrVar names the environment variable that turns on ServeProfiles.
const ProfilesAddrVar = "PPROF_ADDR"

// ServeProfiles serves Go's runtime profiles (net/http/pprof, under
// /debug/pprof/) at addr, a loopback host and port, until ctx is done; with
// addr "" it serves nothing. The profiles are never on the service's own port,
// which the gateway and the sidecar reach: they tell how the service works
// inside, and a CPU profile costs while it runs. `go tool pprof
// http://127.0.0.1:PORT/debug/pprof/profile?seconds=20` reads one; the bench
// reads them all (bench/README.md).
func ServeProfiles(ctx context.Context, log *slog.Logger, addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q is not host:port: %w", ProfilesAddrVar, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s=%q: the profiles are served on a loopback address only, such as 127.0.0.1:6060", ProfilesAddrVar, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for the profiles: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiles server stopped", "addr", addr, "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving profiles", "addr", ln.Addr().String())
	return nil
}
