package validate

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// TestAppsMatchDaprYAML holds every overlay to dapr.yaml, the one description
// of the system: the same apps, app-ids, ports, health checks, protocol, log
// level and environment.
func TestAppsMatchDaprYAML(t *testing.T) {
	apps := readDaprYAML(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			s := checkOverlay(t, overlay)
			deployed := s.Apps()
			var want []string
			for _, a := range apps {
				want = append(want, a.AppID)
				d, ok := deployed[a.AppID]
				if !assert.True(t, ok, "app %s of dapr.yaml has no Deployment with dapr.io/app-id %s", a.AppID, a.AppID) {
					continue
				}
				ann := d.Spec.Template.Annotations
				assert.Equal(t, strconv.Itoa(a.AppPort), ann[annAppPort], "%s: app-port", a.AppID)
				assert.Equal(t, a.HealthPath, ann[annHealthCheckPath], "%s: health path", a.AppID)
				assert.Equal(t, strconv.FormatBool(a.HealthCheck), ann[annHealthCheck], "%s: app health check", a.AppID)
				assert.Equal(t, a.AppProtocol, ann["dapr.io/app-protocol"], "%s: app protocol", a.AppID)
				if a.LogLevel != "" {
					assert.Equal(t, a.LogLevel, ann["dapr.io/log-level"], "%s: sidecar log level", a.AppID)
				}
				c, ok := AppContainer(d)
				require.True(t, ok, a.AppID)
				for k, v := range a.Env {
					if k == "GOMAXPROCS" && maxProcsFromCPULimit(c) {
						// Kubernetes rounds the limit up to whole cores.
						limit := c.Resources.Limits[corev1.ResourceCPU]
						cores := (limit.MilliValue() + 999) / 1000
						assert.Equal(t, v, strconv.FormatInt(cores, 10), "%s: GOMAXPROCS from limits.cpu %s", a.AppID, limit.String())
						continue
					}
					if k == "APP_LISTEN_HOST" {
						// Loopback locally; in a pod the kubelet's probes come
						// from the node, and daprAppRules refuses a loopback one.
						continue
					}
					got, literal := EnvValue(c, k)
					assert.True(t, literal, "%s: env %s is not set", a.AppID, k)
					assert.Equal(t, v, got, "%s: env %s", a.AppID, k)
				}
				// The folder of the app is what `make images` builds with
				// SERVICE=<app-id>, so the image named after the app-id holds it.
				assert.Equal(t, "./services/"+a.AppID, a.AppDirPath, "%s: SERVICE=%s builds ./services/%s", a.AppID, a.AppID, a.AppID)
			}
			sort.Strings(want)
			assert.Equal(t, want, keys(deployed), "the Dapr apps of the overlay are the apps of dapr.yaml")
		})
	}
}

// connectionMetadata are the component metadata that say where the backing
// service is and how to log in; they differ between a laptop and a cluster by
// design. Every other metadata item must be the same on both.
var connectionMetadata = map[string]bool{
	"redisHost": true, "redisPassword": true, "redisUsername": true, "enableTLS": true,
}

// TestComponentsMatchLocal holds the Kubernetes Dapr resources to the ones in
// components/: every component there has a twin with the same name, type,
// version, scopes and behaviour, with the credentials taken from a Secret; and
// the resiliency keeps the same delivery retries.
func TestComponentsMatchLocal(t *testing.T) {
	local := readLocalComponents(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			s := checkOverlay(t, overlay)
			localNames := map[string]bool{}
			for _, lr := range local {
				switch lr.Obj.Kind {
				case "Component":
					localNames[lr.Obj.Name] = true
					var want Component
					require.NoError(t, json.Unmarshal(lr.Obj.JSON, &want), lr.File)
					got, ok := s.Components[lr.Obj.Name]
					if !assert.True(t, ok, "%s: component %s has no Kubernetes twin", lr.File, lr.Obj.Name) {
						continue
					}
					assert.Equal(t, want.Spec.Type, got.Spec.Type, "%s: type", lr.Obj.Name)
					assert.Equal(t, want.Spec.Version, got.Spec.Version, "%s: version", lr.Obj.Name)
					assert.ElementsMatch(t, want.Scopes, got.Scopes, "%s: scopes", lr.Obj.Name)
					assert.Equal(t, behaviour(want), behaviour(*got), "%s: metadata other than the connection", lr.Obj.Name)
					for _, m := range got.Spec.Metadata {
						if strings.Contains(strings.ToLower(m.Name), "password") {
							assert.NotNil(t, m.SecretKeyRef, "%s: %s comes from a Secret", lr.Obj.Name, m.Name)
						}
					}
				case "Resiliency":
					var want Resiliency
					require.NoError(t, json.Unmarshal(lr.Obj.JSON, &want), lr.File)
					got, ok := s.Resiliencies[lr.Obj.Name]
					if !assert.True(t, ok, "%s: resiliency %s has no Kubernetes twin", lr.File, lr.Obj.Name) {
						continue
					}
					for comp, wt := range want.Spec.Targets.Components {
						gt, ok := got.Spec.Targets.Components[comp]
						if !assert.True(t, ok, "resiliency target %s", comp) || wt.Inbound == nil {
							continue
						}
						require.NotNil(t, gt.Inbound, "%s: inbound policies", comp)
						assert.Equal(t, want.Spec.Policies.Retries[wt.Inbound.Retry], got.Spec.Policies.Retries[gt.Inbound.Retry],
							"%s: the inbound retry policy (fields Dapr %s knows)", comp, DaprVersion)
					}
				}
			}
			for name := range s.Components {
				assert.True(t, localNames[name], "Kubernetes component %s has no twin in components/", name)
			}
		})
	}
}

