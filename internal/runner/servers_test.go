package runner

import (
	"net"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServersFromComponents(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "state.yaml", `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: store}
spec:
  type: state.redis
  version: v1
  metadata:
    - {name: redisHost, value: "localhost:6390"}
`)
	write(t, dir, "pubsub.yaml", `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {name: redisHost, value: "localhost:6390"}
`)
	write(t, dir, "resiliency.yaml", "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {name: r}\n")
	// daprd does not read subfolders, so neither does Servers.
	write(t, dir, "other/state.yaml", `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: elsewhere}
spec:
  type: state.postgresql
  metadata:
    - {name: connectionString, value: "host=db port=5432"}
`)
	servers, err := Servers(dir)
	require.NoError(t, err)
	require.Len(t, servers, 1)
	assert.Equal(t, Server{Kind: "redis", Addr: "localhost:6390", Used: "pubsub, store"}, servers[0])
}

func TestServersOfEveryKind(t *testing.T) {
	dir := t.TempDir()
	comp := func(name, typ, meta string) string {
		return "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: " + name + "}\nspec:\n  type: " + typ +
			"\n  version: v1\n  metadata:\n" + meta
	}
	write(t, dir, "a.yaml", comp("orders-store", "state.postgresql",
		`    - {name: connectionString, value: "host=pg.local port=6543 user=postgres dbname=test"}`+"\n"))
	write(t, dir, "b.yaml", comp("catalog-store", "state.postgresql",
		`    - {name: connectionString, value: "postgres://postgres@pg.local:6543/test"}`+"\n"))
	write(t, dir, "c.yml", comp("payments-store", "state.mysql",
		`    - {name: connectionString, value: "root:secret@tcp(my.local:3307)/"}`+"\n"))
	write(t, dir, "d.yaml", comp("pubsub", "pubsub.rabbitmq",
		`    - {name: connectionString, value: "amqp://guest:guest@mq.local"}`+"\n"))
	write(t, dir, "e.yaml", comp("events", "pubsub.mqtt3", `    - {name: url, value: "tcp://broker.local:1884"}`+"\n"))
	write(t, dir, "f.yaml", comp("stream", "pubsub.kafka", `    - {name: brokers, value: "k1:9092, k2"}`+"\n"))
	// A value from a secret store cannot be known here: no server, no error.
	write(t, dir, "g.yaml", comp("secret-store", "state.postgresql",
		"    - name: connectionString\n      secretKeyRef: {name: pg, key: conn}\n"))
	write(t, dir, "h.yaml", comp("memory", "state.in-memory", ""))

	servers, err := Servers(dir)
	require.NoError(t, err)
	assert.Equal(t, []Server{
		{Kind: "kafka", Addr: "k1:9092", Used: "stream"},
		{Kind: "kafka", Addr: "k2:9092", Used: "stream"},
		{Kind: "mqtt", Addr: "broker.local:1884", Used: "events"},
		{Kind: "mysql", Addr: "my.local:3307", Used: "payments-store"},
		{Kind: "postgres", Addr: "pg.local:6543", Used: "orders-store, catalog-store"},
		{Kind: "rabbitmq", Addr: "mq.local:5672", Used: "pubsub"},
	}, servers)
}

func TestServersRejectsWhatDaprdCouldNotUse(t *testing.T) {
	tests := map[string]string{
		"mysql without /":   "{type: state.mysql, metadata: [{name: connectionString, value: \"root@tcp(db:3306)\"}]}",
		"amqp over http":    "{type: pubsub.rabbitmq, metadata: [{name: connectionString, value: \"http://mq:5672\"}]}",
		"mqtt without host": "{type: pubsub.mqtt3, metadata: [{name: url, value: \"broker:1883\"}]}",
		"postgres quote":    "{type: state.postgresql, metadata: [{name: connectionString, value: \"host='db\"}]}",
	}
	for name, spec := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "c.yaml", "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: broken}\nspec: "+spec+"\n")
			_, err := Servers(dir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "component broken")
		})
	}
}

// TestServersOfTheComponentSets reads the sets in components/, so that a set
// that names a server the runner cannot find fails here and not as seven
// sidecars that time out.
func TestServersOfTheComponentSets(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	components := filepath.Join(filepath.Dir(file), "..", "..", "components")
	stores := "catalog-store, inventory-store, notifications-store, orders-store, payments-store"
	tests := map[string][]Server{
		".": {
			{Kind: "redis", Addr: "localhost:6379", Used: "pubsub, " + stores},
		},
		"postgres-rabbitmq": {
			{Kind: "postgres", Addr: "127.0.0.1:5432", Used: stores},
			{Kind: "rabbitmq", Addr: "127.0.0.1:5672", Used: "pubsub"},
		},
		"mariadb-mqtt": {
			{Kind: "mqtt", Addr: "127.0.0.1:1883", Used: "pubsub"},
			{Kind: "mysql", Addr: "127.0.0.1:3306", Used: stores},
		},
	}
	for set, want := range tests {
		t.Run(set, func(t *testing.T) {
			servers, err := Servers(filepath.Join(components, set))
			require.NoError(t, err)
			assert.Equal(t, want, servers)
		})
	}
}

