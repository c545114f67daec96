package tests

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunnerLeavesNothingBehind starts the runner as `make run` does, with a
// template of the gateway and hello, stops it with SIGTERM and checks that every
// process it started is gone and every port it used is free.
func TestRunnerLeavesNothingBehind(t *testing.T) {
	dir, bin := buildRunner(t)
	tmpl := filepath.Join(dir, "dapr.yaml")
	require.NoError(t, os.WriteFile(tmpl, []byte(fmt.Sprintf(`version: 1
common:
  resourcesPath: %[1]s/components
  appHealthCheckPath: /healthz
apps:
  - appID: gateway
    appDirPath: %[1]s/services/gateway
    command: ["go", "run", "."]
    env:
      GATEWAY_APPS: hello
  - appID: hello
    appDirPath: %[1]s/services/hello
    command: ["go", "run", "."]
`, root)), 0o644))

	cmd := exec.Command(bin, "-f", tmpl, "-daprd", filepath.Join(root, "bin", "daprd"), "-free-ports")
	cmd.Dir = root
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	gatewayURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "gateway: http://") {
				gatewayURL <- strings.TrimPrefix(line, "gateway: ")
			}
		}
		close(gatewayURL)
	}()
	var url string
	select {
	case url = <-gatewayURL:
	case <-time.After(2 * time.Minute):
		t.Fatal("the runner never printed the gateway's address")
	}
	require.NotEmpty(t, url, "the runner ended before it printed the gateway's address")
	res, err := httpClient.Get(url + "/api/hello/service")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)

	children := descendants(cmd.Process.Pid)
	require.Len(t, children, 4, "two apps and two sidecars")
	ports := listeningPorts(t, children)
	require.NotEmpty(t, ports)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "the runner exits cleanly on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("the runner did not exit within 30 s of SIGTERM")
	}
	for _, pid := range children {
		assert.False(t, alive(pid), "process %d outlived the runner", pid)
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if assert.NoError(t, err, "port %d is still held", p) {
			l.Close()
		}
	}
}

// buildRunner builds the runner behind `make run` into a folder of the test's
// own and returns the folder and the binary.
func buildRunner(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "run")
	build := exec.Command("go", "build", "-o", bin, "./tools/run")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return dir, bin
}

// descendants returns the pids of every process below pid.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// listeningPorts returns the TCP ports the processes listen on.
func listeningPorts(t *testing.T, pids []int) []int {
	t.Helper()
	var ports []int
	for _, l := range listenersOf(t, pids) {
		ports = append(ports, l.port)
	}
	return ports
}

// listenersOf returns the listening TCP sockets the processes hold.
func listenersOf(t *testing.T, pids []int) []listener {
	t.Helper()
	inodes := map[string]bool{}
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
			}
		}
	}
	var out []listener
	for _, l := range listeners(t) {
		if inodes[l.inode] {
			out = append(out, l)
		}
	}
	return out
}

// listener is a listening TCP socket of the machine (of this network namespace).
type listener struct {
	ip    net.IP
	port  int
	inode string
}

// listeners reads the listening TCP sockets from /proc/net/tcp and tcp6, where
// an address is hexadecimal, each 32-bit word of it in the host's (little-endian)
// byte order.
func listeners(t *testing.T) []listener {
	t.Helper()
	var out []listener
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A is LISTEN
				continue
			}
			addr, port, ok := strings.Cut(f[1], ":")
			require.True(t, ok, "%s: %q", file, line)
			p, err := strconv.ParseUint(port, 16, 16)
			require.NoError(t, err, "%s: %q", file, line)
			raw, err := hex.DecodeString(addr)
			require.NoError(t, err, "%s: %q", file, line)
			ip := make(net.IP, len(raw))
			for w := 0; w < len(raw); w += 4 {
				binary.BigEndian.PutUint32(ip[w:], binary.LittleEndian.Uint32(raw[w:]))
			}
			out = append(out, listener{ip: ip, port: int(p), inode: f[9]})
		}
	}
	return out
}

// TestEveryProcessListensOnLoopbackOnly checks that no other machine can reach
// a sidecar (its Dapr API, with the state stores and topics, its internal API,
// which invokes its app, and its metrics) or an app past its sidecar. Under the
// runner, with the system's own name registry, every port of every daprd and
// every app (dapr.yaml's APP_LISTEN_HOST) listens on 127.0.0.1 and nowhere
// else.
func TestEveryProcessListensOnLoopbackOnly(t *testing.T) {
	var sidecars, apps int
	for _, pid := range sys.PIDs() {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		require.NoError(t, err)
		args := strings.Split(string(cmd), "\x00")
		name, least, what := filepath.Base(args[0]), 1, "its API"
		if name == "daprd" {
			sidecars++
			name, least, what = "daprd of "+flagValue(args, "--app-id"), 3, "HTTP, gRPC and internal gRPC"
		} else {
			apps++
		}
		ls := listenersOf(t, []int{pid})
		assert.GreaterOrEqual(t, len(ls), least, "%s (%d): %s at least", name, pid, what)
		for _, l := range ls {
			assert.True(t, l.ip.Equal(net.IPv4(127, 0, 0, 1)), "%s (%d) listens on %s:%d", name, pid, l.ip, l.port)
		}
	}
	assert.GreaterOrEqual(t, sidecars, len(sys.All()), "a daprd for every instance")
	assert.GreaterOrEqual(t, apps, len(sys.All()), "an app for every instance")
}

// flagValue returns the value that follows flag in args, or "".
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// TestRunnerReportsAnAppThatFails starts the runner with an app that exits at
// once: the runner must say which app failed, show its last lines and exit
// non-zero, having stopped the rest.
func TestRunnerReportsAnAppThatFails(t *testing.T) {
	dir, bin := buildRunner(t)
	tmpl := filepath.Join(dir, "dapr.yaml")
	require.NoError(t, os.WriteFile(tmpl, []byte(fmt.Sprintf(`version: 1
common:
  resourcesPath: %[1]s/components
  appHealthCheckPath: /healthz
apps:
  - appID: hello
    appDirPath: %[1]s/services/hello
    command: ["go", "run", "."]
  - appID: broken
    appDirPath: %[2]s
    command: ["sh", "-c", "echo cannot open the frobnicator; exit 3"]
`, root, dir)), 0o644))

	cmd := exec.Command(bin, "-f", tmpl, "-daprd", filepath.Join(root, "bin", "daprd"), "-free-ports", "-timeout", "60s")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the runner must fail: %s", out)
	assert.NotEqual(t, 0, exit.ExitCode())
	assert.Contains(t, string(out), "broken exited before it was healthy")
	assert.Contains(t, string(out), "cannot open the frobnicator", "the app's last lines are shown")
	assert.NotContains(t, string(out), "gateway: http://")
}
