package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// The apps of which Kubernetes runs several instances behind an autoscaler:
// they hold no state of their own (catalog's is in its store) and consume no
// events, so more instances only mean more capacity.
var autoscaled = []string{"catalog", "gateway", "hello"}

// TestOverlays renders every overlay and validates all of it, then checks what
// makes each overlay what it is.
func TestOverlays(t *testing.T) {
	tests := []struct {
		overlay string
		check   func(t *testing.T, s *Set)
	}{
		{"local", func(t *testing.T, s *Set) {
			for id, d := range s.Apps() {
				require.NotNil(t, d.Spec.Replicas, id)
				assert.EqualValues(t, 1, *d.Spec.Replicas, "%s: one replica locally", id)
				c, ok := AppContainer(d)
				require.True(t, ok, id)
				assert.Equal(t, "daprshop/"+id+":dev", c.Image, "%s: the image `make images` builds", id)
				assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy, "%s: a local image is never pulled", id)
			}
			assert.Empty(t, s.HPAs, "no autoscaling locally")
			// The local overlay carries the example Secret, and its key is what
			// the components ask for (componentRules checks the reference).
			require.Contains(t, s.Secrets, "redis")
		}},
		{"production", func(t *testing.T, s *Set) {
			assert.Equal(t, autoscaled, keys(s.HPAs), "autoscaled apps")
			for id, d := range s.Apps() {
				c, ok := AppContainer(d)
				require.True(t, ok, id)
				assert.NotContains(t, c.Image, ":dev", "%s: production runs released images", id)
				if h, ok := s.HPAs[d.Name]; ok {
					require.NotNil(t, h.Spec.MinReplicas, id)
					assert.GreaterOrEqual(t, *h.Spec.MinReplicas, int32(2), "%s: two instances at least", id)
				} else {
					require.NotNil(t, d.Spec.Replicas, "%s: replicas, or an autoscaler", id)
					assert.GreaterOrEqual(t, *d.Spec.Replicas, int32(2), "%s: two instances at least", id)
				}
				pdb, ok := s.PDBs[d.Name]
				if assert.True(t, ok, "%s: a PodDisruptionBudget", id) {
					assert.Equal(t, d.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels, id)
				}
			}
			// The real Secret is created in the cluster, never rendered from the
			// repository.
			assert.Empty(t, s.Secrets, "production renders no Secret")
			assert.Equal(t, "restricted", s.Namespaces["daprshop"].Labels["pod-security.kubernetes.io/enforce"])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.overlay, func(t *testing.T) {
			s := checkOverlay(t, tt.overlay)
			require.NotEmpty(t, s.Apps())
			tt.check(t, s)
		})
	}
}

