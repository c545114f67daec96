// Command run starts the whole daprshop system from dapr.yaml the way
// `dapr run -f .` does, for machines without the Dapr CLI: it builds the apps,
// starts each with its own daprd, waits until all are healthy, prints the
// gateway's address and stops everything on Ctrl-C or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/daprshop/daprshop/internal/runner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "run: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	file := fs.String("f", "dapr.yaml", "the multi-app run template")
	daprd := fs.String("daprd", "bin/daprd", "the daprd binary")
	resources := fs.String("resources", getenv("RESOURCES"), "a component set folder to use instead of the template's resourcesPath")
	gatewayPort := fs.Int("port", 0, "the gateway's port (default: dapr.yaml's appPort for the gateway)")
	gateway := fs.String("gateway", "gateway", "the app-id whose address is printed")
	free := fs.Bool("free-ports", false, "give every app and sidecar a free port instead of dapr.yaml's")
	timeout := fs.Duration("timeout", 120*time.Second, "how long to wait for every app to be healthy")
	profiles := fs.Bool("profiles", false, "serve Go's profiles of every app and daprd on ports of their own, and print them")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ports := map[string]int{}
	if *gatewayPort != 0 {
		ports[*gateway] = *gatewayPort
	}
	if *resources != "" {
		abs, err := filepath.Abs(*resources)
		if err != nil {
			return err
		}
		*resources = abs
	}

	sys, err := runner.Start(ctx, runner.Options{
		Template:      *file,
		Daprd:         *daprd,
		BinDir:        filepath.Join(filepath.Dir(*daprd), "apps"),
		Ports:         ports,
		FreePorts:     *free,
		ResourcesPath: *resources,
		Out:           stdout,
		ReadyTimeout:  *timeout,
		Profiles:      *profiles,
	})
	if err != nil {
		return err
	}
	defer sys.Stop()
	if gw := sys.App(*gateway); gw != nil {
		fmt.Fprintf(stdout, "\n%s: http://127.0.0.1:%d\n\n", *gateway, gw.AppPort)
	}
	if *profiles {
		fmt.Fprintln(stdout, "Go's profiles, for `go tool pprof <url>/debug/pprof/profile?seconds=20`:")
		for _, in := range sys.All() {
			fmt.Fprintf(stdout, "  %-20s %s\n  %-20s %s\n", in.AppID, in.AppProfiles, in.AppID+" daprd", in.DaprdProfiles)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "all apps are healthy; Ctrl-C stops them")
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return nil
}