// behaviour returns a component's metadata that is not about the connection.
func behaviour(c Component) map[string]any {
	m := map[string]any{}
	for _, item := range c.Spec.Metadata {
		if !connectionMetadata[item.Name] {
			m[item.Name] = item.Value
		}
	}
	return m
}

// knownLocalDrift lists what the CRD schemas of DaprVersion report about
// components/ today, by file. daprd in self-hosted mode decodes these files
// leniently, so such a field is silently ignored there; on Kubernetes strict
// field validation refuses it. An entry here is a known issue to fix in
// components/, and this test fails once it is fixed so that the entry goes.
var knownLocalDrift = map[string][]string{}

// TestLocalComponentsAgainstCRDs validates components/ against the same CRD
// schemas, so that a field Dapr does not know is found here rather than
// silently ignored by a sidecar.
func TestLocalComponentsAgainstCRDs(t *testing.T) {
	byFile := map[string][]string{}
	for _, lr := range readLocalComponents(t) {
		for _, err := range daprSchemas(t).Validate(lr.Obj) {
			byFile[lr.File] = append(byFile[lr.File], err.Error())
		}
	}
	assert.Equal(t, knownLocalDrift, byFile,
		"components/ against the CRDs of Dapr %s: fix a new problem in components/, or drop a fixed one from knownLocalDrift", DaprVersion)
}

// TestCRDsMatchPinnedDapr keeps the CRDs in crds/ those of the Dapr the shop
// runs: the version the Makefile builds daprd from and the root module
// requires, and, where the module cache has that release, its exact files.
func TestCRDsMatchPinnedDapr(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^DAPR_VERSION\s*:=\s*(\S+)`).FindSubmatch(mk)
	require.NotNil(t, m, "the Makefile sets DAPR_VERSION")
	assert.Equal(t, DaprVersion, string(m[1]), "Makefile DAPR_VERSION")

	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	require.NoError(t, err)
	m = regexp.MustCompile(`(?m)^\s*github.com/dapr/dapr\s+v(\S+)`).FindSubmatch(gomod)
	require.NotNil(t, m, "the root go.mod requires github.com/dapr/dapr")
	assert.Equal(t, DaprVersion, string(m[1]), "root go.mod github.com/dapr/dapr")

	// Only a look in the module cache: nothing is downloaded for this.
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	require.NoError(t, err)
	src := filepath.Join(strings.TrimSpace(string(out)), "github.com", "dapr", "dapr@v"+DaprVersion, "charts", "dapr", "crds")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Logf("dapr %s is not in the module cache (%v); compared versions only", DaprVersion, err)
		return
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		want, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		got, err := crdFiles.ReadFile("crds/" + e.Name())
		if assert.NoError(t, err, "crds/%s is missing", e.Name()) {
			assert.True(t, bytes.Equal(want, got), "crds/%s differs from dapr %s", e.Name(), DaprVersion)
		}
	}
	embedded, err := crdFiles.ReadDir("crds")
	require.NoError(t, err)
	assert.Len(t, embedded, len(names), "crds/ holds exactly the CRDs of dapr %s: %v", DaprVersion, names)
}