func TestPostgresAddr(t *testing.T) {
	tests := []struct{ conn, want string }{
		{"host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=10", "127.0.0.1:5432"},
		{"host=db.example user=postgres", "db.example:5432"},
		{"user=postgres dbname=test", "localhost:5432"},
		{"host='my db' port = 6000", "my db:6000"},
		{`host=db password='a \' b' port=7000`, "db:7000"},
		{"hostaddr=10.0.0.5 port=5433", "10.0.0.5:5433"},
		{"host=a,b port=5001,5002", "a:5001"},
		{"host=/var/run/postgresql dbname=test", ""},
		{"postgres://postgres:secret@db:5433/test?sslmode=disable", "db:5433"},
		{"postgresql://db/test", "db:5432"},
		{"postgresql://[::1]:5434/test", "[::1]:5434"},
		{"postgres:///test?host=/tmp", ""},
		{"postgres://h1:5001,h2:5002/test", "h1:5001"},
	}
	for _, tt := range tests {
		t.Run(tt.conn, func(t *testing.T) {
			got, err := postgresAddr(tt.conn)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := postgresAddr("host=db port")
	assert.Error(t, err)
}

func TestMySQLAddr(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"root@tcp(127.0.0.1:3306)/", "127.0.0.1:3306"},
		{"root:@tcp(localhost)/?allowNativePasswords=true", "localhost:3306"},
		{"user:p@ss/w@rd@tcp(db:3307)/shop?parseTime=true", "db:3307"},
		{"user:pw@tcp([::1]:3308)/", "[::1]:3308"},
		{"/", "127.0.0.1:3306"},
		{"root@/shop", "127.0.0.1:3306"},
		{"root@unix(/run/mysqld/mysqld.sock)/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			got, err := mysqlAddr(tt.dsn)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{"root:secret@tcp(db:3306)", "root@tcp(db/", "root@pipe(x)/"} {
		_, err := mysqlAddr(bad)
		assert.Error(t, err, bad)
		assert.NotContains(t, errString(err), "secret", "the password stays out of the message")
	}
}

func TestRabbitMQAddr(t *testing.T) {
	tests := []struct {
		name string
		meta map[string]string
		want string
	}{
		{"connection string", map[string]string{"connectionString": "amqp://guest:guest@127.0.0.1:5672"}, "127.0.0.1:5672"},
		{"default amqp port", map[string]string{"connectionString": "amqp://mq/vhost"}, "mq:5672"},
		{"default amqps port", map[string]string{"connectionString": "amqps://mq"}, "mq:5671"},
		{"deprecated host", map[string]string{"host": "amqp://old:5673"}, "old:5673"},
		{"hostname", map[string]string{"hostname": "mq", "protocol": "amqps"}, "mq:5671"},
		{"hostname with port", map[string]string{"hostname": "mq:5680"}, "mq:5680"},
		{"nothing", map[string]string{}, "localhost:5672"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rabbitMQAddr(tt.meta)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := rabbitMQAddr(map[string]string{"connectionString": "http://user:secret@mq"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret")
}

func TestMQTTAddr(t *testing.T) {
	tests := []struct{ url, want string }{
		{"tcp://127.0.0.1:1883", "127.0.0.1:1883"},
		{"mqtt://broker", "broker:1883"},
		{"tcp://user:pw@broker:1884", "broker:1884"},
		{"ssl://broker", "broker:8883"},
		{"mqtts://broker:8884", "broker:8884"},
		{"ws://broker", "broker:80"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := mqttAddr(tt.url)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{"broker:1883", "http://broker", "tcp://"} {
		_, err := mqttAddr(bad)
		assert.Error(t, err, bad)
	}
}

func TestEnsureServersNamesWhatIsMissing(t *testing.T) {
	err := EnsureServers([]Server{{Kind: "postgres", Addr: "127.0.0.1:1", Used: "orders-store"}}, t.Logf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "postgres is not reachable at 127.0.0.1:1 (used by orders-store): start it")
}

func TestEnsureServersNamesEveryMissingServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = EnsureServers([]Server{
		{Kind: "postgres", Addr: "127.0.0.1:1", Used: "catalog-store, orders-store"},
		{Kind: "mqtt", Addr: ln.Addr().String(), Used: "pubsub"},
		{Kind: "rabbitmq", Addr: "127.0.0.1:2", Used: "pubsub"},
		// Not on this machine: the runner does not start it, it says so.
		{Kind: "redis", Addr: "192.0.2.1:6379", Used: "cache"},
	}, t.Logf)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "postgres is not reachable at 127.0.0.1:1 (used by catalog-store, orders-store): start it")
	assert.Contains(t, msg, "rabbitmq is not reachable at 127.0.0.1:2 (used by pubsub): start it")
	assert.Contains(t, msg, "redis is not reachable at 192.0.2.1:6379 (used by cache): run `dapr init`")
	assert.NotContains(t, msg, "mqtt", "the broker that answers is not named")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
