package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/daprshop/daprshop/internal/httpx"
)

// Options say how to start a system.
type Options struct {
	// Template is the path of dapr.yaml.
	Template string
	// Daprd is the sidecar binary.
	Daprd string
	// BinDir receives the apps' binaries when their command is `go run .`.
	BinDir string
	// FreePorts gives every app and sidecar a free port instead of the ports the
	// template names, so that a test system never clashes with `make run`.
	FreePorts bool
	// Ports overrides the app port of the named apps.
	Ports map[string]int
	// ResourcesPath, when set, replaces every app's resources path: the component
	// set to run with.
	ResourcesPath string
	// Env is added to every app's environment, after the template's.
	Env map[string]string
	// AppEnv is added to the named app's environment, last.
	AppEnv map[string]map[string]string
	// Out receives the apps' output, each line prefixed with its app-id.
	Out io.Writer
	// ReadyTimeout bounds the wait for every sidecar and app to be healthy.
	ReadyTimeout time.Duration
	// Profiles serves Go's profiles of every daprd (--enable-profiling) and
	// every app (PPROF_ADDR) on ports of their own, which each Instance names,
	// all on loopback (a daprd serves them where its API listens).
	Profiles bool
}

// SidecarEnv is what the runner adds to every daprd's environment, each
// variable only where the environment does not set it already
// (bench/README.md, tuning log 9 and 11):
//
//   - GOGC=400 (Go's default is 100): a sidecar allocates much per request over
//     a small live heap, so at 100 it collects often; at 400, hello through the
//     gateway and two sidecars at 1000 requests/s had a p99 of 2.2 to 2.5 ms
//     against 3.5 to 4.3, for the same CPU.
//   - GOMAXPROCS=1: a system is fourteen Go processes, and with a P per core
//     each of them spins and wakes threads to find work another process's
//     thread could have run; with one P, and the apps likewise (dapr.yaml), the
//     sidecars spent a sixth less CPU per request and orders a tenth less per
//     order. On Kubernetes daprd sets it from its CPU limit (300m: 1).
//   - GODEBUG=schedtrace=2147483647 (the apps likewise, dapr.yaml): keeps the
//     runtime's monitor thread, sysmon, out of its deep sleep. Asleep, it is
//     woken by the process's next system call and then polls every 20 µs for a
//     millisecond or more; a sidecar busy in short bursts paid that hundreds of
//     times a second, a fifth of its CPU in sysmon alone. Awake, it backs off to
//     a poll every 10 ms when there is nothing to do: an order cost 20-45% less
//     CPU, a hello request through the gateway 25-40% (tuning log 26). The
//     trace it asks for every 2^31 ms (24.8 days of the machine's uptime) is
//     one line on stderr at start on a machine up for longer, and then that
//     often.
//
// The Kubernetes pods set GOGC and GODEBUG through dapr.io/env.
var SidecarEnv = []string{"GOGC=400", "GOMAXPROCS=1", "GODEBUG=schedtrace=2147483647"}

// sidecarEnv is env with SidecarEnv added where env does not set a variable.
func sidecarEnv(env []string) []string {
	out := env[:len(env):len(env)]
	for _, kv := range SidecarEnv {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, name+"=") }) {
			out = append(out, kv)
		}
	}
	return out
}

// System is a running set of apps and sidecars.
type System struct {
	opts      Options
	apps      map[string]resolved
	order     []string
	binaries  map[string]string
	mu        sync.Mutex
	instances map[string][]*Instance
	stamp     string
	// stateDir holds what belongs to this system alone: the Dapr
	// configurations it gives the sidecars, and its name registry.
	stateDir string
	// configs maps each configFilePath of the template ("" for none) to the
	// system's copy of it, with the system's name resolution.
	configs map[string]sidecarConfig
	// handedOut holds every port given to a child, so that no two children of
	// the system are given the same one before either has bound it.
	handedOut map[int]bool
}

// Instance is one running app process with its sidecar (or a sidecar alone, for
// an app the caller serves itself).
type Instance struct {
	AppID string
	// Name is the label of the instance in logs: the app-id, and its number from
	// the second instance on.
	Name string
	// ID is the instance's INSTANCE_ID, which it names in every answer: unique on
	// the machine, since two systems may run side by side.
	ID       string
	AppPort  int
	HTTPPort int
	GRPCPort int
	// DaprdProfiles and AppProfiles are the base URLs of the Go profiles
	// (/debug/pprof/) of the sidecar and of the app, under Options.Profiles;
	// "" otherwise.
	DaprdProfiles string
	AppProfiles   string
	app           *proc
	daprd         *proc
}

