package runner

import (
	"errors"
	"fmt"
	"net"
	"net/url"
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
	Kind string // "redis", "postgres", "mysql", "rabbitmq", "mqtt" or "kafka"
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
			Name         string    `yaml:"name"`
			Value        string    `yaml:"value"`
			SecretKeyRef yaml.Node `yaml:"secretKeyRef"`
		} `yaml:"metadata"`
	} `yaml:"spec"`
}

// Servers lists the servers the components under the resource paths point at.
// Like daprd, it reads the YAML files directly in each folder, not in its
// subfolders. A value taken from a secret store is not known here, so a server
// named only through one is not listed.
func Servers(resourcePaths ...string) ([]Server, error) {
	byAddr := map[string]*Server{}
	for _, dir := range resourcePaths {
		var files []string
		for _, pattern := range []string{"*.yaml", "*.yml"} {
			m, err := filepath.Glob(filepath.Join(dir, pattern))
			if err != nil {
				return nil, err
			}
			files = append(files, m...)
		}
		sort.Strings(files)
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
			found, err := serversOf(c)
			if err != nil {
				return nil, fmt.Errorf("%s: component %s: %w", f, c.Metadata.Name, err)
			}
			for _, s := range found {
				key := s.Kind + " " + s.Addr
				known, ok := byAddr[key]
				if !ok {
					known = &Server{Kind: s.Kind, Addr: s.Addr}
					byAddr[key] = known
				}
				known.Used = strings.TrimPrefix(known.Used+", "+c.Metadata.Name, ", ")
			}
		}
	}
	out := make([]Server, 0, len(byAddr))
	for _, s := range byAddr {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Addr < out[j].Addr
	})
	return out, nil
}

// serversOf returns the servers one component points at, with Used left empty.
func serversOf(c component) ([]Server, error) {
	meta := map[string]string{}
	for _, m := range c.Spec.Metadata {
		if m.SecretKeyRef.Kind != 0 {
			continue
		}
		meta[m.Name] = strings.TrimSpace(m.Value)
	}
	typ := c.Spec.Type
	one := func(kind, addr string, err error) ([]Server, error) {
		if err != nil || addr == "" {
			return nil, err
		}
		return []Server{{Kind: kind, Addr: addr}}, nil
	}
	switch {
	case strings.HasSuffix(typ, ".redis"):
		return many("redis", meta["redisHost"], 6379)
	case strings.HasSuffix(typ, ".postgresql"), strings.HasSuffix(typ, ".postgres"):
		if meta["connectionString"] == "" {
			return nil, nil
		}
		addr, err := postgresAddr(meta["connectionString"])
		return one("postgres", addr, err)
	case strings.HasSuffix(typ, ".mysql"):
		if meta["connectionString"] == "" {
			return nil, nil
		}
		addr, err := mysqlAddr(meta["connectionString"])
		return one("mysql", addr, err)
	case strings.HasSuffix(typ, ".rabbitmq"):
		addr, err := rabbitMQAddr(meta)
		return one("rabbitmq", addr, err)
	case strings.HasSuffix(typ, ".mqtt3"), strings.HasSuffix(typ, ".mqtt"):
		if meta["url"] == "" {
			return nil, nil
		}
		addr, err := mqttAddr(meta["url"])
		return one("mqtt", addr, err)
	case strings.HasSuffix(typ, ".kafka"):
		return many("kafka", meta["brokers"], 9092)
	}
	return nil, nil
}

// many reads a comma-separated list of host[:port], as Redis (cluster) and Kafka
// take it.
func many(kind, list string, defaultPort int) ([]Server, error) {
	var out []Server
	for _, hp := range strings.Split(list, ",") {
		if hp = strings.TrimSpace(hp); hp == "" {
			continue
		}
		addr, err := hostPort(hp, defaultPort)
		if err != nil {
			return nil, err
		}
		out = append(out, Server{Kind: kind, Addr: addr})
	}
	return out, nil
}

