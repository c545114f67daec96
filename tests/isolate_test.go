package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/daprshop/daprshop/internal/runner"
)

// isolate copies the component set in dir to a folder of its own and, when the
// set uses Redis and redis-server is installed, points it at a Redis server of
// the test run's own. Two systems on one Redis share their stores and their
// consumer groups, so a `make run` in progress would take some of the tests'
// events (and the tests some of its); a private server keeps every test run to
// itself. It returns the folder to use and a function that stops the server.
func isolate(dir, tmp string) (string, func(), error) {
	noop := func() {}
	servers, err := runner.Servers(dir)
	if err != nil {
		return "", noop, err
	}
	var redisAddrs []string
	for _, s := range servers {
		if s.Kind == "redis" {
			redisAddrs = append(redisAddrs, s.Addr)
		}
	}
	bin, err := exec.LookPath("redis-server")
	if len(redisAddrs) == 0 || err != nil {
		return dir, noop, nil
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", noop, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", noop, fmt.Errorf("start redis-server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", noop, fmt.Errorf("redis-server on %s does not answer", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	out := filepath.Join(tmp, "components")
	if err := os.MkdirAll(out, 0o755); err != nil {
		stop()
		return "", noop, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		stop()
		return "", noop, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			stop()
			return "", noop, err
		}
		s := string(b)
		for _, a := range redisAddrs {
			s = strings.ReplaceAll(s, "value: "+a, "value: "+addr)
		}
		if err := os.WriteFile(filepath.Join(out, filepath.Base(f)), []byte(s), 0o644); err != nil {
			stop()
			return "", noop, err
		}
	}
	return out, stop, nil
}