// TestTyposFail breaks a copy of deploy/ in one place at a time and checks that
// validation names the problem: a misspelt field is the mistake that kubectl
// apply with a lenient client, or a CRD that prunes unknown fields, would let
// through without a word.
func TestTyposFail(t *testing.T) {
	type edit struct{ file, old, new string }
	tests := []struct {
		name    string
		overlay string
		edits   []edit
		create  map[string]string
		want    []string // each must appear in the error; none means no error
	}{
		{
			name:    "unchanged copy passes",
			overlay: "local",
		},
		{
			name:    "replica instead of replicas",
			overlay: "local",
			edits:   []edit{{"base/apps/orders.yaml", "\n  replicas: 1\n", "\n  replica: 1\n"}},
			want:    []string{`Deployment/orders: unknown field "spec.replica"`},
		},
		{
			name:    "field name in the wrong case",
			overlay: "local",
			edits:   []edit{{"base/apps/orders.yaml", "containerPort: 8082", "containerport: 8082"}},
			want:    []string{`Deployment/orders: unknown field "spec.template.spec.containers[0].ports[0].containerport"`},
		},
		{
			name:    "misspelt Resiliency field",
			overlay: "production",
			edits:   []edit{{"base/dapr/resiliency.yaml", "maxRetries: 20", "maxRetry: 20"}},
			want:    []string{`Resiliency/daprshop: unknown field "spec.policies.retries.deliver.maxRetry"`},
		},
		{
			name:    "misspelt Component field",
			overlay: "local",
			edits:   []edit{{"base/dapr/components/state-catalog.yaml", "\nscopes:\n", "\nscope:\n"}},
			want:    []string{`Component/catalog-store: unknown field "scope"`},
		},
		{
			name:    "Configuration field in the wrong case",
			overlay: "local",
			edits:   []edit{{"base/dapr/configurations/hello.yaml", "    defaultAction: deny\n", "    defaultaction: deny\n"}},
			want:    []string{`Configuration/daprshop-hello: unknown field "spec.accessControl.defaultaction"`},
		},
		{
			name:    "string where the CRD wants an integer",
			overlay: "local",
			edits:   []edit{{"base/dapr/resiliency.yaml", "maxRetries: 20", `maxRetries: "20"`}},
			want:    []string{"Resiliency/daprshop: spec.policies.retries.deliver.maxRetries: Invalid value", "integer"},
		},
		{
			name:    "required Component field missing",
			overlay: "local",
			edits:   []edit{{"base/dapr/components/pubsub.yaml", "  version: v1\n", ""}},
			want:    []string{"Component/pubsub: spec.version: Required value"},
		},
		{
			name:    "unknown Dapr kind",
			overlay: "local",
			edits:   []edit{{"base/dapr/resiliency.yaml", "kind: Resiliency\nmetadata:\n  # The same", "kind: Resilience\nmetadata:\n  # The same"}},
			want:    []string{"Resilience/daprshop: no CRD schema for dapr.io/v1alpha1 Resilience"},
		},
		{
			name:    "unknown Kubernetes kind",
			overlay: "local",
			edits:   []edit{{"base/kustomization.yaml", "  - dapr/resiliency.yaml\n", "  - dapr/resiliency.yaml\n  - extra.yaml\n"}},
			create: map[string]string{"base/extra.yaml": "apiVersion: apps/v1\nkind: Deploymnet\nmetadata:\n  name: extra\n" +
				"spec:\n  template:\n    spec:\n      containers: []\n"},
			want: []string{"Deploymnet/extra: no schema for apps/v1 Deploymnet"},
		},
		{
			name:    "declarative subscription that refers to nothing",
			overlay: "local",
			edits:   []edit{{"base/kustomization.yaml", "  - dapr/resiliency.yaml\n", "  - dapr/resiliency.yaml\n  - sub.yaml\n"}},
			create: map[string]string{"base/sub.yaml": "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: placed\n" +
				"spec:\n  pubsubname: pubsb\n  topic: orders\n  routes:\n    default: /events\nscopes: [inventry]\n"},
			want: []string{
				`Subscription/placed: pubsubname "pubsb" is no Component of this overlay`,
				"Subscription/placed: no deadLetterTopic",
				`Subscription/placed: scope "inventry" is not the app-id of any app`,
			},
		},
		{
			name:    "password written inline",
			overlay: "local",
			edits: []edit{{"base/dapr/components/pubsub.yaml",
				"      secretKeyRef:\n        name: redis\n        key: redis-password\n", "      value: hunter2\n"}},
			want: []string{"Component/pubsub: metadata redisPassword holds a credential"},
		},
		{
			name:    "secret key that the Secret does not have",
			overlay: "local",
			edits:   []edit{{"base/dapr/components/state-orders.yaml", "key: redis-password", "key: password"}},
			want:    []string{`Component/orders-store: metadata redisPassword: Secret/redis has no key "password"`},
		},
		{
			name:    "writable root filesystem",
			overlay: "production",
			edits:   []edit{{"base/patches/app-pod.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"}},
			want:    []string{"Deployment/gateway: container app: readOnlyRootFilesystem is not true"},
		},
		{
			name:    "probe off the health path",
			overlay: "local",
			edits:   []edit{{"base/patches/app-pod.yaml", "              path: /healthz\n              port: http\n            periodSeconds: 5\n", "              path: /health\n              port: http\n            periodSeconds: 5\n"}},
			want:    []string{`Deployment/catalog: container app: readiness probe gets "/health", not the dapr.io/app-health-check-path "/healthz"`},
		},
		{
			name:    "GOMAXPROCS from the request rather than the limit",
			overlay: "production",
			edits:   []edit{{"base/patches/app-pod.yaml", "resource: limits.cpu", "resource: requests.cpu"}},
			want:    []string{"Deployment/orders: container app: GOMAXPROCS is not set from its limits.cpu"},
		},
		{
			name:    "app on loopback, out of the probes' reach",
			overlay: "local",
			edits:   []edit{{"base/apps/orders.yaml", "            - name: LOG_LEVEL\n", "            - name: APP_LISTEN_HOST\n              value: 127.0.0.1\n            - name: LOG_LEVEL\n"}},
			want:    []string{"Deployment/orders: container app: APP_LISTEN_HOST is 127.0.0.1, which the kubelet's probes cannot reach"},
		},
		{
			name:    "sidecar annotation missing",
			overlay: "local",
			edits:   []edit{{"base/patches/app-pod.yaml", "        dapr.io/sidecar-memory-limit: 256Mi\n", ""}},
			want:    []string{"Deployment/hello: pod template has no dapr.io/sidecar-memory-limit annotation"},
		},
		{
			name:    "config annotation naming no Configuration",
			overlay: "local",
			edits:   []edit{{"base/apps/gateway.yaml", "dapr.io/config: daprshop-gateway", "dapr.io/config: daprshop-gw"}},
			want:    []string{`Deployment/gateway: dapr.io/config names Configuration "daprshop-gw"`},
		},
		{
			name:    "access-control policy for another namespace",
			overlay: "local",
			edits:   []edit{{"base/dapr/configurations/catalog.yaml", "namespace: daprshop", "namespace: default"}},
			want:    []string{`Configuration/daprshop-catalog: accessControl.policies[0] (gateway): namespace "default" is not the namespace "daprshop"`},
		},
		{
			name:    "resiliency target naming no policy",
			overlay: "local",
			edits:   []edit{{"base/dapr/resiliency.yaml", "retry: deliver", "retry: delivr"}},
			want:    []string{`Resiliency/daprshop: targets.components.pubsub.inbound: retry "delivr" is not defined`},
		},
		{
			name:    "autoscaled Deployment that still sets replicas",
			overlay: "production",
			edits:   []edit{{"overlays/production/kustomization.yaml", "name: gateway|hello|catalog", "name: gateway|hello"}},
			want:    []string{"HorizontalPodAutoscaler/catalog: Deployment/catalog sets replicas"},
		},
		{
			name:    "quantity that does not parse",
			overlay: "local",
			edits:   []edit{{"base/patches/app-pod.yaml", "memory: 64Mi", "memory: 64MB"}},
			want:    []string{"Deployment/gateway: quantities must match the regular expression"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDeploy(t)
			for _, e := range tt.edits {
				p := filepath.Join(dir, e.file)
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				require.Contains(t, string(b), e.old, "the edit must apply to %s", e.file)
				require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(b), e.old, e.new, 1)), 0o644))
			}
			for f, content := range tt.create {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644))
			}
			_, err := Check(filepath.Join(dir, "overlays", tt.overlay), daprSchemas(t))
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			t.Logf("validation said:\n%v", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestAccessControl holds the service-invocation policy to the shop's design:
// the gateway may invoke every app it forwards to, orders may read the
// catalog's prices and ask each consumer what it recorded of the orders its
// reconciler checks (services/orders/reconcile.go, lookup), and nothing else
// may invoke anything.
func TestAccessControl(t *testing.T) {
	want := map[string]map[string]string{
		"gateway":       {},
		"hello":         {"gateway": "allow"},
		"catalog":       {"gateway": "allow", "orders": "deny, but allow GET /products"},
		"orders":        {"gateway": "allow"},
		"inventory":     {"gateway": "allow", "orders": "deny, but allow GET /reservations"},
		"payments":      {"gateway": "allow", "orders": "deny, but allow GET /charges"},
		"notifications": {"gateway": "allow", "orders": "deny, but allow GET /notified"},
	}
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			s := checkOverlay(t, overlay)
			got := map[string]map[string]string{}
			for callee, d := range s.Apps() {
				cfg := s.Configurations[d.Spec.Template.Annotations[annConfig]]
				require.NotNil(t, cfg, callee)
				ac := cfg.Spec.AccessControl
				require.NotNil(t, ac, "%s: an access-control list", callee)
				assert.Equal(t, "deny", ac.DefaultAction, "%s: an app not listed is denied", callee)
				assert.Equal(t, "public", ac.TrustDomain, callee)
				got[callee] = map[string]string{}
				for _, p := range ac.Policies {
					assert.Equal(t, "public", p.TrustDomain, "%s <- %s", callee, p.AppID)
					rule := p.DefaultAction
					var ops []string
					for _, op := range p.Operations {
						ops = append(ops, fmt.Sprintf("%s %s %s", op.Action, strings.Join(op.HTTPVerb, ","), op.Name))
					}
					if len(ops) > 0 {
						sort.Strings(ops)
						rule += ", but " + strings.Join(ops, "; ")
					}
					got[callee][p.AppID] = rule
				}
			}
			assert.Equal(t, want, got)

			// The gateway forwards to exactly the apps that let it in.
			gw, ok := AppContainer(s.Apps()["gateway"])
			require.True(t, ok)
			forwards, _ := EnvValue(gw, "GATEWAY_APPS")
			var admitted []string
			for callee, callers := range got {
				if callers["gateway"] == "allow" {
					admitted = append(admitted, callee)
				}
			}
			listed := strings.Split(forwards, ",")
			sort.Strings(listed)
			sort.Strings(admitted)
			assert.Equal(t, admitted, listed, "GATEWAY_APPS and the apps that admit the gateway")
		})
	}
}

// TestResiliencyRetriesOnlyReads encodes the decision in base/dapr/resiliency.yaml:
// a service-invocation retry repeats a call whatever its method, so the only
// invocation with a retry is orders pricing an order at the catalog (a GET),
// and nothing at all targets the gateway's calls.
func TestResiliencyRetriesOnlyReads(t *testing.T) {
	s := checkOverlay(t, "production")
	retried := map[string]bool{}
	for name, r := range s.Resiliencies {
		for app, p := range r.Spec.Targets.Apps {
			appliesToGateway := len(r.Scopes) == 0
			for _, sc := range r.Scopes {
				appliesToGateway = appliesToGateway || sc == "gateway"
			}
			assert.False(t, appliesToGateway, "Resiliency/%s targets app %s for the gateway, whose calls may not be repeated", name, app)
			if p.Retry != "" {
				retried[strings.Join(r.Scopes, ",")+" -> "+app] = true
			}
		}
	}
	assert.Equal(t, map[string]bool{"orders -> catalog": true}, retried)
}