// hostPort returns hp with defaultPort added when it has no port of its own.
func hostPort(hp string, defaultPort int) (string, error) {
	if host, port, err := net.SplitHostPort(hp); err == nil {
		if host == "" {
			host = "localhost"
		}
		return net.JoinHostPort(host, port), nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]")
	if host == "" || strings.ContainsAny(host, "/ ") {
		return "", fmt.Errorf("%q is not a host[:port]", hp)
	}
	return net.JoinHostPort(host, fmt.Sprint(defaultPort)), nil
}

// postgresAddr returns the host:port of a PostgreSQL connection string, in URL
// form (postgres://user@host:port/db) or keyword/value form
// (host=... port=... dbname=...). With several hosts it returns the first. It
// returns "" for a Unix socket, which has no address to check.
func postgresAddr(conn string) (string, error) {
	var host, port string
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return "", fmt.Errorf("connectionString: %w", err)
		}
		// A URL may name several hosts, host1:port1,host2:port2; the first counts.
		hp := strings.Split(u.Host, ",")[0]
		if h, p, err := net.SplitHostPort(hp); err == nil {
			host, port = h, p
		} else {
			host = strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]")
		}
		if host == "" {
			host = u.Query().Get("host")
		}
		if port == "" {
			port = u.Query().Get("port")
		}
	} else {
		kv, err := keywordValues(conn)
		if err != nil {
			return "", fmt.Errorf("connectionString: %w", err)
		}
		host, port = kv["host"], kv["port"]
		if host == "" {
			host = kv["hostaddr"]
		}
	}
	host = strings.Split(host, ",")[0]
	port = strings.Split(port, ",")[0]
	if strings.HasPrefix(host, "/") {
		return "", nil
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port), nil
}

// keywordValues parses libpq's keyword/value connection string: key=value pairs
// separated by spaces, a value optionally in single quotes with \' and \\
// escapes.
func keywordValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, fmt.Errorf("%q is not key=value", s)
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					val.WriteByte(s[i])
					continue
				}
				if s[i] == '\'' {
					closed = true
					break
				}
				val.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quote in the value of %s", key)
			}
			s = s[i+1:]
		} else {
			end := strings.IndexAny(s, " \t\n\r")
			if end < 0 {
				end = len(s)
			}
			val.WriteString(s[:end])
			s = s[end:]
		}
		out[key] = val.String()
	}
}

// mysqlAddr returns the host:port of a Go MySQL driver DSN,
// [user[:password]@][protocol[(address)]]/[dbname][?params]. It returns "" for
// a Unix socket.
func mysqlAddr(dsn string) (string, error) {
	// As the driver does: the database name follows the last '/', and the
	// credentials end at the last '@' before it.
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return "", fmt.Errorf("connectionString %q has no '/' (user:password@tcp(host:port)/)", redactDSN(dsn))
	}
	rest := dsn[:slash]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	proto, addr := rest, ""
	if open := strings.IndexByte(rest, '('); open >= 0 {
		if !strings.HasSuffix(rest, ")") {
			return "", fmt.Errorf("connectionString %q: unbalanced parenthesis", redactDSN(dsn))
		}
		proto, addr = rest[:open], rest[open+1:len(rest)-1]
	}
	switch proto {
	case "", "tcp", "tcp6":
	case "unix":
		return "", nil
	default:
		return "", fmt.Errorf("connectionString %q: unknown protocol %q", redactDSN(dsn), proto)
	}
	if addr == "" {
		return "127.0.0.1:3306", nil
	}
	return hostPort(addr, 3306)
}

// redactDSN hides the password of a MySQL DSN in an error message.
func redactDSN(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	if at < 0 {
		return dsn
	}
	if colon := strings.IndexByte(dsn[:at], ':'); colon >= 0 {
		return dsn[:colon+1] + "***" + dsn[at:]
	}
	return dsn
}