// DaprURL is the base URL of the instance's sidecar HTTP API.
func (i *Instance) DaprURL() string { return fmt.Sprintf("http://127.0.0.1:%d", i.HTTPPort) }

// AppURL is the base URL of the app itself.
func (i *Instance) AppURL() string { return fmt.Sprintf("http://127.0.0.1:%d", i.AppPort) }

// SidecarLog returns the last n lines of the sidecar's output.
func (i *Instance) SidecarLog(n int) string { return i.daprd.tail(n) }

// Start builds the apps, starts every app with its sidecar and waits until all
// of them are healthy. On any failure it stops what it started and returns an
// error that carries the failing app's last log lines.
func Start(ctx context.Context, opts Options) (*System, error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	// The children run in their apps' folders, so every path is made absolute.
	for _, p := range []*string{&opts.Template, &opts.Daprd, &opts.BinDir} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	t, err := LoadTemplate(opts.Template)
	if err != nil {
		return nil, err
	}
	apps, err := t.resolve()
	if err != nil {
		return nil, err
	}
	s := &System{
		opts:      opts,
		apps:      map[string]resolved{},
		binaries:  map[string]string{},
		instances: map[string][]*Instance{},
		stamp:     time.Now().Format("20060102150405"),
	}
	for _, a := range apps {
		if opts.ResourcesPath != "" {
			a.resources = []string{opts.ResourcesPath}
		}
		s.apps[a.AppID] = a
		s.order = append(s.order, a.AppID)
	}
	if err := s.checkServers(); err != nil {
		return nil, err
	}
	if err := s.writeConfigs(); err != nil {
		return nil, err
	}
	if err := s.build(ctx); err != nil {
		return nil, err
	}
	for i, id := range s.order {
		inst, err := s.startInstance(s.apps[id], 0, false)
		if err != nil {
			s.Stop()
			return nil, err
		}
		// The first sidecar creates the system's name registry; the others wait
		// for it, since sidecars creating the same SQLite file at once can fail
		// with SQLITE_BUSY.
		if i == 0 {
			if err := s.waitReady(ctx, []*Instance{inst}); err != nil {
				s.Stop()
				return nil, err
			}
		}
	}
	if err := s.waitReady(ctx, s.All()); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// nameResolution is the name resolution the runner gives every sidecar whose
// configuration names none: a SQLite file of this system's own. mDNS, the
// self-hosted default, is machine-wide: two systems on one machine would resolve
// each other's instances of an app-id, and a test system would call the apps of a
// `make run` in progress.
func nameResolution(registry string) map[string]any {
	return map[string]any{
		"component": "sqlite",
		"configuration": map[string]any{
			"connectionString": registry,
			// An instance that dies without leaving is forgotten after
			// updateInterval; the timeouts are generous for a loaded two-core
			// machine, where a registration that times out makes the sidecar
			// fail its start.
			"updateInterval": "5s",
			"timeout":        "2s",
			"busyTimeout":    "1500ms",
		},
	}
}

// writeConfigs gives every Dapr configuration the apps name (configFilePath,
// or none) a copy of its own in the system's state directory, with this
// system's name resolution added where the configuration has none.
func (s *System) writeConfigs() error {
	base := filepath.Join(filepath.Dir(s.opts.Template), ".dapr")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(base, "system-")
	if err != nil {
		return err
	}
	s.stateDir = dir
	s.configs = map[string]sidecarConfig{}
	for _, id := range s.order {
		src := s.apps[id].ConfigFilePath
		if _, ok := s.configs[src]; ok {
			continue
		}
		body, own, err := systemConfig(src, filepath.Join(dir, "names.db"))
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", len(s.configs)))
		if err := os.WriteFile(dst, body, 0o644); err != nil {
			return err
		}
		s.configs[src] = sidecarConfig{path: dst, ownNames: own}
	}
	return nil
}

// sidecarConfig is the system's copy of a Dapr configuration: where it is, and
// whether it resolves names through the system's own registry.
type sidecarConfig struct {
	path     string
	ownNames bool
}

// systemConfig returns the Dapr configuration in file src ("" for an empty one),
// with name resolution through registry unless it names its own, and whether
// it resolves names through registry.
func systemConfig(src, registry string) ([]byte, bool, error) {
	conf := map[string]any{
		"apiVersion": "dapr.io/v1alpha1",
		"kind":       "Configuration",
		"metadata":   map[string]any{"name": "daprshop-local"},
	}
	if src != "" {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, false, fmt.Errorf("configFilePath: %w", err)
		}
		conf = map[string]any{}
		if err := yaml.Unmarshal(b, &conf); err != nil {
			return nil, false, fmt.Errorf("configFilePath %s: %w", src, err)
		}
	}
	spec, _ := conf["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		conf["spec"] = spec
	}
	_, named := spec["nameResolution"]
	if !named {
		spec["nameResolution"] = nameResolution(registry)
	}
	body, err := yaml.Marshal(conf)
	return body, !named, err
}

