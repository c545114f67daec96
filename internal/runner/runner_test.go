package runner

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadTemplateResolvesCommonSettings(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "dapr.yaml", `version: 1
common:
  resourcesPath: ./components
  appHealthCheckPath: /healthz
  appHealthProbeInterval: 1
  appHealthThreshold: 2
  env:
    A: common
    B: common
apps:
  - appID: one
    appDirPath: ./one
    appPort: 8001
    command: ["go", "run", "."]
    env:
      B: own
  - appID: two
    appDirPath: ./two
    resourcesPath: ./other
    appHealthCheckPath: /ready
    appHealthProbeTimeout: 2000
    appHealthThreshold: 5
    command: ["./two", "--flag"]
`)
	tmpl, err := LoadTemplate(p)
	require.NoError(t, err)
	apps, err := tmpl.resolve()
	require.NoError(t, err)
	require.Len(t, apps, 2)

	assert.Equal(t, filepath.Join(dir, "one"), apps[0].AppDirPath)
	assert.Equal(t, []string{filepath.Join(dir, "components")}, apps[0].resources)
	assert.Equal(t, "/healthz", apps[0].AppHealthCheckPath)
	assert.Equal(t, map[string]string{"A": "common", "B": "own"}, apps[0].Env)
	assert.Equal(t, "http", apps[0].AppProtocol)
	assert.True(t, isGoRun(apps[0].Command))

	assert.Equal(t, []string{filepath.Join(dir, "other")}, apps[1].resources)
	assert.Equal(t, "/ready", apps[1].AppHealthCheckPath)
	assert.False(t, isGoRun(apps[1].Command))

	assert.Equal(t, []int{1, 0, 2}, []int{apps[0].AppHealthProbeInterval, apps[0].AppHealthProbeTimeout, apps[0].AppHealthThreshold},
		"the common probe settings; 0 leaves Dapr's default")
	assert.Equal(t, []int{1, 2000, 5}, []int{apps[1].AppHealthProbeInterval, apps[1].AppHealthProbeTimeout, apps[1].AppHealthThreshold},
		"an app's own probe settings win")
}

func TestLoadTemplateRejects(t *testing.T) {
	tests := map[string]string{
		"wrong version": "version: 2\napps:\n  - appID: a\n    appDirPath: .\n    command: [x]\n",
		"no apps":       "version: 1\n",
		"no command":    "version: 1\napps:\n  - appID: a\n    appDirPath: .\n",
		"app-id twice":  "version: 1\napps:\n  - {appID: a, appDirPath: ., command: [x]}\n  - {appID: a, appDirPath: ., command: [x]}\n",
		"not yaml":      "version: [1\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadTemplate(write(t, t.TempDir(), "dapr.yaml", body))
			assert.Error(t, err)
		})
	}
}

func TestFreePortsAreDistinctAndKeepGivenOnes(t *testing.T) {
	ports, err := freePorts([]int{8123, 0, 0, 0}, map[int]bool{})
	require.NoError(t, err)
	assert.Equal(t, 8123, ports[0])
	seen := map[int]bool{}
	for _, p := range ports[1:] {
		assert.False(t, seen[p], "port %d twice", p)
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "port %d is free", p)
		l.Close()
	}
}

func TestTailKeepsLastLines(t *testing.T) {
	tb := &tailBuf{max: 3}
	for _, s := range []string{"a\nb", "\nc\nd\n", "e"} {
		_, _ = tb.Write([]byte(s))
	}
	assert.Equal(t, "b\nc\nd", tb.tail(10))
	assert.Equal(t, "d", tb.tail(1))
}

func TestPrefixWriterKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	w := &prefixWriter{prefix: "== app == ", out: &out}
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\n"))
	assert.Equal(t, "== app == one\n== app == two\n", out.String())
}

func TestSystemConfigAddsTheSystemsNameResolution(t *testing.T) {
	dir := t.TempDir()
	registry := filepath.Join(dir, "names.db")
	own := write(t, dir, "config.yaml", `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: shop
spec:
  metric:
    enabled: false
`)
	mdns := write(t, dir, "mdns.yaml", `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: mdns
spec:
  nameResolution:
    component: mdns
`)

	type config struct {
		Metadata struct{ Name string }
		Spec     struct {
			Metric         map[string]any `yaml:"metric"`
			NameResolution struct {
				Component     string
				Configuration map[string]any
			} `yaml:"nameResolution"`
		}
	}
	read := func(src string) (config, bool) {
		t.Helper()
		b, ownNames, err := systemConfig(src, registry)
		require.NoError(t, err)
		var c config
		require.NoError(t, yaml.Unmarshal(b, &c))
		return c, ownNames
	}

	none, ownNames := read("")
	assert.Equal(t, "sqlite", none.Spec.NameResolution.Component)
	assert.Equal(t, registry, none.Spec.NameResolution.Configuration["connectionString"])
	assert.True(t, ownNames)

	shop, ownNames := read(own)
	assert.Equal(t, "shop", shop.Metadata.Name)
	assert.Equal(t, map[string]any{"enabled": false}, shop.Spec.Metric, "the file's own settings are kept")
	assert.Equal(t, "sqlite", shop.Spec.NameResolution.Component)
	assert.Equal(t, registry, shop.Spec.NameResolution.Configuration["connectionString"])
	assert.True(t, ownNames)

	m, ownNames := read(mdns)
	assert.Equal(t, "mdns", m.Spec.NameResolution.Component, "a configuration that names its resolver keeps it")
	assert.False(t, ownNames, "names are resolved by the configuration's resolver, not the system's registry")

	_, _, err := systemConfig(filepath.Join(dir, "missing.yaml"), registry)
	assert.ErrorContains(t, err, "configFilePath")
	bad := write(t, dir, "bad.yaml", "spec: [")
	_, _, err = systemConfig(bad, registry)
	assert.ErrorContains(t, err, "bad.yaml")
}

func TestSidecarEnvAddsWhatIsNotGiven(t *testing.T) {
	const sysmon = "GODEBUG=schedtrace=2147483647"
	assert.Equal(t, []string{"A=1", "GOGC=400", "GOMAXPROCS=1", sysmon}, sidecarEnv([]string{"A=1"}))
	assert.Equal(t, []string{"GOGC=off", "A=1", "GOMAXPROCS=1", sysmon}, sidecarEnv([]string{"GOGC=off", "A=1"}))
	assert.Equal(t, []string{"GOMAXPROCS=2", "GOGC=50", sysmon}, sidecarEnv([]string{"GOMAXPROCS=2", "GOGC=50"}))
	assert.Equal(t, []string{"GODEBUG=gctrace=1", "GOGC=400", "GOMAXPROCS=1"}, sidecarEnv([]string{"GODEBUG=gctrace=1"}),
		"a GODEBUG of the environment is left as it is")
}
