// Package tests holds the end-to-end tests: they start the real system from
// dapr.yaml (real daprd, real broker and stores) on free ports, so that they
// never clash with a `make run` in progress, and check it through the gateway as
// a client would.
package tests

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/daprshop/internal/runner"
)

var (
	// sys is the system every test talks to, started once in TestMain.
	sys *runner.System
	// gateway is the gateway's base URL.
	gateway string
	root    string
)

// extraApps are app-ids the gateway forwards to that the tests serve or stop
// themselves: a slow one, and one that goes away.
var extraApps = []string{"slowpoke", "ghost"}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	root, err = filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	daprd := os.Getenv("DAPRD")
	if daprd == "" {
		daprd = filepath.Join(root, "bin", "daprd")
	}
	if _, err := os.Stat(daprd); err != nil {
		fmt.Fprintf(os.Stderr, "end-to-end tests need daprd at %s: run `make daprd` (or `make test`, which builds it)\n", daprd)
		return 1
	}
	logPath := filepath.Join(root, ".dapr", "e2e.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logFile.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	template := os.Getenv("E2E_TEMPLATE")
	if template == "" {
		template = filepath.Join(root, "dapr.yaml")
	}
	tmpl, err := runner.LoadTemplate(template)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var gwApps []string
	for _, a := range tmpl.Apps {
		if a.AppID != "gateway" {
			gwApps = append(gwApps, a.AppID)
		}
	}
	gwApps = append(gwApps, extraApps...)

	tmp, err := os.MkdirTemp("", "daprshop-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	resources, stopRedis, err := isolate(resourcesPath(), tmp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "isolating the component set: %v\n", err)
		return 1
	}
	defer stopRedis()

	start := time.Now()
	sys, err = runner.Start(ctx, runner.Options{
		Template:      template,
		Daprd:         daprd,
		BinDir:        filepath.Join(root, "bin", "apps"),
		FreePorts:     true,
		ResourcesPath: resources,
		Out:           logFile,
		AppEnv: map[string]map[string]string{
			"gateway": {"GATEWAY_APPS": strings.Join(gwApps, ","), "GATEWAY_TIMEOUT": gatewayTimeout.String()},
		},
		ReadyTimeout: 150 * time.Second,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the system: %v\n(all output: %s)\n", err, logPath)
		return 1
	}
	gateway = sys.App("gateway").AppURL()
	fmt.Printf("system up in %s; gateway %s; output in %s\n", time.Since(start).Round(time.Millisecond), gateway, logPath)
	code := m.Run()
	sys.Stop()
	return code
}

// gatewayTimeout is the gateway's upstream timeout in the tests: short, so the
// slow-target test is quick, but longer than the sidecar's own retries (about 3 s) of an instance that went away.
const gatewayTimeout = 6 * time.Second

// resourcesPath is the component set to test with: COMPONENTS names a folder
// under components/ (for example postgres-rabbitmq); unset means the default.
func resourcesPath() string {
	if set := os.Getenv("COMPONENTS"); set != "" && set != "components" {
		return filepath.Join(root, "components", set)
	}
	return filepath.Join(root, "components")
}