// build compiles every app whose command is `go run .` (the form that keeps
// dapr.yaml valid for the CLI) into BinDir, in one go build, so that the
// runner's children are the apps themselves and not go run wrappers.
func (s *System) build(ctx context.Context) error {
	var pkgs []string
	for _, id := range s.order {
		a := s.apps[id]
		if isGoRun(a.Command) {
			pkgs = append(pkgs, a.AppDirPath)
			s.binaries[id] = filepath.Join(s.opts.BinDir, filepath.Base(a.AppDirPath))
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	if err := os.MkdirAll(s.opts.BinDir, 0o755); err != nil {
		return err
	}
	args := append([]string{"build", "-o", s.opts.BinDir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = pkgs[0] // inside the apps' module, wherever the template lives
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// checkServers makes sure the servers the components point at answer before any
// sidecar starts, so that a missing Redis is one clear line rather than seven
// sidecars timing out.
func (s *System) checkServers() error {
	seen := map[string]bool{}
	var paths []string
	for _, id := range s.order {
		for _, p := range s.apps[id].resources {
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
	}
	servers, err := Servers(paths...)
	if err != nil {
		return err
	}
	return EnsureServers(servers, func(format string, args ...any) {
		fmt.Fprintf(s.opts.Out, format+"\n", args...)
	})
}

func isGoRun(cmd []string) bool {
	return len(cmd) == 3 && cmd[0] == "go" && cmd[1] == "run" && cmd[2] == "."
}

// StartInstance starts one more instance of appID, with its own sidecar under
// the same app-id and env added to the app's environment, and waits until it
// is healthy.
func (s *System) StartInstance(ctx context.Context, appID string, env map[string]string) (*Instance, error) {
	a, ok := s.apps[appID]
	if !ok {
		return nil, fmt.Errorf("no app %s in the template", appID)
	}
	a.extraEnv = env
	inst, err := s.startInstance(a, 0, true)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, []*Instance{inst}); err != nil {
		inst.Stop()
		return nil, err
	}
	return inst, nil
}

// StartSidecar starts a sidecar alone for an app the caller serves on appPort
// under appID, with the system's resources, and waits until it is healthy.
func (s *System) StartSidecar(ctx context.Context, appID string, appPort int) (*Instance, error) {
	// The sidecar loads the same resources and configuration as the
	// template's first app.
	base := s.apps[s.order[0]]
	a := resolved{resources: base.resources}
	a.ConfigFilePath = base.ConfigFilePath
	a.AppID = appID
	a.AppProtocol = "http"
	a.LogLevel = base.LogLevel
	a.DaprdLogDestination = "file"
	a.AppDirPath = filepath.Dir(s.opts.Template)
	inst, err := s.startInstance(a, appPort, true)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, []*Instance{inst}); err != nil {
		inst.Stop()
		return nil, err
	}
	return inst, nil
}

// Instances returns the running instances of appID, the first one first.
func (s *System) Instances(appID string) []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Instance(nil), s.instances[appID]...)
}

// App returns the first instance of appID, or nil.
func (s *System) App(appID string) *Instance {
	if in := s.Instances(appID); len(in) > 0 {
		return in[0]
	}
	return nil
}

// All returns every running instance, app by app in the template's order.
func (s *System) All() []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Instance
	for _, id := range s.order {
		out = append(out, s.instances[id]...)
	}
	return out
}

// startInstance starts a sidecar and, unless externalPort is set, the app. The
// sidecar goes first: the app's Dapr client connects to it at start, and daprd
// waits for the app's port before it calls the app.
func (s *System) startInstance(a resolved, externalPort int, extra bool) (*Instance, error) {
	s.mu.Lock()
	n := len(s.instances[a.AppID]) + 1
	s.mu.Unlock()

	ports, err := s.ports(a, extra || externalPort != 0)
	if err != nil {
		return nil, err
	}
	inst := &Instance{
		AppID:    a.AppID,
		Name:     fmt.Sprintf("%s-%d", a.AppID, n),
		AppPort:  ports[0],
		HTTPPort: ports[1],
		GRPCPort: ports[2],
	}
	if externalPort != 0 {
		inst.AppPort = externalPort
	}
	inst.ID = fmt.Sprintf("%s-%d@%d", a.AppID, n, inst.AppPort)
	logDir := filepath.Join(a.AppDirPath, ".dapr", "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	label := a.AppID
	if n > 1 {
		label = inst.Name
	}

	daprdArgs := []string{
		"--app-id", a.AppID,
		"--app-port", strconv.Itoa(inst.AppPort),
		"--app-protocol", a.AppProtocol,
		"--dapr-http-port", strconv.Itoa(inst.HTTPPort),
		"--dapr-grpc-port", strconv.Itoa(inst.GRPCPort),
		// The Dapr API (and the profiles, which daprd serves on the same
		// addresses) on loopback only, as Kubernetes' sidecar injector has it:
		// every app reaches its sidecar at 127.0.0.1. The metrics likewise.
		"--dapr-listen-addresses", "127.0.0.1",
		"--dapr-internal-grpc-port", strconv.Itoa(ports[3]),
		"--metrics-port", strconv.Itoa(ports[4]),
		"--metrics-listen-address", "127.0.0.1",
		"--log-level", a.LogLevel,
		"--placement-host-address", "",
	}
	for _, r := range a.resources {
		daprdArgs = append(daprdArgs, "--resources-path", r)
	}
	conf := s.configs[a.ConfigFilePath]
	daprdArgs = append(daprdArgs, "--config", conf.path)
	if a.AppHealthCheckPath != "" && (a.EnableAppHealthCheck == nil || *a.EnableAppHealthCheck) {
		daprdArgs = append(daprdArgs, "--enable-app-health-check", "--app-health-check-path", a.AppHealthCheckPath)
		for _, f := range []struct {
			flag string
			v    int
		}{
			{"--app-health-probe-interval", a.AppHealthProbeInterval},
			{"--app-health-probe-timeout", a.AppHealthProbeTimeout},
			{"--app-health-threshold", a.AppHealthThreshold},
		} {
			if f.v > 0 {
				daprdArgs = append(daprdArgs, f.flag, strconv.Itoa(f.v))
			}
		}
	}
	daprdEnv := sidecarEnv(os.Environ())
	if conf.ownNames {
		// Every instance the system's own registry knows is on this machine:
		// the internal API, which the other sidecars call, goes on loopback
		// too, and each sidecar registers 127.0.0.1 as its address. A
		// configuration's own name resolution (mDNS, say) may span machines,
		// and leaves both as daprd has them: every address, and the address
		// daprd finds for the machine.
		daprdArgs = append(daprdArgs, "--dapr-internal-grpc-listen-address", "127.0.0.1")
		daprdEnv = append(daprdEnv, "DAPR_HOST_IP=127.0.0.1")
	}
	if s.opts.Profiles {
		daprdArgs = append(daprdArgs, "--enable-profiling", "--profile-port", strconv.Itoa(ports[5]))
		inst.DaprdProfiles = fmt.Sprintf("http://127.0.0.1:%d", ports[5])
	}
	daprdLog := filepath.Join(logDir, fmt.Sprintf("%s_daprd_%s.log", label, s.stamp))
	inst.daprd, err = startProc(procSpec{
		name: label + " daprd", path: s.opts.Daprd, args: daprdArgs, dir: a.AppDirPath,
		env: daprdEnv, logFile: daprdLog, console: consoleFor(a.DaprdLogDestination, s.opts.Out),
	})
	if err != nil {
		return nil, err
	}
	s.track(inst)
	if externalPort != 0 {
		return inst, nil
	}

	path, args := a.Command[0], a.Command[1:]
	if bin, ok := s.binaries[a.AppID]; ok {
		path, args = bin, nil
	}
	env := os.Environ()
	for _, m := range []map[string]string{a.Env, s.opts.Env, s.opts.AppEnv[a.AppID], a.extraEnv} {
		for k, v := range m {
			env = append(env, k+"="+v)
		}
	}
	env = append(env,
		"APP_ID="+a.AppID,
		"APP_PORT="+strconv.Itoa(inst.AppPort),
		"APP_PROTOCOL="+a.AppProtocol,
		"DAPR_HTTP_PORT="+strconv.Itoa(inst.HTTPPort),
		"DAPR_GRPC_PORT="+strconv.Itoa(inst.GRPCPort),
		"DAPR_METRICS_PORT="+strconv.Itoa(ports[4]),
		"INSTANCE_ID="+inst.ID,
	)
	if s.opts.Profiles {
		env = append(env, fmt.Sprintf("%s=127.0.0.1:%d", httpx.ProfilesAddrVar, ports[6]))
		inst.AppProfiles = fmt.Sprintf("http://127.0.0.1:%d", ports[6])
	}
	appLog := filepath.Join(logDir, fmt.Sprintf("%s_app_%s.log", label, s.stamp))
	inst.app, err = startProc(procSpec{
		name: label, path: path, args: args, dir: a.AppDirPath,
		env: env, logFile: appLog, console: consoleFor(a.AppLogDestination, s.opts.Out),
	})
	if err != nil {
		inst.Stop()
		return nil, err
	}
	return inst, nil
}

func (s *System) track(inst *Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[inst.AppID] = append(s.instances[inst.AppID], inst)
}

// ports returns app, HTTP, gRPC, internal gRPC and metrics ports, and under
// Options.Profiles the sidecar's and the app's profile ports: the template's
// where it names them, free ones otherwise, and always free ones for an extra
// instance or under FreePorts.
func (s *System) ports(a resolved, extra bool) ([]int, error) {
	want := make([]int, 5)
	if !s.opts.FreePorts && !extra {
		want = []int{a.AppPort, a.DaprHTTPPort, a.DaprGRPCPort, 0, a.MetricsPort}
	}
	if s.opts.Profiles {
		want = append(want, 0, 0)
	}
	if p, ok := s.opts.Ports[a.AppID]; ok && !extra {
		want[0] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handedOut == nil {
		s.handedOut = map[int]bool{}
	}
	ports, err := freePorts(want, s.handedOut)
	for _, p := range ports {
		s.handedOut[p] = true
	}
	return ports, err
}

// freePorts fills every zero in want with a port nothing listens on and that is
// not in taken. The listeners stay open until all are chosen, so no port is
// handed out twice in one call; taken carries the ports of earlier calls, whose
// children may not have bound them yet.
//
// The ports come from below the kernel's ephemeral range, not from port 0:
// between the choice and the child's bind, a port of the ephemeral range can be
// taken as the source port of any outgoing connection, and on a busy machine one
// is (a sidecar then fails with "address already in use").
func freePorts(want []int, taken map[int]bool) ([]int, error) {
	out := make([]int, len(want))
	var open []net.Listener
	defer func() {
		for _, l := range open {
			l.Close()
		}
	}()
	lo, hi := portRange()
	for i, p := range want {
		if p != 0 {
			out[i] = p
			continue
		}
		var l net.Listener
		err := fmt.Errorf("no free port in %d-%d", lo, hi)
		for try := 0; try < 200; try++ {
			p := lo + rand.IntN(hi-lo)
			if taken[p] {
				continue
			}
			// The children listen on every interface, so the probe does too.
			if l, err = net.Listen("tcp", fmt.Sprintf(":%d", p)); err == nil {
				break
			}
		}
		if err != nil {
			if l, err = net.Listen("tcp", ":0"); err != nil {
				return nil, err
			}
		}
		open = append(open, l)
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

// portRange returns where freePorts picks ports: the 12,000 ports below the
// kernel's ephemeral range.
func portRange() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 13000 {
				hi = n
			}
		}
	}
	return hi - 12000, hi
}

func consoleFor(dest string, out io.Writer) io.Writer {
	switch dest {
	case "console", "fileAndConsole":
		return out
	default:
		return nil
	}
}

// waitReady polls every sidecar's /v1.0/healthz, every app's health path, and
// that path through the app's sidecar, until all answer 2xx, a process dies, or
// the deadline passes.
func (s *System) waitReady(ctx context.Context, insts []*Instance) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	pending := append([]*Instance(nil), insts...)
	for len(pending) > 0 {
		var next []*Instance
		for _, in := range pending {
			if p := in.dead(); p != nil {
				return fmt.Errorf("%s exited before it was healthy: %v\n%s", p.name, p.exitErr(), p.tail(30))
			}
			if !healthy(ctx, client, in.DaprURL()+"/v1.0/healthz") {
				next = append(next, in)
				continue
			}
			if in.app != nil {
				// The app answers, and its own sidecar can reach it by name: a
				// daprd that is healthy itself may not have found its app yet.
				path := s.apps[in.AppID].AppHealthCheckPath
				if path != "" && (!healthy(ctx, client, in.AppURL()+path) ||
					!healthy(ctx, client, in.DaprURL()+"/v1.0/invoke/"+in.AppID+"/method"+path)) {
					next = append(next, in)
				}
			}
		}
		pending = next
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			in := pending[0]
			msg := fmt.Sprintf("%s is not healthy after %s", in.Name, s.opts.ReadyTimeout)
			if in.app != nil {
				msg += "\n--- app log ---\n" + in.app.tail(20)
			}
			msg += "\n--- daprd log ---\n" + in.daprd.tail(20)
			return errors.New(msg)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func healthy(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode >= 200 && res.StatusCode < 300
}

// dead returns a process of the instance that has exited, or nil.
func (i *Instance) dead() *proc {
	for _, p := range []*proc{i.daprd, i.app} {
		if p != nil && p.exited() {
			return p
		}
	}
	return nil
}

// Stop stops the instance's app, then its sidecar (see stopInstances).
func (i *Instance) Stop() {
	stopInstances([]*Instance{i})
}

// Kill ends the instance's app and sidecar at once with SIGKILL, as a machine
// that dies ends them, and takes the instance out of the system, so that
// Instances, App and Exited no longer count it. What it had taken from the
// broker without acknowledging it is the broker's to hand out again.
func (s *System) Kill(in *Instance) {
	procs := []*proc{in.app, in.daprd}
	for _, p := range procs {
		if p != nil && !p.exited() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	for _, p := range procs {
		if p != nil {
			<-p.done
		}
	}
	s.forget(in)
}

// StopInstance stops one instance as Stop does and takes it out of the system,
// as Kill does.
func (s *System) StopInstance(in *Instance) {
	in.Stop()
	s.forget(in)
}

// forget takes the instance out of the system.
func (s *System) forget(in *Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[in.AppID] = slices.DeleteFunc(s.instances[in.AppID], func(i *Instance) bool { return i == in })
}

// Stop stops every process of the system: SIGTERM to each process group, then
// SIGKILL to whatever is left after a grace period.
func (s *System) Stop() {
	stopInstances(s.All())
	if s.stateDir != "" {
		_ = os.RemoveAll(s.stateDir)
	}
}

// PIDs returns the process ids of every process the system started.
func (s *System) PIDs() []int {
	var out []int
	for _, in := range s.All() {
		for _, p := range []*proc{in.app, in.daprd} {
			if p != nil {
				out = append(out, p.cmd.Process.Pid)
			}
		}
	}
	return out
}

// Exited returns the names of the processes of the system that have exited.
func (s *System) Exited() []string {
	var out []string
	for _, in := range s.All() {
		for _, p := range []*proc{in.app, in.daprd} {
			if p != nil && p.exited() {
				out = append(out, p.name)
			}
		}
	}
	return out
}

// Logs returns the last n lines each process of appID wrote.
func (s *System) Logs(appID string, n int) string {
	var b strings.Builder
	for _, in := range s.Instances(appID) {
		for _, p := range []*proc{in.app, in.daprd} {
			if p != nil {
				fmt.Fprintf(&b, "--- %s ---\n%s\n", p.name, p.tail(n))
			}
		}
	}
	return b.String()
}

// stopInstances stops the apps of insts, then their sidecars, as daprd's
// block-shutdown-duration has a sidecar wait for its app on Kubernetes: an app
// that is stopping may still need its sidecar, for the requests it finishes
// and for what it gives back (orders, the reconciler's lease).
func stopInstances(insts []*Instance) {
	var apps, sidecars []*proc
	for _, in := range insts {
		apps = append(apps, in.app)
		sidecars = append(sidecars, in.daprd)
	}
	stopAll(apps)
	stopAll(sidecars)
}

// stopAll sends SIGTERM to the process group of each of procs, waits up to
// 10 s for them to exit, and kills what is left.
func stopAll(procs []*proc) {
	var live []*proc
	for _, p := range procs {
		if p != nil && !p.exited() {
			live = append(live, p)
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(10 * time.Second)
	for _, p := range live {
		select {
		case <-p.done:
		case <-deadline:
		}
	}
	for _, p := range live {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}
