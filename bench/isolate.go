package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/daprshop/daprshop/internal/runner"
)

// Why the bench runs in a network namespace of its own.
//
// The default components all use the Redis on localhost:6379, so on a machine
// where other daprshop systems run (another engineer's end-to-end suite, CI),
// their subscribers would take events from the bench's consumer groups (the
// groups are named after the app-ids) and the bench's from theirs, and the
// rogue subscriber of the ledger test would break their suites; with mDNS name
// resolution, the bench's gateway would even place orders with their orders
// instances. Measured that way, the ledger finds orders it cannot see. In a new
// network namespace the system sees only itself: the Redis at localhost:6379 is
// one the bench starts for the run, with the settings the runner uses when it
// starts one for `make run`, and mDNS, where a sidecar uses it, runs on the
// namespace's own loopback (with multicast on, as it needs).

// envIsolated marks the process that already runs in the bench's namespace.
const envIsolated = "DAPRSHOP_BENCH_NETNS"

// isolated reports whether this process is the one in the private namespace.
func isolated(getenv func(string) string) bool { return getenv(envIsolated) == "1" }

// reexecIsolated runs this program again, with the same arguments, in a new
// network namespace, and returns its exit code.
func reexecIsolated(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	cmd := exec.Command(self, args[1:]...)
	cmd.Env = append(os.Environ(), envIsolated+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("start in a new network namespace (needs root or CAP_SYS_ADMIN; -isolate=false runs on the machine's network): %w", err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// prepareNamespace brings the namespace's loopback up with multicast, which
// Dapr's mDNS needs, and tells daprd its host address, which it cannot find on
// an interface of its own here.
func prepareNamespace() error {
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"link", "set", "lo", "multicast", "on"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %w: %s", args, err, out)
		}
	}
	return os.Setenv("DAPR_HOST_IP", "127.0.0.1")
}

// privateRedis runs a Redis for the run, on the address the components name,
// as a child that dies with the bench. It returns its pid and how to stop it.
func privateRedis(addr string) (pid int, stop func(), err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, nil, err
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		return 0, nil, fmt.Errorf("something already listens on %s in the bench's namespace", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	cmd := exec.Command("redis-server", "--port", port, "--bind", host, "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start redis-server (apt-get install redis-server): %w", err)
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	for i := 0; i < 50; i++ {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return cmd.Process.Pid, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return 0, nil, fmt.Errorf("redis-server does not answer on %s", addr)
}

// isolate readies the namespace for a system that uses the components under
// dir: loopback, host address, and a private Redis for each Redis they name.
func isolate(dir string) (stop func(), err error) {
	if err := prepareNamespace(); err != nil {
		return nil, err
	}
	servers, err := runner.Servers(dir)
	if err != nil {
		return nil, err
	}
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	for _, s := range servers {
		if s.Kind != "redis" {
			continue
		}
		_, st, err := privateRedis(s.Addr)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, st)
	}
	return stop, nil
}

// exitCode is an exit status to pass on without a message: the process that
// failed has said why.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
