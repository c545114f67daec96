package validate

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository, seen from this package's folder, where go test
// runs its tests.
const repoRoot = "../.."

// overlays are the kustomize overlays under deploy/overlays, each rendered and
// validated by the tests.
var overlays = []string{"local", "production"}

var (
	schemasOnce sync.Once
	schemas     *Schemas
	schemasErr  error
)

// daprSchemas loads the embedded CRDs once for all tests.
func daprSchemas(t *testing.T) *Schemas {
	t.Helper()
	schemasOnce.Do(func() { schemas, schemasErr = LoadDaprSchemas() })
	require.NoError(t, schemasErr)
	return schemas
}

// checkOverlay renders and validates deploy/overlays/<name> and fails the test
// on any problem, listing them all.
func checkOverlay(t *testing.T, name string) *Set {
	t.Helper()
	set, err := Check(filepath.Join(repoRoot, "deploy", "overlays", name), daprSchemas(t))
	require.NoError(t, err, "overlay %s", name)
	return set
}

// runTemplate is the part of dapr.yaml (the Dapr CLI's multi-app run template)
// that a Kubernetes deployment has to agree with.
type runTemplate struct {
	Common struct {
		ResourcesPath string `json:"resourcesPath"`
		appSettings
	} `json:"common"`
	Apps []struct {
		AppID      string `json:"appID"`
		AppDirPath string `json:"appDirPath"`
		AppPort    int    `json:"appPort"`
		appSettings
	} `json:"apps"`
}

// appSettings may be set in common and overridden per app.
type appSettings struct {
	AppProtocol          string            `json:"appProtocol"`
	AppHealthCheckPath   string            `json:"appHealthCheckPath"`
	EnableAppHealthCheck *bool             `json:"enableAppHealthCheck"`
	LogLevel             string            `json:"logLevel"`
	Env                  map[string]string `json:"env"`
}

// runApp is one app of dapr.yaml with common settings applied.
type runApp struct {
	AppID, AppDirPath       string
	AppPort                 int
	AppProtocol, HealthPath string
	HealthCheck             bool
	LogLevel                string
	Env                     map[string]string
}

func readDaprYAML(t *testing.T) []runApp {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "dapr.yaml"))
	require.NoError(t, err)
	var rt runTemplate
	require.NoError(t, yaml.Unmarshal(b, &rt))
	require.NotEmpty(t, rt.Apps, "dapr.yaml lists no apps")
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	var apps []runApp
	for _, a := range rt.Apps {
		env := map[string]string{}
		for k, v := range rt.Common.Env {
			env[k] = v
		}
		for k, v := range a.Env {
			env[k] = v
		}
		health := rt.Common.EnableAppHealthCheck
		if a.EnableAppHealthCheck != nil {
			health = a.EnableAppHealthCheck
		}
		apps = append(apps, runApp{
			AppID:       a.AppID,
			AppDirPath:  a.AppDirPath,
			AppPort:     a.AppPort,
			AppProtocol: or(a.AppProtocol, or(rt.Common.AppProtocol, "http")),
			HealthPath:  or(a.AppHealthCheckPath, rt.Common.AppHealthCheckPath),
			HealthCheck: health != nil && *health,
			LogLevel:    or(a.LogLevel, rt.Common.LogLevel),
			Env:         env,
		})
	}
	return apps
}

// localResource is one object of the components/ folder, the set that
// `make run` and `dapr run -f .` load.
type localResource struct {
	File string
	Obj  Object
}

// readLocalComponents reads every YAML file directly in components/ (the
// default set; the folders beside it are other sets).
func readLocalComponents(t *testing.T) []localResource {
	t.Helper()
	dir := filepath.Join(repoRoot, "components")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []localResource
	for _, e := range entries {
		if e.IsDir() || (!strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		for _, doc := range strings.Split(string(b), "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			j, err := yaml.YAMLToJSON([]byte(doc))
			require.NoError(t, err, e.Name())
			var id struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			require.NoError(t, yaml.Unmarshal(j, &id), e.Name())
			if id.Kind == "" {
				continue
			}
			out = append(out, localResource{File: e.Name(), Obj: Object{
				APIVersion: id.APIVersion, Kind: id.Kind, Name: id.Metadata.Name, JSON: j,
			}})
		}
	}
	require.NotEmpty(t, out, "components/ holds no resources")
	return out
}

// copyDeploy copies deploy/base and deploy/overlays into a new folder and
// returns the copy's deploy folder, for tests that break a manifest on purpose.
func copyDeploy(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "deploy")
	for _, sub := range []string{"base", "overlays"} {
		src := filepath.Join(repoRoot, "deploy", sub)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			target := filepath.Join(dst, sub, rel)
			if d.IsDir() {
				return os.MkdirAll(target, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		})
		require.NoError(t, err)
	}
	return dst
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
