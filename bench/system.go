package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/daprshop/daprshop/internal/runner"
)

// startSystem starts the system from dapr.yaml with the project's runner, as
// `make run` does, on free ports so that it never clashes with a `make run` in
// progress. The apps are built into bin/bench so that a `make run` or an
// end-to-end run keeps its own binaries.
func startSystem(ctx context.Context, cfg config, logPath string) (*runner.System, error) {
	if _, err := os.Stat(cfg.daprd); err != nil {
		return nil, fmt.Errorf("daprd not found at %s: run `make daprd`", cfg.daprd)
	}
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The file stays open for the life of the system; the runner's children
	// write to their own log files and to this one.
	sctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	for attempt := 1; ; attempt++ {
		sys, err := runner.Start(sctx, runner.Options{
			Template:     filepath.Join(cfg.root, "dapr.yaml"),
			Daprd:        cfg.daprd,
			BinDir:       filepath.Join(cfg.root, "bin", "bench"),
			FreePorts:    true,
			Out:          out,
			ReadyTimeout: 150 * time.Second,
			// Only the full run's sustained step is profiled.
			Profiles: cfg.profile > 0 && cfg.sustainRate > 0 && len(cfg.variants) == 0,
		})
		// A free port is free when the runner picks it, and can be taken by
		// an outgoing connection's ephemeral port before daprd binds it.
		// The sidecars of a new system also create their name registry at once
		// and now and then one finds it locked (SQLITE_BUSY) and gives up.
		if err != nil && attempt < 3 && (strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "SQLITE_BUSY")) {
			fmt.Fprintf(out, "starting again after: %v\n", err)
			continue
		}
		return sys, err
	}
}

// otherSystems names the daprd processes on the machine that the bench did not
// start, by app-id and pid: Dapr's mDNS name resolution is machine-wide, so an
// invocation may reach their instances, and their load shares the two cores.
func otherSystems() []string {
	me := os.Getpid()
	var out []string
	for _, p := range allPIDs() {
		if p == me {
			continue
		}
		cmd := cmdline(p)
		if len(cmd) == 0 || filepath.Base(cmd[0]) != "daprd" {
			continue
		}
		out = append(out, fmt.Sprintf("%s (pid %d)", flagValue(cmd, "--app-id"), p))
	}
	return out
}

func allPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return "?"
}

// hostInfo describes the machine the numbers come from, and the sidecar.
func hostInfo(daprd string) host {
	h := host{CPUs: runtime.NumCPU(), Go: runtime.Version(), Daprd: "?"}
	if out, err := exec.Command(daprd, "--version").Output(); err == nil {
		h.Daprd = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		h.MemoryGiB = float64(kb) / (1 << 20)
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		h.Redis = strings.TrimSpace(string(out))
	}
	return h
}
