package runner

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Server is a network server that a component set needs, such as Redis.
type Server struct {
	Kind string // "redis", "postgres", ...
	Addr string // host:port
	Used string // the components that point at it
}

type component struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Type     string `yaml:"type"`
		Metadata []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"metadata"`
	} `yaml:"spec"`
}

// Servers lists the servers the components under the resource paths point at.
func Servers(resourcePaths ...string) ([]Server, error) {
	byAddr := map[string]*Server{}
	for _, dir := range resourcePaths {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			var c component
			if err := yaml.Unmarshal(b, &c); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if c.Kind != "Component" {
				continue
			}
			kind, addr := serverOf(c)
			if addr == "" {
				continue
			}
			s, ok := byAddr[addr]
			if !ok {
				s = &Server{Kind: kind, Addr: addr}
				byAddr[addr] = s
			}
			s.Used = strings.TrimPrefix(s.Used+", "+c.Metadata.Name, ", ")
		}
	}
	out := make([]Server, 0, len(byAddr))
	for _, s := range byAddr {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out, nil
}

func serverOf(c component) (kind, addr string) {
	meta := map[string]string{}
	for _, m := range c.Spec.Metadata {
		meta[m.Name] = m.Value
	}
	switch {
	case strings.HasSuffix(c.Spec.Type, ".redis"):
		return "redis", meta["redisHost"]
	}
	return "", ""
}

// EnsureServers checks that every server answers. A Redis that does not answer
// on a local address is started when redis-server is installed, as `dapr init`
// would have; anything else missing is an error that says how to get it.
func EnsureServers(servers []Server, logf func(string, ...any)) error {
	for _, s := range servers {
		if reachable(s.Addr) {
			continue
		}
		if s.Kind == "redis" {
			if err := startRedis(s.Addr, logf); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("%s is not reachable at %s (used by %s)", s.Kind, s.Addr, s.Used)
	}
	return nil
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func startRedis(addr string, logf func(string, ...any)) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("redis address %q: %w", addr, err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil || (host != "localhost" && host != "127.0.0.1" && host != "::1") {
		return fmt.Errorf("redis is not reachable at %s: run `dapr init` (it starts Redis in Docker) or `apt-get install redis-server`", addr)
	}
	logf("redis is not running at %s: starting %s", addr, bin)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--daemonize", "yes", "--save", "", "--appendonly", "no")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start redis-server on %s: %w\n%s", addr, err, out)
	}
	for i := 0; i < 50; i++ {
		if reachable(addr) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("redis-server started but %s does not answer", addr)
}