// rabbitMQAddr returns the host:port a RabbitMQ component connects to: its
// connectionString (amqp:// or amqps://), else its deprecated host, else its
// hostname and protocol, which default to localhost and amqp.
func rabbitMQAddr(meta map[string]string) (string, error) {
	conn := meta["connectionString"]
	if conn == "" {
		conn = meta["host"]
	}
	if conn == "" {
		protocol := meta["protocol"]
		if protocol == "" {
			protocol = "amqp"
		}
		hostname := meta["hostname"]
		if hostname == "" {
			hostname = "localhost"
		}
		conn = protocol + "://" + hostname
	}
	u, err := url.Parse(conn)
	if err != nil {
		return "", fmt.Errorf("connectionString: %w", err)
	}
	switch u.Scheme {
	case "amqp":
		return hostPort(hostOrLocal(u), 5672)
	case "amqps":
		return hostPort(hostOrLocal(u), 5671)
	}
	return "", fmt.Errorf("connectionString %q: scheme %q, want amqp or amqps", u.Redacted(), u.Scheme)
}

// mqttAddr returns the host:port of an MQTT broker URL, as the mqtt3 component
// reads it: tcp:// or mqtt:// (port 1883 by default), ssl://, tls://, tcps:// or
// mqtts:// (8883), ws:// (80) or wss:// (443).
func mqttAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url: %w", err)
	}
	ports := map[string]int{
		"tcp": 1883, "mqtt": 1883,
		"ssl": 8883, "tls": 8883, "tcps": 8883, "mqtts": 8883,
		"ws": 80, "wss": 443,
	}
	port, ok := ports[u.Scheme]
	if !ok || u.Host == "" {
		return "", fmt.Errorf("url %q: want tcp://host:port (or ssl://, ws://)", u.Redacted())
	}
	return hostPort(u.Host, port)
}

func hostOrLocal(u *url.URL) string {
	if u.Host == "" {
		return "localhost"
	}
	return u.Host
}

// hints say how to get a server of each kind running locally, for the message
// about one that does not answer.
var hints = map[string]string{
	"postgres": "start it (`apt-get install postgresql`, or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`) or point the set's connectionString at yours",
	"mysql":    "start it (`apt-get install mariadb-server`, or `docker run -d -p 3306:3306 -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 mariadb:11`) or point the set's connectionString at yours",
	"rabbitmq": "start it (`apt-get install rabbitmq-server`, or `docker run -d -p 5672:5672 rabbitmq:3`) or point the set's connectionString at yours",
	"mqtt":     "start an MQTT broker (`apt-get install mosquitto`, or `docker run -d -p 1883:1883 eclipse-mosquitto:2 mosquitto -c /mosquitto-no-auth.conf`) or point the set's url at yours",
	"kafka":    "start Kafka there or point the set's brokers at yours",
	"redis":    "run `dapr init` (it starts Redis in Docker) or `apt-get install redis-server`",
}

// EnsureServers checks that every server answers. A Redis that does not answer
// on a local address is started when redis-server is installed, as `dapr init`
// would have; any other server missing is an error that names it, the
// components that use it and how to start it. Every server is checked, so one
// error names all that are missing.
func EnsureServers(servers []Server, logf func(string, ...any)) error {
	var errs []error
	for _, s := range servers {
		if reachable(s.Addr) {
			continue
		}
		if bin, ok := redisToStart(s); ok {
			if err := startRedis(bin, s.Addr, logf); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		errs = append(errs, unreachable(s))
	}
	return errors.Join(errs...)
}

func unreachable(s Server) error {
	hint := hints[s.Kind]
	if hint == "" {
		hint = "start it or point the components at one that runs"
	}
	return fmt.Errorf("%s is not reachable at %s (used by %s): %s", s.Kind, s.Addr, s.Used, hint)
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// redisToStart returns the redis-server to start for s: s is a Redis on this
// machine and redis-server is installed.
func redisToStart(s Server) (string, bool) {
	if s.Kind != "redis" {
		return "", false
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil || (host != "localhost" && host != "127.0.0.1" && host != "::1") {
		return "", false
	}
	bin, err := exec.LookPath("redis-server")
	return bin, err == nil
}

func startRedis(bin, addr string, logf func(string, ...any)) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("redis address %q: %w", addr, err)
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
