package validate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestDaprSchemas checks the CRD validation on its own, on kinds the overlays do
// not use yet (declarative Subscriptions), so that it is known to work before a
// manifest relies on it.
func TestDaprSchemas(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the errors, in order; none means valid
	}{
		{
			name: "valid v2alpha1 Subscription",
			doc: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-placed, namespace: daprshop}
spec:
  pubsubname: pubsub
  topic: orders
  routes: {default: /events/orders}
  deadLetterTopic: orders-dead
scopes: [inventory]`,
		},
		{
			name: "misspelt Subscription field",
			doc: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-placed}
spec:
  pubsubname: pubsub
  topic: orders
  routes: {default: /events/orders}
  deadLetterTopc: orders-dead`,
			want: []string{`Subscription/orders-placed: unknown field "spec.deadLetterTopc"`},
		},
		{
			name: "Subscription without its required topic",
			doc: `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-placed}
spec:
  pubsubname: pubsub
  routes: {default: /events/orders}`,
			want: []string{"spec.topic: Required value"},
		},
		{
			name: "unknown metadata field",
			doc: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub, namspace: daprshop}
spec: {type: pubsub.redis, version: v1, metadata: []}`,
			want: []string{`Component/pubsub: metadata: unknown field "namspace"`},
		},
		{
			name: "component value of any type is kept (x-kubernetes-preserve-unknown-fields)",
			doc: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {name: concurrency, value: 100}
    - {name: nested, value: {any: [thing]}}`,
		},
		{
			name: "version the CRD does not serve",
			doc: `apiVersion: dapr.io/v1
kind: Component
metadata: {name: pubsub}`,
			want: []string{"no CRD schema for dapr.io/v1 Component"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := yaml.YAMLToJSON([]byte(tt.doc))
			require.NoError(t, err)
			var id struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			require.NoError(t, yaml.Unmarshal(j, &id))
			errs := daprSchemas(t).Validate(Object{APIVersion: id.APIVersion, Kind: id.Kind, Name: id.Metadata.Name, JSON: j})
			require.Len(t, errs, len(tt.want), "%v", errs)
			for i, w := range tt.want {
				assert.Contains(t, errs[i].Error(), w)
			}
		})
	}
}
